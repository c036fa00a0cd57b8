"""The keys the API accepts, read from a credentials file in the AWS CLI's format.

Every profile holding an `aws_access_key_id` / `aws_secret_access_key` pair is a caller. Two
keys of ours narrow what it may do (both default to everything):

    [loader]
    aws_access_key_id = AKIDLOADER
    aws_secret_access_key = ...
    firehose_streams = clicks, logs-*
    firehose_actions = PutRecord, PutRecordBatch, Describe*

Stream patterns are shell globs matched case-sensitively, as stream names are; action patterns
are matched without regard to case, as IAM matches action names.
"""

from __future__ import annotations

import configparser
import fnmatch
from dataclasses import dataclass, field
from pathlib import Path

from firehose.errors import StartError

ACCESS_KEY_ID = "aws_access_key_id"
SECRET_ACCESS_KEY = "aws_secret_access_key"
STREAMS_KEY = "firehose_streams"
ACTIONS_KEY = "firehose_actions"
# Every action of the Firehose API, as IAM names them (`firehose:<Action>`).
FIREHOSE_ACTIONS = (
    "CreateDeliveryStream",
    "DeleteDeliveryStream",
    "DescribeDeliveryStream",
    "ListDeliveryStreams",
    "ListTagsForDeliveryStream",
    "PutRecord",
    "PutRecordBatch",
    "StartDeliveryStreamEncryption",
    "StopDeliveryStreamEncryption",
    "TagDeliveryStream",
    "UntagDeliveryStream",
    "UpdateDestination",
)
EVERYTHING = ("*",)


@dataclass(frozen=True)
class Principal:
    """One profile's key pair and what it may do; the secret stays out of every repr."""

    profile: str
    access_key_id: str
    secret_access_key: str = field(repr=False)
    streams: tuple[str, ...] = EVERYTHING
    actions: tuple[str, ...] = EVERYTHING

    def may_use_stream(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.streams)

    def may_perform(self, action: str) -> bool:
        action = action.lower()
        return any(fnmatch.fnmatchcase(action, pattern.lower()) for pattern in self.actions)


def load_credentials(path: Path) -> dict[str, Principal]:
    """The file's callers by access key id; StartError saying what is wrong with the file (never
    quoting a key or secret)."""
    parser = configparser.ConfigParser(interpolation=None, default_section="\0none")
    try:
        with path.open(encoding="utf-8") as file:
            parser.read_file(file)
    except OSError as exc:
        raise StartError(f"credentials file {path}: {exc.strerror or exc}") from None
    except (configparser.Error, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0]
        raise StartError(
            f"credentials file {path} is not in the AWS CLI's format: {reason}"
        ) from None
    principals: dict[str, Principal] = {}
    for profile in parser.sections():
        principal = _principal(path, profile, parser[profile])
        if principal is None:
            continue
        other = principals.get(principal.access_key_id)
        if other is not None:
            raise StartError(
                f"credentials file {path}: profiles {other.profile} and {profile} have the "
                f"same {ACCESS_KEY_ID}"
            )
        principals[principal.access_key_id] = principal
    if not principals:
        raise StartError(
            f"credentials file {path} holds no profile with both {ACCESS_KEY_ID} and "
            f"{SECRET_ACCESS_KEY}"
        )
    return principals


def _principal(path: Path, profile: str, section: configparser.SectionProxy) -> Principal | None:
    key_id = section.get(ACCESS_KEY_ID, "").strip()
    secret = section.get(SECRET_ACCESS_KEY, "").strip()
    if not key_id and not secret:
        return None  # a profile of other settings (region, output): not a caller
    if not key_id or not secret:
        given, lacking = (
            (ACCESS_KEY_ID, SECRET_ACCESS_KEY) if key_id else (SECRET_ACCESS_KEY, ACCESS_KEY_ID)
        )
        raise StartError(f"credentials file {path}: profile {profile} has {given} but no {lacking}")
    return Principal(
        profile=profile,
        access_key_id=key_id,
        secret_access_key=secret,
        streams=_patterns(path, profile, section, STREAMS_KEY),
        actions=_actions(path, profile, section),
    )


def _patterns(
    path: Path, profile: str, section: configparser.SectionProxy, key: str
) -> tuple[str, ...]:
    text = section.get(key)
    if text is None:
        return EVERYTHING
    patterns = tuple(item.strip() for item in text.split(",") if item.strip())
    if not patterns:
        raise StartError(f"credentials file {path}: profile {profile}: {key} is empty")
    return patterns


def _actions(path: Path, profile: str, section: configparser.SectionProxy) -> tuple[str, ...]:
    """The action patterns; one matching no action is a typo that would deny in silence."""
    patterns = _patterns(path, profile, section, ACTIONS_KEY)
    for pattern in patterns:
        bare = pattern.removeprefix("firehose:")
        if not fnmatch.filter([a.lower() for a in FIREHOSE_ACTIONS], bare.lower()):
            raise StartError(
                f"credentials file {path}: profile {profile}: {ACTIONS_KEY}: {pattern!r} matches "
                f"no Firehose action ({', '.join(FIREHOSE_ACTIONS)})"
            )
    return tuple(pattern.removeprefix("firehose:") for pattern in patterns)
