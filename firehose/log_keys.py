"""The data keys of one stream's encrypted log, kept wrapped beside it:

    <log dir>/keys/<key id, hex>.json   {"kind": "local" | "kms", "wrapped": base64, ...}

Every sealed frame names the data key it was sealed with. A key stays in the folder for as long
as a frame in the log names it, whatever the stream's config says now: a log written encrypted,
then plain, then under another key reads back whole. A run that encrypts makes a data key of its
own (from KMS `GenerateDataKey`, or random and wrapped with the local key file).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from firehose.config_encryption import DeliveryStreamEncryption
from firehose.durable import replace_durably
from firehose.errors import LogKeyError
from firehose.frames import KEY_ID_SIZE, SealingKey
from firehose.master_keys import (
    KEY_BYTES,
    LocalKeyFile,
    fingerprint,
    kms_decrypt,
    kms_generate_data_key,
    unwrap_locally,
    wrap_locally,
)

log = logging.getLogger(__name__)

KEYS_FOLDER = "keys"
KEY_SUFFIX = ".json"


class LogKeyring:
    """The data keys of one log: unwrapped at open, looked up by the id a frame names."""

    def __init__(self, log_directory: Path, local_key: LocalKeyFile) -> None:
        self.folder = log_directory / KEYS_FOLDER
        self.local_key = local_key
        self._ciphers: dict[bytes, AESGCM] = {}
        # Keys that could not be unwrapped: an error only if a frame of the log needs one.
        self._failures: dict[bytes, LogKeyError] = {}
        self._master: bytes | None = None

    async def load(self) -> None:
        """Unwrap every data key kept for the log (before the log is read)."""
        for key_id, record in await asyncio.to_thread(self._read_records):
            try:
                self._ciphers[key_id] = AESGCM(await self._unwrap(key_id, record))
            except LogKeyError as exc:
                self._failures[key_id] = exc

    def cipher(self, key_id: bytes) -> AESGCM:
        """The data key a frame names; LogKeyError, saying why, if it cannot be had."""
        cipher = self._ciphers.get(key_id)
        if cipher is not None:
            return cipher
        failure = self._failures.get(key_id)
        if failure is not None:
            raise LogKeyError(
                f"the log holds frames sealed with data key {key_id.hex()}, which cannot be "
                f"unwrapped: {failure}",
                failure.kms_code,
            )
        raise LogKeyError(
            f"the log holds frames sealed with data key {key_id.hex()}, which {self.folder} "
            "does not hold: its file was deleted or lost"
        )

    async def new_sealing_key(self, encryption: DeliveryStreamEncryption) -> SealingKey:
        """A new data key for this run's frames, kept (wrapped) before any frame uses it."""
        key_id = os.urandom(KEY_ID_SIZE)
        record: dict[str, Any]
        if encryption.key_arn is not None:
            plain, wrapped = await kms_generate_data_key(encryption.key_arn, key_id)
            record = {"kind": "kms", "key_arn": encryption.key_arn}
        else:
            master = await self._local_master(create=True)
            plain = os.urandom(KEY_BYTES)
            wrapped = wrap_locally(master, plain, key_id)
            record = {"kind": "local", "fingerprint": fingerprint(master)}
        record["wrapped"] = base64.b64encode(wrapped).decode()
        path = self._path(key_id)
        await asyncio.to_thread(replace_durably, path, json.dumps(record).encode())
        self._ciphers[key_id] = AESGCM(plain)
        return SealingKey(key_id, plain)

    def retain(self, in_use: set[bytes]) -> None:
        """Delete the kept keys that no frame of the log needs any more."""
        for key_id in (self._ciphers.keys() | self._failures.keys()) - in_use:
            self._ciphers.pop(key_id, None)
            self._failures.pop(key_id, None)
            try:
                self._path(key_id).unlink(missing_ok=True)
            except OSError as exc:  # costs a file, not data: tried again at the next change
                log.error("log key %s: cannot delete: %s", self._path(key_id), exc)

    def _path(self, key_id: bytes) -> Path:
        return self.folder / f"{key_id.hex()}{KEY_SUFFIX}"

    def _read_records(self) -> list[tuple[bytes, dict[str, Any]]]:
        records = []
        for path in sorted(self.folder.glob(f"*{KEY_SUFFIX}")):
            try:
                key_id = bytes.fromhex(path.name.removesuffix(KEY_SUFFIX))
                record = json.loads(path.read_bytes())
                if len(key_id) != KEY_ID_SIZE or not isinstance(record, dict):
                    raise ValueError("not a log key file")
            except (OSError, ValueError) as exc:
                log.error("log key %s: unreadable, ignored: %s", path, exc)
                continue
            records.append((key_id, record))
        return records

    async def _unwrap(self, key_id: bytes, record: dict[str, Any]) -> bytes:
        try:
            kind = record["kind"]
            wrapped = base64.b64decode(record["wrapped"])
            if kind == "kms":
                return await kms_decrypt(str(record["key_arn"]), wrapped, key_id)
            if kind == "local":
                master = await self._local_master(create=False)
                wanted, given = record["fingerprint"], fingerprint(master)
                if wanted != given:
                    raise LogKeyError(
                        f"data key {key_id.hex()} was wrapped with the local key of fingerprint "
                        f"{wanted}, but {self.local_key.path} holds the key of fingerprint "
                        f"{given}: give the key file it was written with (--log-key-file)",
                        "InvalidStateException",
                    )
                return unwrap_locally(master, wrapped, key_id)
        except (KeyError, TypeError, ValueError) as exc:
            raise LogKeyError(f"{self._path(key_id)} is damaged: {exc!r}") from None
        raise LogKeyError(f"{self._path(key_id)}: unknown key kind {kind!r}")

    async def _local_master(self, *, create: bool) -> bytes:
        if self._master is None:
            self._master = await asyncio.to_thread(self.local_key.read, create=create)
        return self._master
