"""The control-plane operations: create, delete, describe, list, update, tag and encrypt
delivery streams while the service runs.

Streams made here are stored in the data dir (`StreamStore`) and come back after a restart;
streams from config files can be read but not changed. Create and Delete are asynchronous as in
AWS: the answer comes at once, the stream is CREATING until its log is open and DELETING until
its log is gone. Only a forced delete drops records: one that cannot deliver them all turns
DELETING_FAILED and keeps the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from firehose.config import DeliveryStreamConfig
from firehose.config_load import ConfigCheck, ConfigError, validate_request
from firehose.control_checks import (
    DESTINATION_ID_PATTERN,
    MAX_TAGS,
    VERSION_ID_PATTERN,
    encryption_input_problems,
    length_problems,
    model_violations,
    pattern_problems,
    tag_key_problems,
    tags_problems,
)
from firehose.describe import DESTINATION_ID, describe, stream_arn
from firehose.destination import shown_target
from firehose.destination_update import refused_change, update_member, updated_request
from firehose.errors import (
    ConcurrentModificationError,
    InvalidArgumentError,
    LimitExceededError,
    LogKeyError,
    ResourceInUseError,
    ResourceNotFoundError,
    SerializationError,
    StartError,
    ValidationError,
)
from firehose.kms_failures import key_failure_description
from firehose.request_checks import (
    STREAM_TYPES,
    expect_member,
    limit_problems,
    stream_name_problems,
    violation,
)
from firehose.settings import Settings
from firehose.stream_registry import StreamRegistry, remove_log
from firehose.stream_store import StoredStream, StreamStore

log = logging.getLogger(__name__)

ENCRYPTION = "DeliveryStreamEncryptionConfigurationInput"
ENCRYPTION_CALLS_PER_DAY = 25
DAY_SECONDS = 24 * 3600
# Create request members that are not the stream's config.
_NOT_CONFIG = ("Tags",)

Operation = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass
class StreamEntry:
    """A stream the control plane knows: its config, what the API stored of it (None for a
    stream from a config file) and its transient state."""

    config: DeliveryStreamConfig
    stored: StoredStream | None
    status: str = "ACTIVE"
    # ENABLING or DISABLING while a Start/Stop is applied; None otherwise.
    encryption_change: str | None = None
    failure: dict[str, str] | None = None
    # Why the last Start/Stop encryption (or the key at create) failed: {Type, Details}.
    encryption_failure: dict[str, str] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def version(self) -> int:
        return 1 if self.stored is None else self.stored.version


def stored_config(stored: StoredStream) -> DeliveryStreamConfig:
    """The config a stored request describes; StartError if this version cannot read it."""
    try:
        return DeliveryStreamConfig.model_validate(stored.request)
    except PydanticValidationError as exc:
        raise StartError(
            f"stored delivery stream {stored.name} is no longer a valid configuration: {exc}"
        ) from None


def stored_streams(store: StreamStore, config_names: Sequence[str]) -> list[StoredStream]:
    """The stored streams, refusing a name that a config file defines too."""
    stored = store.load()
    clashes = sorted({s.name for s in stored} & set(config_names))
    if clashes:
        raise StartError(
            f"delivery stream {', '.join(clashes)} is defined in a config file and was also "
            f"created through the API (stored in {store.folder}): remove it from the config "
            "files, or delete it through the API first"
        )
    return stored


class ControlPlane:
    """The operations, over the registry of running streams and the store of API streams."""

    def __init__(
        self,
        settings: Settings,
        registry: StreamRegistry,
        store: StreamStore,
        *,
        configs: Sequence[DeliveryStreamConfig],
        stored: Sequence[StoredStream],
        started_at: float,
        checks: Sequence[ConfigCheck] = (),
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.store = store
        self.started_at = started_at
        self.checks = checks
        self.entries: dict[str, StreamEntry] = {c.name: StreamEntry(c, None) for c in configs}
        self._unfinished_deletes: list[StoredStream] = []
        for item in stored:
            if item.deleting and item.force_deleting:
                self._unfinished_deletes.append(item)
            else:
                # A delete that was to deliver first runs again once the service is up.
                status = "DELETING" if item.deleting else "ACTIVE"
                self.entries[item.name] = StreamEntry(stored_config(item), item, status=status)
        self._tasks: set[asyncio.Task[None]] = set()
        self.operations: dict[str, Operation] = {
            "CreateDeliveryStream": self.create,
            "DeleteDeliveryStream": self.delete,
            "UpdateDestination": self.update_destination,
            "TagDeliveryStream": self.tag,
            "UntagDeliveryStream": self.untag,
            "ListTagsForDeliveryStream": self.list_tags,
            "StartDeliveryStreamEncryption": self.start_encryption,
            "StopDeliveryStreamEncryption": self.stop_encryption,
        }

    def api_configs(self) -> list[tuple[DeliveryStreamConfig, int]]:
        """The API streams to run at start, with their versions."""
        return [
            (entry.config, entry.version)
            for entry in self.entries.values()
            if entry.stored is not None
        ]

    def finish_deletes(self) -> None:
        """Complete forced deletes a restart cut short: their logs and files go (the data dir
        is ours)."""
        for item in self._unfinished_deletes:
            log.info("stream %s: finishing its deletion", item.name)
            remove_log(self.settings.data_dir, item.name)
            self.store.remove(item.name)
        self._unfinished_deletes.clear()

    def resume_deletes(self) -> None:
        """Run again the deletes a restart cut short that deliver what the log holds first:
        their streams were opened at start like any other."""
        for entry in self.entries.values():
            if entry.status == "DELETING" and entry.stored is not None:
                log.info("stream %s: resuming its deletion", entry.config.name)
                timeout = self.settings.shutdown_timeout_seconds
                self._background(self._remove(entry, entry.stored, timeout, reopen=False))

    async def stop(self) -> None:
        """Wait for creates, deletes and encryption changes under way."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _background(self, work: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("a control-plane change failed")

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- lookups ---------------------------------------------------------------------------

    def _entry(self, name: str) -> StreamEntry:
        entry = self.entries.get(name)
        if entry is None:
            raise ResourceNotFoundError(
                f"Firehose {name} not found under account {self.settings.account_id}."
            )
        return entry

    def _api_stream(self, name: str, operation: str) -> tuple[StreamEntry, StoredStream]:
        """A stream made through the API; a config-file stream is read-only."""
        entry = self._entry(name)
        if entry.stored is None:
            raise InvalidArgumentError(
                f"Delivery stream {name} is defined in a config file given to `firehose serve "
                f"--config`, so {operation} cannot change it: edit the file and restart."
            )
        return entry, entry.stored

    def _changeable(self, name: str, operation: str) -> tuple[StreamEntry, StoredStream]:
        """An API stream that is ACTIVE."""
        entry, stored = self._api_stream(name, operation)
        if entry.status != "ACTIVE":
            raise ResourceInUseError(
                f"Delivery stream {name} is {entry.status} and cannot be changed now."
            )
        return entry, stored

    def _name(self, body: dict[str, Any]) -> str:
        name = expect_member(body, "DeliveryStreamName", str)
        problems = stream_name_problems(name)
        if problems:
            raise ValidationError.from_problems(problems)
        return str(name)

    def _validated(self, request: dict[str, Any], label: str) -> DeliveryStreamConfig:
        """The request as a config: ValidationException for a broken model range or length,
        InvalidArgumentException naming the field for anything else our models refuse."""
        try:
            DeliveryStreamConfig.model_validate(request)
        except PydanticValidationError as exc:
            violations = model_violations(exc)
            if violations:
                raise ValidationError.from_problems(violations) from None
        try:
            return validate_request(request, label, self.checks)
        except ConfigError as exc:
            raise InvalidArgumentError("; ".join(str(p) for p in exc.problems)) from None

    # -- describe and list -----------------------------------------------------------------

    def describe(self, name: str, exclusive_start_destination_id: str | None) -> dict[str, Any]:
        entry = self._entry(name)
        stored = entry.stored
        created = self.started_at if stored is None else stored.created_at
        description = describe(
            entry.config,
            region=self.settings.region,
            account_id=self.settings.account_id,
            created_at=created,
            updated_at=created if stored is None else stored.updated_at,
            status=entry.status,
            version=entry.version,
            encryption=self._encryption_description(entry),
        )
        if entry.failure is not None:
            description["FailureDescription"] = entry.failure
        if exclusive_start_destination_id == DESTINATION_ID:
            description["Destinations"] = []
        return description

    def _encryption_description(self, entry: StreamEntry) -> dict[str, Any]:
        given = entry.config.encryption
        if entry.stored is not None:
            status = entry.stored.encryption_status
        else:
            status = "DISABLED" if given is None else "ENABLED"
        status = entry.encryption_change or status
        shown: dict[str, Any] = {"Status": status}
        if given is not None and status != "DISABLED":
            shown["KeyType"] = given.key_type
            if given.key_arn is not None:
                shown["KeyARN"] = given.key_arn
        if entry.encryption_failure is not None:
            shown["FailureDescription"] = entry.encryption_failure
        return shown

    def names(self, kind: str | None) -> list[str]:
        """Every stream's name, of one type or all, in order."""
        return sorted(
            name
            for name, entry in self.entries.items()
            if kind is None or entry.config.type == kind
        )

    # -- create and delete -----------------------------------------------------------------

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        name = expect_member(body, "DeliveryStreamName", str)
        kind = expect_member(body, "DeliveryStreamType", str)
        tags = expect_member(body, "Tags", list)
        encryption = expect_member(body, ENCRYPTION, dict)
        problems = stream_name_problems(name)
        if kind is not None and kind not in STREAM_TYPES:
            rule = f"Member must satisfy enum value set: [{', '.join(STREAM_TYPES)}]"
            problems.append(violation(kind, "deliveryStreamType", rule))
        if tags is not None:
            problems += tags_problems(tags)
        if encryption is not None:
            problems += encryption_input_problems(
                encryption, "deliveryStreamEncryptionConfigurationInput"
            )
        if problems:
            raise ValidationError.from_problems(problems)
        request = {key: value for key, value in body.items() if key not in _NOT_CONFIG}
        config = self._validated(request, "CreateDeliveryStream")
        if config.type != "DirectPut":
            raise InvalidArgumentError(
                f"{config.type} streams cannot be created through the API by this version: "
                "define them in a config file given to `firehose serve --config`."
            )
        if encryption is not None:
            _check_key(encryption)
        if name in self.entries:
            raise ResourceInUseError(
                f"Firehose {name} under account {self._account} already exists."
            )
        if len(self.entries) >= self.settings.max_delivery_streams:
            raise LimitExceededError(
                f"You have already consumed your firehose quota of "
                f"{self.settings.max_delivery_streams} hoses. Firehose names: "
                f"{', '.join(sorted(self.entries)[:20])}"
            )
        now = time.time()
        stored = StoredStream(
            request=request,
            created_at=now,
            updated_at=now,
            tags={tag["Key"]: tag.get("Value", "") for tag in tags or []},
            encryption_status="DISABLED" if encryption is None else "ENABLED",
        )
        self.store.save(stored)
        entry = StreamEntry(config, stored, status="CREATING")
        self.entries[config.name] = entry
        self._background(self._open(entry))
        return {"DeliveryStreamARN": self._arn(config.name)}

    async def _open(self, entry: StreamEntry) -> None:
        try:
            await self.registry.add(entry.config, entry.version)
        except Exception as exc:
            log.exception("stream %s: cannot be created", entry.config.name)
            entry.status = "CREATING_FAILED"
            entry.failure = {"Type": "UNKNOWN_ERROR", "Details": str(exc) or type(exc).__name__}
            return
        stream = self.registry.streams[entry.config.name]
        if stream.key_failure is not None:
            # The stream could not take a record: creating it failed, as in AWS.
            await self.registry.remove(entry.config.name, None)
            entry.status, entry.encryption_change = "CREATING_FAILED", "ENABLING_FAILED"
            entry.failure = entry.encryption_failure = key_failure_description(stream.key_failure)
            return
        entry.status = "ACTIVE"
        target = shown_target(stream.destination.target)
        log.info("stream %s created: delivering to %s", entry.config.name, target)

    async def delete(self, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        force = body.get("AllowForceDelete")
        if force is not None and not isinstance(force, bool):
            raise SerializationError("AllowForceDelete has the wrong JSON type")
        entry, stored = self._api_stream(name, "DeleteDeliveryStream")
        if entry.status in ("CREATING", "DELETING"):
            raise ResourceInUseError(
                f"Delivery stream {name} is {entry.status} and cannot be deleted now."
            )
        timeout = None if force else self.settings.shutdown_timeout_seconds
        # A failed delete left records in the log: a retry opens it again to deliver them.
        reopen = entry.status == "DELETING_FAILED" and timeout is not None
        stored.deleting, stored.force_deleting = True, bool(force)
        self.store.save(stored)
        entry.status, entry.failure = "DELETING", None
        self._background(self._remove(entry, stored, timeout, reopen=reopen))
        return {}

    async def _remove(
        self, entry: StreamEntry, stored: StoredStream, timeout: float | None, *, reopen: bool
    ) -> None:
        """Delete the stream: unless forced (`timeout` None), only once its log is delivered;
        what is left then keeps the stream, DELETING_FAILED, for a forced delete or a retry."""
        name = stored.name
        async with entry.lock:
            try:
                if reopen:
                    await self.registry.add(entry.config, entry.version)
                if name in self.registry.streams:
                    delivered_all = await self.registry.remove(name, timeout)
                else:  # never ran (CREATING_FAILED): it took no records
                    delivered_all = True
                    remove_log(self.settings.data_dir, name)
            except Exception as exc:
                self._delete_failed(entry, stored, str(exc) or type(exc).__name__)
                raise
            if not delivered_all and timeout is not None:
                self._delete_failed(
                    entry,
                    stored,
                    f"Records in the log could not be delivered within {timeout:g} seconds; "
                    "they are kept. A delete with AllowForceDelete drops them.",
                )
                return
            if not delivered_all:
                log.warning("stream %s deleted with records it had not delivered", name)
            self.store.remove(name)
            del self.entries[name]
        log.info("stream %s deleted", name)

    def _delete_failed(self, entry: StreamEntry, stored: StoredStream, details: str) -> None:
        stored.deleting = stored.force_deleting = False
        self.store.save(stored)
        entry.status = "DELETING_FAILED"
        entry.failure = {"Type": "UNKNOWN_ERROR", "Details": details}
        log.warning("stream %s: delete failed: %s", stored.name, details)

    # -- update ----------------------------------------------------------------------------

    async def update_destination(self, body: dict[str, Any]) -> dict[str, Any]:
        name = expect_member(body, "DeliveryStreamName", str)
        version_id = expect_member(body, "CurrentDeliveryStreamVersionId", str)
        destination_id = expect_member(body, "DestinationId", str)
        problems = stream_name_problems(name)
        path = "currentDeliveryStreamVersionId"
        if version_id is None:
            problems.append(violation(None, path, "Member must not be null"))
        else:
            problems += length_problems(version_id, path, 1, 50)
            problems += pattern_problems(version_id, path, VERSION_ID_PATTERN)
        if destination_id is None:
            problems.append(violation(None, "destinationId", "Member must not be null"))
        else:
            problems += length_problems(destination_id, "destinationId", 1, 100)
            problems += pattern_problems(destination_id, "destinationId", DESTINATION_ID_PATTERN)
        if problems:
            raise ValidationError.from_problems(problems)
        update_name, update = update_member(body)
        entry, stored = self._changeable(name, "UpdateDestination")
        async with entry.lock:
            if entry.status != "ACTIVE":
                raise ResourceInUseError(f"Delivery stream {name} is {entry.status}.")
            if version_id != str(stored.version):
                raise ConcurrentModificationError(
                    f"Cannot update firehose: {name} since the current version id: "
                    f"{stored.version} and the specified version id: {version_id} do not match"
                )
            if destination_id != DESTINATION_ID:
                raise InvalidArgumentError(
                    f"Destination Id {destination_id} not found for delivery stream {name}."
                )
            request = updated_request(stored.request, update_name, update)
            config = self._validated(request, "UpdateDestination")
            refused = refused_change(entry.config, config)
            if refused is not None:
                raise InvalidArgumentError(refused)
            await self._apply(entry, stored, request, config, new_version=stored.version + 1)
        return {}

    async def _apply(
        self,
        entry: StreamEntry,
        stored: StoredStream,
        request: dict[str, Any],
        config: DeliveryStreamConfig,
        *,
        new_version: int,
    ) -> None:
        """Store the new request, then run it on the stream's log; if it cannot run, the
        stream goes on as it was and the stored request is put back."""
        before = (stored.request, stored.version, stored.updated_at)
        stored.request, stored.version, stored.updated_at = request, new_version, time.time()
        self.store.save(stored)
        try:
            await self.registry.replace(config, new_version, before[1])
        except Exception as exc:
            stored.request, stored.version, stored.updated_at = before
            self.store.save(stored)
            raise InvalidArgumentError(f"The new configuration cannot run: {exc}") from exc
        entry.config = config

    # -- tags ------------------------------------------------------------------------------

    async def tag(self, body: dict[str, Any]) -> dict[str, Any]:
        name = expect_member(body, "DeliveryStreamName", str)
        tags = expect_member(body, "Tags", list)
        problems = stream_name_problems(name)
        problems += (
            [violation(None, "tags", "Member must not be null")]
            if tags is None
            else tags_problems(tags)
        )
        if problems:
            raise ValidationError.from_problems(problems)
        entry, stored = self._changeable(name, "TagDeliveryStream")
        given = {tag["Key"]: tag.get("Value", "") for tag in tags}
        merged = {**stored.tags, **given}
        if len(merged) > MAX_TAGS:
            raise LimitExceededError(
                f"A delivery stream can have at most {MAX_TAGS} tags: {name} has "
                f"{len(stored.tags)} and this request adds {len(merged) - len(stored.tags)}."
            )
        async with entry.lock:
            stored.tags = merged
            self.store.save(stored)
        return {}

    async def untag(self, body: dict[str, Any]) -> dict[str, Any]:
        name = expect_member(body, "DeliveryStreamName", str)
        keys = expect_member(body, "TagKeys", list)
        problems = stream_name_problems(name)
        if keys is None:
            problems.append(violation(None, "tagKeys", "Member must not be null"))
        elif not 1 <= len(keys) <= MAX_TAGS:
            bound = (
                "greater than or equal to 1" if not keys else f"less than or equal to {MAX_TAGS}"
            )
            problems.append(
                violation(f"[{len(keys)} keys]", "tagKeys", f"Member must have length {bound}")
            )
        else:
            for index, key in enumerate(keys, 1):
                problems += tag_key_problems(key, f"tagKeys.{index}.member")
        if problems:
            raise ValidationError.from_problems(problems)
        entry, stored = self._changeable(name, "UntagDeliveryStream")
        async with entry.lock:
            stored.tags = {k: v for k, v in stored.tags.items() if k not in set(keys)}
            self.store.save(stored)
        return {}

    async def list_tags(self, body: dict[str, Any]) -> dict[str, Any]:
        name = expect_member(body, "DeliveryStreamName", str)
        start = expect_member(body, "ExclusiveStartTagKey", str)
        limit = expect_member(body, "Limit", int)
        problems = stream_name_problems(name)
        if start is not None:
            problems += tag_key_problems(start, "exclusiveStartTagKey")
        if limit is not None and not 1 <= limit <= MAX_TAGS:
            problems += limit_problems(limit) or [
                violation(
                    limit, "limit", f"Member must have value less than or equal to {MAX_TAGS}"
                )
            ]
        if problems:
            raise ValidationError.from_problems(problems)
        entry = self._entry(name)
        if entry.stored is not None:
            tags = sorted(entry.stored.tags.items())
        else:
            tags = sorted((t["Key"], t.get("Value", "")) for t in entry.config.tags or [])
        if start is not None:
            tags = [(key, value) for key, value in tags if key > start]
        limit = limit or MAX_TAGS
        return {
            "Tags": [{"Key": key, "Value": value} for key, value in tags[:limit]],
            "HasMoreTags": len(tags) > limit,
        }

    # -- stream encryption -----------------------------------------------------------------

    async def start_encryption(self, body: dict[str, Any]) -> dict[str, Any]:
        name = expect_member(body, "DeliveryStreamName", str)
        given = expect_member(body, ENCRYPTION, dict)
        problems = stream_name_problems(name)
        if given is not None:
            problems += encryption_input_problems(
                given, "deliveryStreamEncryptionConfigurationInput"
            )
        if problems:
            raise ValidationError.from_problems(problems)
        encryption = given or {"KeyType": "AWS_OWNED_CMK"}
        _check_key(encryption)
        await self._change_encryption(name, encryption, "StartDeliveryStreamEncryption")
        return {}

    async def stop_encryption(self, body: dict[str, Any]) -> dict[str, Any]:
        name = self._name(body)
        await self._change_encryption(name, None, "StopDeliveryStreamEncryption")
        return {}

    async def _change_encryption(
        self, name: str, encryption: dict[str, Any] | None, operation: str
    ) -> None:
        """Record the call, store the new input and apply it in the background: Describe shows
        ENABLING/DISABLING until the stream runs with it, then ENABLED/DISABLED."""
        entry, stored = self._changeable(name, operation)
        if entry.config.type != "DirectPut":
            raise InvalidArgumentError(
                f"{operation} is only for DirectPut delivery streams; {name} is "
                f"{entry.config.type}."
            )
        if entry.encryption_change in ("ENABLING", "DISABLING") or entry.lock.locked():
            raise ResourceInUseError(f"Delivery stream {name} is being changed; retry shortly.")
        now = time.time()
        recent = [moment for moment in stored.encryption_calls if now - moment < DAY_SECONDS]
        if len(recent) >= ENCRYPTION_CALLS_PER_DAY:
            raise LimitExceededError(
                f"Delivery stream {name} has had {ENCRYPTION_CALLS_PER_DAY} "
                "StartDeliveryStreamEncryption and StopDeliveryStreamEncryption calls in the "
                "last 24 hours, the most allowed."
            )
        self._validated(with_encryption(stored.request, encryption), operation)
        stored.encryption_calls = [*recent, now]
        entry.encryption_change = "ENABLING" if encryption is not None else "DISABLING"
        entry.encryption_failure = None
        self._background(self._apply_encryption(entry, stored, encryption, operation))

    async def _apply_encryption(
        self,
        entry: StreamEntry,
        stored: StoredStream,
        encryption: dict[str, Any] | None,
        operation: str,
    ) -> None:
        """Apply the change to the stored request as it is once the lock is held, so a change
        that took the lock first (an UpdateDestination) is kept."""
        enabling = encryption is not None
        async with entry.lock:
            previous_status = stored.encryption_status
            stored.encryption_status = "ENABLED" if enabling else "DISABLED"
            try:
                request = with_encryption(stored.request, encryption)
                config = self._validated(request, operation)
                await self._apply(entry, stored, request, config, new_version=stored.version)
            except Exception as exc:
                stored.encryption_status = previous_status
                self.store.save(stored)
                entry.encryption_change = "ENABLING_FAILED" if enabling else "DISABLING_FAILED"
                cause = exc.__cause__
                entry.encryption_failure = (
                    key_failure_description(cause)
                    if isinstance(cause, LogKeyError)
                    else {"Type": "UNKNOWN_ERROR", "Details": str(exc) or type(exc).__name__}
                )
                log.error("stream %s: encryption change failed: %s", stored.name, exc)
                return
            entry.encryption_change = None

    # -- helpers ---------------------------------------------------------------------------

    @property
    def _account(self) -> str:
        return self.settings.account_id

    def _arn(self, name: str) -> str:
        return stream_arn(name, region=self.settings.region, account_id=self._account)


def with_encryption(request: dict[str, Any], encryption: dict[str, Any] | None) -> dict[str, Any]:
    """`request` with its stream encryption input replaced (None: without one)."""
    changed = {k: v for k, v in request.items() if k != ENCRYPTION}
    if encryption is not None:
        changed[ENCRYPTION] = encryption
    return changed


def _check_key(encryption: dict[str, Any]) -> None:
    """A customer-managed key needs its ARN; an AWS-owned one takes none."""
    key_type, key_arn = encryption.get("KeyType"), encryption.get("KeyARN")
    if key_type == "CUSTOMER_MANAGED_CMK" and not key_arn:
        raise InvalidArgumentError("KeyARN is required when KeyType is CUSTOMER_MANAGED_CMK.")
    if key_type == "AWS_OWNED_CMK" and key_arn:
        raise InvalidArgumentError("KeyARN must not be given when KeyType is AWS_OWNED_CMK.")
