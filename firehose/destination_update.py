"""UpdateDestination's rules: how a `<Kind>DestinationUpdate` changes a stored create request,
and which changes a stream may not make."""

from __future__ import annotations

import copy
from typing import Any

from firehose.config import DeliveryStreamConfig
from firehose.errors import InvalidArgumentError, SerializationError

# Each update member and the create member (config section) it changes.
UPDATE_MEMBERS = {
    "ExtendedS3DestinationUpdate": "ExtendedS3DestinationConfiguration",
    "S3DestinationUpdate": "S3DestinationConfiguration",
    "RedshiftDestinationUpdate": "RedshiftDestinationConfiguration",
    "ElasticsearchDestinationUpdate": "ElasticsearchDestinationConfiguration",
    "AmazonopensearchserviceDestinationUpdate": "AmazonopensearchserviceDestinationConfiguration",
    "AmazonOpenSearchServerlessDestinationUpdate": (
        "AmazonOpenSearchServerlessDestinationConfiguration"
    ),
    "SplunkDestinationUpdate": "SplunkDestinationConfiguration",
    "HttpEndpointDestinationUpdate": "HttpEndpointDestinationConfiguration",
    "SnowflakeDestinationUpdate": "SnowflakeDestinationConfiguration",
    "IcebergDestinationUpdate": "IcebergDestinationConfiguration",
}
# Members an update names differently from the create request.
RENAMED_MEMBERS = {"S3Update": "S3Configuration", "S3BackupUpdate": "S3BackupConfiguration"}
# Members that hold one of several alternatives: an update replaces them whole, since merging
# {"KMSEncryptionConfig"} into {"NoEncryptionConfig"} would give both.
REPLACED_WHOLE = frozenset({"EncryptionConfiguration", "Deserializer", "Serializer"})
# The plain and extended S3 members are one destination kind.
_SAME_KIND = {"S3DestinationConfiguration": "ExtendedS3DestinationConfiguration"}
_OPENSEARCH = frozenset(
    {"ElasticsearchDestinationConfiguration", "AmazonopensearchserviceDestinationConfiguration"}
)


def update_member(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The one `<Kind>DestinationUpdate` of an UpdateDestination body, and its value."""
    given = [key for key in UPDATE_MEMBERS if key in body]
    if len(given) != 1:
        raise InvalidArgumentError(
            "UpdateDestination takes exactly one destination update "
            f"({', '.join(UPDATE_MEMBERS)}); got {len(given)}."
        )
    value = body[given[0]]
    if not isinstance(value, dict):
        raise SerializationError(f"{given[0]} must be a JSON object")
    return given[0], value


def _kind(member: str) -> str:
    return _SAME_KIND.get(member, member)


def destination_member(request: dict[str, Any]) -> str:
    """The create member that holds a stored request's destination."""
    return next(key for key in request if key.endswith("DestinationConfiguration"))


def _renamed(update: dict[str, Any]) -> dict[str, Any]:
    return {RENAMED_MEMBERS.get(key, key): value for key, value in update.items()}


def _merged(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`old` with `new` laid over it: members `new` omits keep their values, nested too."""
    merged = copy.deepcopy(old)
    for key, value in new.items():
        nested = isinstance(value, dict) and isinstance(merged.get(key), dict)
        if nested and key not in REPLACED_WHOLE:
            value = _merged(merged[key], value)
        merged[key] = copy.deepcopy(value)
    return merged


def updated_request(
    request: dict[str, Any], update_name: str, update: dict[str, Any]
) -> dict[str, Any]:
    """The create request as `update` leaves it: merged into the same kind of destination,
    replacing a destination of another kind (which then needs every required member)."""
    old_member = destination_member(request)
    new_member = UPDATE_MEMBERS[update_name]
    result = {key: value for key, value in request.items() if key != old_member}
    if _kind(new_member) == _kind(old_member):
        result[old_member] = _merged(request[old_member], _renamed(update))
    else:
        if (_kind(old_member) in _OPENSEARCH) != (_kind(new_member) in _OPENSEARCH):
            raise InvalidArgumentError(
                "An OpenSearch or Elasticsearch destination can only be changed to another "
                f"OpenSearch or Elasticsearch destination, not from {old_member} to "
                f"{new_member}."
            )
        result[new_member] = _renamed(update)
    return result


def refused_change(old: DeliveryStreamConfig, new: DeliveryStreamConfig) -> str | None:
    """Why `old` may not become `new` (backup turned off, dynamic partitioning added or
    removed), or None when it may."""
    before, after = old.destination, new.destination
    old_backup = getattr(before, "s3_backup_mode", None)
    new_backup = getattr(after, "s3_backup_mode", None)
    if type(before) is type(after) and (old_backup, new_backup) == ("Enabled", "Disabled"):
        return "S3BackupMode cannot be changed from Enabled to Disabled."
    old_partitioned = bool(getattr(before, "partitioned", False))
    if old_partitioned != bool(getattr(after, "partitioned", False)):
        if old_partitioned:
            return "Dynamic partitioning cannot be disabled on a stream that has it enabled."
        return "Dynamic partitioning cannot be enabled on an existing delivery stream."
    return None
