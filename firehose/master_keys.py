"""The keys that wrap an encrypted log's data keys: a local key file (`AWS_OWNED_CMK`) or a
KMS key (`CUSTOMER_MANAGED_CMK`).

A data key is made per stream and per run; only its wrapped form is written, beside the log.
Unwrapping it again needs the same local key file, or KMS to agree to decrypt it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from firehose.config_base import kms_key_region
from firehose.durable import fsync_directory
from firehose.errors import LogKeyError

KEY_BYTES = 32  # AES-256
DEFAULT_KEY_FILE = "log-master.key"  # in the data dir, when no --log-key-file is given
_NONCE_BYTES = 12
_KMS_CONFIG = AioConfig(
    retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=15
)


@dataclass(frozen=True)
class LocalKeyFile:
    """The local key: 32 raw bytes in `path`. One the user gave is never created; the default
    one is, (0600) on first need."""

    path: Path
    creatable: bool

    def read(self, *, create: bool) -> bytes:
        """The key; created now if missing, when `create` and creatable. LogKeyError if it
        cannot be had."""
        try:
            key = self.path.read_bytes()
        except FileNotFoundError:
            if not (create and self.creatable):
                raise LogKeyError(f"log key file {self.path} does not exist") from None
            key = self._create()
        except OSError as exc:
            raise LogKeyError(f"cannot read log key file {self.path}: {exc}") from None
        if len(key) != KEY_BYTES:
            raise LogKeyError(
                f"log key file {self.path} holds {len(key)} bytes; it must hold exactly "
                f"{KEY_BYTES} random bytes"
            )
        return key

    def _create(self) -> bytes:
        key = os.urandom(KEY_BYTES)
        try:
            # O_EXCL: two streams creating it at once end up with the same key.
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self.path.read_bytes()
        except OSError as exc:
            raise LogKeyError(f"cannot create log key file {self.path}: {exc}") from None
        try:
            os.write(fd, key)
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_directory(self.path.parent)
        return key


def fingerprint(key: bytes) -> str:
    """A short name of a local key, kept with what it wraps, so a wrong key file is named as
    such (a hash of the key, useless to find the key)."""
    return hashlib.sha256(b"firehose log key fingerprint\0" + key).hexdigest()[:16]


def wrap_locally(master: bytes, data_key: bytes, key_id: bytes) -> bytes:
    """`data_key` encrypted under the local key, bound to its id: nonce, then ciphertext."""
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + AESGCM(master).encrypt(nonce, data_key, key_id)


def unwrap_locally(master: bytes, wrapped: bytes, key_id: bytes) -> bytes:
    """The data key `wrap_locally` wrapped; LogKeyError if this is not the key it used."""
    try:
        return AESGCM(master).decrypt(wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], key_id)
    except InvalidTag:
        raise LogKeyError(
            f"data key {key_id.hex()} does not open with the local log key: the key file is "
            "not the one it was written with",
            "InvalidStateException",
        ) from None


def _encryption_context(key_id: bytes) -> dict[str, str]:
    # KMS refuses to decrypt a data key under any other context: a wrapped key cannot be
    # passed off as another log's.
    return {"firehose-log-data-key": key_id.hex()}


async def kms_generate_data_key(key_arn: str, key_id: bytes) -> tuple[bytes, bytes]:
    """(plaintext, wrapped) of a new data key from KMS `GenerateDataKey` under `key_arn`."""
    answer = await _kms_call(
        "GenerateDataKey",
        key_arn,
        KeyId=key_arn,
        KeySpec="AES_256",
        EncryptionContext=_encryption_context(key_id),
    )
    return bytes(answer["Plaintext"]), bytes(answer["CiphertextBlob"])


async def kms_decrypt(key_arn: str, wrapped: bytes, key_id: bytes) -> bytes:
    """The data key KMS wrapped, from `Decrypt`."""
    answer = await _kms_call(
        "Decrypt",
        key_arn,
        KeyId=key_arn,
        CiphertextBlob=wrapped,
        EncryptionContext=_encryption_context(key_id),
    )
    return bytes(answer["Plaintext"])


async def _kms_call(operation: str, key_arn: str, **kwargs: Any) -> dict[str, Any]:
    """One KMS call in the key's region, at the standard endpoint (`AWS_ENDPOINT_URL_KMS`,
    `AWS_ENDPOINT_URL`, or AWS); its failures become LogKeyError with KMS's code."""
    session = get_session()
    try:
        async with session.create_client(
            "kms", region_name=kms_key_region(key_arn), config=_KMS_CONFIG
        ) as kms:
            answer: dict[str, Any] = await getattr(kms, _snake(operation))(**kwargs)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "Unknown")
        raise LogKeyError(
            f"KMS refused {operation} with {key_arn}: {code}: {error.get('Message', exc)}",
            code,
        ) from None
    except (BotoCoreError, OSError, TimeoutError) as exc:
        raise LogKeyError(
            f"KMS unreachable for {operation} with {key_arn}: {exc}", "KMSUnreachable"
        ) from None
    return answer


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
