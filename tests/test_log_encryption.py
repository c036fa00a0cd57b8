"""Encrypted write-ahead logs: sealed frames, the data keys kept beside the log, streams that
switch between plain and encrypted on the same log, and what a missing or wrong key does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from isal.isal_zlib import crc32
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from firehose.api import FirehoseApi
from firehose.config import DeliveryStreamConfig
from firehose.config_load import ConfigError, load_configs
from firehose.describe import describe
from firehose.errors import InvalidKMSResourceError, LogKeyError
from firehose.frames import (
    KEY_ID_SIZE,
    SEALED_HEADER_SIZE,
    SEALED_MAGIC,
    TAG_SIZE,
    Frame,
    SealedFrame,
    SealingKey,
    encode_frame,
    parse_frame,
    unseal,
)
from firehose.log_keys import KEYS_FOLDER
from firehose.master_keys import DEFAULT_KEY_FILE
from firehose.metrics import ApiMetrics
from firehose.stream import DeliveryStream
from firehose.telemetry import Telemetry
from firehose.testing.service_process import firehose_client
from firehose.wal import SEGMENT_SUFFIX
from tests.factories import memory_stream
from tests.test_api import FakeService

LOCAL = {"KeyType": "AWS_OWNED_CMK"}
SECRET = b"card=4111-1111-1111-1111"


def records(count: int, start: int = 0) -> list[bytes]:
    return [b"%s #%06d\n" % (SECRET, i) for i in range(start, start + count)]


def sealing_key() -> tuple[SealingKey, dict[bytes, AESGCM]]:
    key_id, key = os.urandom(KEY_ID_SIZE), AESGCM.generate_key(256)
    return SealingKey(key_id, key), {key_id: AESGCM(key)}


def lookup(keys: dict[bytes, AESGCM]) -> Any:
    def find(key_id: bytes) -> AESGCM:
        if key_id not in keys:
            raise LogKeyError(f"no key {key_id.hex()} (test)")
        return keys[key_id]

    return find


def segments(stream: DeliveryStream) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in stream.wal.directory.glob(f"*{SEGMENT_SUFFIX}")}


def key_files(stream: DeliveryStream) -> list[Path]:
    return sorted((stream.wal.directory / KEYS_FOLDER).glob("*.json"))


# -- frames ---------------------------------------------------------------------------------


def test_a_sealed_frame_reads_back_as_written() -> None:
    sealing, keys = sealing_key()
    written = [b"", b"one", SECRET * 100]
    data = encode_frame(7, 1234, written, sealing)
    assert data[:4] == SEALED_MAGIC
    assert SECRET not in data
    assert len(data) == SEALED_HEADER_SIZE + 4 * 3 + sum(map(len, written)) + TAG_SIZE

    sealed = parse_frame(memoryview(data), 0)  # the crc is checked without any key
    assert isinstance(sealed, SealedFrame)
    assert (sealed.first_seq, sealed.last_seq, sealed.arrival_ms) == (7, 9, 1234)
    assert sealed.key_id == sealing.key_id
    frame = unseal(sealed, lookup(keys))
    assert isinstance(frame, Frame)
    assert (frame.first_seq, frame.arrival_ms, frame.key_id) == (7, 1234, sealing.key_id)
    assert list(frame.lengths) == [0, 3, len(SECRET) * 100]
    assert bytes(frame.data) == b"".join(written)
    assert frame.size == len(data)


def test_every_sealed_frame_gets_a_nonce_of_its_own() -> None:
    sealing, _ = sealing_key()
    nonces = {sealing.next_nonce() for _ in range(1000)}
    assert len(nonces) == 1000
    first = encode_frame(1, 0, [b"same"], sealing)
    again = encode_frame(1, 0, [b"same"], sealing)
    assert first != again  # the same records under a new nonce


def test_a_forged_frame_with_a_fixed_crc_fails_its_tag() -> None:
    sealing, keys = sealing_key()
    data = bytearray(encode_frame(1, 5, [b"pay 10 to alice"], sealing))
    data[SEALED_HEADER_SIZE + 10] ^= 0x01  # a byte of the ciphertext
    assert parse_frame(memoryview(bytes(data)), 0) is None  # the crc sees it
    struct.pack_into("<I", data, 8, crc32(bytes(data[12:]), 0))  # a crc forged to match
    sealed = parse_frame(memoryview(bytes(data)), 0)
    assert isinstance(sealed, SealedFrame)
    assert unseal(sealed, lookup(keys)) is None


def test_header_fields_are_bound_to_the_payload() -> None:
    sealing, keys = sealing_key()
    data = bytearray(encode_frame(1, 5, [b"a", b"b"], sealing))
    struct.pack_into("<Q", data, 12, 2)  # another first seq, crc fixed
    struct.pack_into("<I", data, 8, crc32(bytes(data[12:]), 0))
    sealed = parse_frame(memoryview(bytes(data)), 0)
    assert isinstance(sealed, SealedFrame)
    assert unseal(sealed, lookup(keys)) is None


def test_a_frame_under_a_key_not_held_is_an_error_not_garbage() -> None:
    sealing, _ = sealing_key()
    sealed = parse_frame(memoryview(encode_frame(1, 5, [b"x"], sealing)), 0)
    assert isinstance(sealed, SealedFrame)
    with pytest.raises(LogKeyError, match=sealing.key_id.hex()):
        unseal(sealed, lookup({}))
    other, keys = sealing_key()
    wrong = {sealing.key_id: keys[other.key_id]}  # the id right, the key not
    assert unseal(sealed, lookup(wrong)) is None


# -- streams --------------------------------------------------------------------------------


async def test_an_encrypted_stream_keeps_no_record_in_clear_on_disk(tmp_path: Path) -> None:
    stream, dest = memory_stream(tmp_path, interval=900, encryption=LOCAL)
    await stream.open()
    assert stream.encrypted
    sent = records(500)
    await stream.put(sent)
    files = segments(stream)
    assert files
    for data in files.values():
        assert data.startswith(SEALED_MAGIC)
        assert SECRET not in data
    for path in [*key_files(stream), tmp_path / DEFAULT_KEY_FILE]:
        assert SECRET not in path.read_bytes()
    assert (tmp_path / DEFAULT_KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert await stream.close(timeout=5)
    assert dest.data == b"".join(sent)


async def test_a_plain_stream_writes_plain_frames(tmp_path: Path) -> None:
    stream, _ = memory_stream(tmp_path, interval=900)
    await stream.open()
    assert not stream.encrypted
    await stream.put(records(3))
    [data] = segments(stream).values()
    assert SECRET in data
    assert key_files(stream) == []
    assert not (tmp_path / DEFAULT_KEY_FILE).exists()  # no key made until one is needed
    await stream.close(timeout=1)


async def test_a_log_switched_plain_encrypted_plain_reads_back_whole(tmp_path: Path) -> None:
    """Each run writes its kind of frames while earlier ones wait undelivered; the last run,
    plain, delivers them all, then drops the keys no frame needs."""
    sent: list[bytes] = []
    for run, encryption in enumerate([None, LOCAL, LOCAL, None]):
        stream, dest = memory_stream(tmp_path, interval=0, encryption=encryption)
        dest.fail_forever = True
        await stream.open()
        assert stream.encrypted == (encryption is not None)
        batch = records(50, start=run * 50)
        await stream.put(batch)
        sent += batch
        assert not await stream.close(timeout=0.2)
    assert len(key_files(stream)) == 2  # one data key per encrypted run, both still needed

    stream, dest = memory_stream(tmp_path, interval=0)
    await stream.open()
    assert stream.counters.recovery.records_pending == 200
    assert stream.counters.recovery.problems == []
    await dest.wait_for_records(200)
    assert dest.data == b"".join(sent)
    assert await stream.close(timeout=5)
    assert key_files(stream) == []


async def test_keys_are_dropped_once_their_frames_are_delivered(tmp_path: Path) -> None:
    stream, dest = memory_stream(tmp_path, interval=0, encryption=LOCAL)
    dest.fail_forever = True
    await stream.open()
    await stream.put(records(5))
    assert not await stream.close(timeout=0.2)
    [old_key] = key_files(stream)

    # The next run seals with a key of its own and delivers everything: once the old segment
    # is deleted, no frame needs the old key.
    stream, dest = memory_stream(tmp_path, interval=0, encryption=LOCAL)
    await stream.open()
    assert old_key.exists()
    await stream.put(records(5, start=5))
    await dest.wait_for_records(10)
    for _ in range(100):
        if not old_key.exists():
            break
        await asyncio.sleep(0.05)
    assert not old_key.exists()
    [own] = key_files(stream)
    assert own != old_key
    assert await stream.close(timeout=5)
    assert own.exists()  # its frames are delivered, but it is the one new frames would use


async def test_a_missing_key_file_refuses_the_stream_and_deletes_nothing(tmp_path: Path) -> None:
    stream, dest = memory_stream(tmp_path, interval=0, encryption=LOCAL)
    dest.fail_forever = True
    await stream.open()
    await stream.put(records(20))
    assert not await stream.close(timeout=0.2)
    before = segments(stream)
    [kept] = key_files(stream)
    saved = kept.read_bytes()
    kept.unlink()

    stream, dest = memory_stream(tmp_path, interval=0)
    await stream.open()
    assert stream.key_failure is not None
    assert "does not hold" in str(stream.key_failure)
    assert not stream.accepting and not stream.healthy
    health = stream.health()
    assert health["log"]["failure"].startswith("key: ")
    with pytest.raises(LogKeyError) as refused:
        await stream.put(records(1))
    assert refused.value.kms_code == "NotFoundException"
    await stream.close(timeout=1)
    assert segments(stream) == before, "a log it could not read was changed"
    assert dest.delivered == []

    kept.write_bytes(saved)  # the key is back: everything is delivered
    stream, dest = memory_stream(tmp_path, interval=0)
    await stream.open()
    await dest.wait_for_records(20)
    assert dest.data == b"".join(records(20))
    assert await stream.close(timeout=5)


async def test_another_local_key_file_is_named_as_the_wrong_one(tmp_path: Path) -> None:
    given = tmp_path / "given.key"
    given.write_bytes(os.urandom(32))
    stream, dest = memory_stream(tmp_path, interval=0, encryption=LOCAL, log_key_file=given)
    dest.fail_forever = True
    await stream.open()
    await stream.put(records(3))
    assert not await stream.close(timeout=0.2)
    assert not (tmp_path / DEFAULT_KEY_FILE).exists()  # the given file is used, not the default
    before = segments(stream)

    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(os.urandom(32))
    stream, _ = memory_stream(tmp_path, interval=0, log_key_file=wrong)
    await stream.open()
    assert stream.key_failure is not None
    assert "fingerprint" in str(stream.key_failure) and str(wrong) in str(stream.key_failure)
    await stream.close(timeout=1)
    assert segments(stream) == before

    stream, dest = memory_stream(tmp_path, interval=0, log_key_file=given)
    await stream.open()
    await dest.wait_for_records(3)
    assert await stream.close(timeout=5)


@pytest.mark.parametrize("content", [None, b"too short"])
async def test_a_given_key_file_is_never_made_up(tmp_path: Path, content: bytes | None) -> None:
    given = tmp_path / "given.key"
    if content is not None:
        given.write_bytes(content)
    stream, _ = memory_stream(tmp_path, encryption=LOCAL, log_key_file=given)
    await stream.open()
    assert stream.key_failure is not None
    assert str(given) in str(stream.key_failure)
    assert given.exists() == (content is not None)
    assert (given.read_bytes() if content else None) == content
    with pytest.raises(LogKeyError):
        await stream.put(records(1))
    await stream.close(timeout=1)


async def test_a_damaged_sealed_frame_is_reported_and_its_neighbours_kept(tmp_path: Path) -> None:
    stream, dest = memory_stream(tmp_path, interval=0, encryption=LOCAL)
    dest.fail_forever = True
    await stream.open()
    for start in (0, 10, 20):
        await stream.put(records(10, start=start))
    assert not await stream.close(timeout=0.2)
    [path] = stream.wal.directory.glob(f"*{SEGMENT_SUFFIX}")
    data = bytearray(path.read_bytes())
    frame_size = len(data) // 3
    data[frame_size + SEALED_HEADER_SIZE + 5] ^= 0xFF  # the middle frame's ciphertext
    path.write_bytes(bytes(data))

    stream, dest = memory_stream(tmp_path, interval=0)
    await stream.open()
    [problem] = stream.counters.recovery.problems
    assert (problem.kind, problem.records_affected) == ("corrupt", 10)
    assert "records 11-20 lost" in problem.message
    await dest.wait_for_records(20)
    assert dest.data == b"".join(records(10) + records(10, start=20))
    assert await stream.close(timeout=5)


async def test_put_answers_say_whether_records_are_encrypted(tmp_path: Path) -> None:
    plain, _ = memory_stream(tmp_path, name="plain")
    sealed, _ = memory_stream(tmp_path, name="sealed", encryption=LOCAL)
    missing = tmp_path / "missing.key"
    refused, _ = memory_stream(tmp_path, name="refused", encryption=LOCAL, log_key_file=missing)
    service = FakeService(streams={"plain": plain, "sealed": sealed, "refused": refused})
    for stream in service.streams.values():
        await stream.open()
    server = TestServer(FirehoseApi(service).app(), host="127.0.0.1")
    await server.start_server()
    try:
        client = firehose_client(str(server.make_url("/")))
        for name, encrypted in [("plain", False), ("sealed", True)]:
            one = await _in_thread(
                client.put_record, DeliveryStreamName=name, Record={"Data": b"x"}
            )
            assert one["Encrypted"] is encrypted
            batch = await _in_thread(
                client.put_record_batch, DeliveryStreamName=name, Records=[{"Data": b"y"}] * 3
            )
            assert batch["Encrypted"] is encrypted and batch["FailedPutCount"] == 0
        with pytest.raises(client.exceptions.InvalidKMSResourceException) as error:
            await _in_thread(client.put_record, DeliveryStreamName="refused", Record={"Data": b"x"})
        assert error.value.response["Error"]["Code"] == "InvalidKMSResourceException"
        assert error.value.response["code"] == "NotFoundException"
    finally:
        await server.close()
        for stream in service.streams.values():
            await stream.close(timeout=1)


async def test_puts_the_key_refuses_are_counted_by_kms_code(tmp_path: Path) -> None:
    first, second = tmp_path / "first.key", tmp_path / "second.key"
    first.write_bytes(os.urandom(32))
    second.write_bytes(os.urandom(32))
    moved, dest = memory_stream(tmp_path, name="moved", encryption=LOCAL, log_key_file=first)
    dest.fail_forever = True
    await moved.open()
    await moved.put([b"kept in the log"])
    assert not await moved.close(timeout=0.2)
    streams = {
        "plain": memory_stream(tmp_path, name="plain")[0],
        "sealed": memory_stream(tmp_path, name="sealed", encryption=LOCAL)[0],
        "missing": memory_stream(
            tmp_path, name="missing", encryption=LOCAL, log_key_file=tmp_path / "none.key"
        )[0],
        # Its log's data key was wrapped with another key file than the one it has now.
        "moved": memory_stream(tmp_path, name="moved", encryption=LOCAL, log_key_file=second)[0],
    }
    service = FakeService(streams=streams)
    telemetry = Telemetry(streams, [])
    for stream in streams.values():
        await stream.open()
    api = FirehoseApi(service, telemetry=telemetry)
    try:
        for name, calls in (("missing", 2), ("moved", 1), ("sealed", 1), ("plain", 1)):
            for _ in range(calls):
                with contextlib.suppress(InvalidKMSResourceError):
                    await api.put_record({"DeliveryStreamName": name, "Record": {"Data": "eA=="}})
    finally:
        for stream in streams.values():
            await stream.close(timeout=1)
    samples = {
        (sample.name, sample.labels.get("delivery_stream_name")): sample.value
        for family in text_string_to_metric_families(telemetry.metrics.render().decode())
        for sample in family.samples
    }
    assert samples[("firehose_KMSKeyNotFound_total", "missing")] == 2
    assert samples[("firehose_KMSKeyInvalidState_total", "missing")] == 0
    assert samples[("firehose_KMSKeyInvalidState_total", "moved")] == 1
    assert samples[("firehose_KMSKeyNotFound_total", "moved")] == 0
    for metric in ("AccessDenied", "Disabled", "InvalidState", "NotFound"):
        assert samples[(f"firehose_KMSKey{metric}_total", "sealed")] == 0
        assert (f"firehose_KMSKey{metric}_total", "plain") not in samples


def test_kms_codes_name_their_metrics() -> None:
    metrics = ApiMetrics(CollectorRegistry())
    for code in ("AccessDeniedException", "DisabledException", "KMSInvalidStateException"):
        metrics.key_refused("s", code)
    metrics.key_refused("s", "KMSUnreachable")  # not the key's fault: no metric of its own
    assert metrics.puts["s"].key_refusals == {
        "KMSKeyAccessDenied": 1,
        "KMSKeyDisabled": 1,
        "KMSKeyInvalidState": 1,
    }


async def _in_thread(call: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(lambda: call(**kwargs))


# -- config ---------------------------------------------------------------------------------


def stream_body(**extra: Any) -> dict[str, Any]:
    return {
        "DeliveryStreamName": "s",
        "ExtendedS3DestinationConfiguration": {"BucketARN": "arn:aws:s3:::b"},
        **extra,
    }


KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
ALIAS_ARN = "arn:aws:kms:eu-west-1:123456789012:alias/logs"


@pytest.mark.parametrize(
    ("given", "key_type", "key_arn"),
    [
        ({}, "AWS_OWNED_CMK", None),
        ({"KeyType": "AWS_OWNED_CMK"}, "AWS_OWNED_CMK", None),
        ({"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": KEY_ARN}, "CUSTOMER_MANAGED_CMK", KEY_ARN),
        (
            {
                "KeyType": "CUSTOMER_MANAGED_CMK",
                "KeyARN": "arn:aws:kms:eu-west-1:123456789012:alias/logs",
            },
            "CUSTOMER_MANAGED_CMK",
            "arn:aws:kms:eu-west-1:123456789012:alias/logs",
        ),
    ],
)
def test_stream_encryption_configs_that_load(
    given: dict[str, str], key_type: str, key_arn: str | None
) -> None:
    config = DeliveryStreamConfig.model_validate(
        stream_body(DeliveryStreamEncryptionConfigurationInput=given)
    )
    assert config.encryption is not None
    assert (config.encryption.key_type, config.encryption.key_arn) == (key_type, key_arn)


def write_config(tmp_path: Path, body: dict[str, Any]) -> Path:
    path = tmp_path / "stream.json"
    path.write_text(json.dumps(body))
    return path


def problems(tmp_path: Path, body: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load_configs(write_config(tmp_path, body))
    return [str(problem) for problem in error.value.problems]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"KeyType": "CUSTOMER_MANAGED_CMK"}, "is required when KeyType is"),
        ({"KeyType": "AWS_OWNED_CMK", "KeyARN": KEY_ARN}, "is given only with"),
        ({"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": "arn:aws:s3:::b"}, "must look like arn"),
        ({"KeyType": "OWN_KEY"}, "KeyType"),
        ({"KeyType": "AWS_OWNED_CMK", "Key": "x"}, "Key"),
    ],
)
def test_stream_encryption_configs_refused(
    tmp_path: Path, given: dict[str, str], expected: str
) -> None:
    found = problems(tmp_path, stream_body(DeliveryStreamEncryptionConfigurationInput=given))
    assert len(found) == 1 and expected in found[0], found
    assert "DeliveryStreamEncryptionConfigurationInput" in found[0]


def test_a_kinesis_sourced_stream_cannot_encrypt_its_log(tmp_path: Path) -> None:
    body = stream_body(
        DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={
            "KinesisStreamARN": "arn:aws:kinesis:us-east-1:123456789012:stream/clicks",
            "RoleARN": "arn:aws:iam::123456789012:role/r",
        },
        DeliveryStreamEncryptionConfigurationInput={"KeyType": "AWS_OWNED_CMK"},
    )
    [problem] = problems(tmp_path, body)
    assert "DeliveryStreamEncryptionConfigurationInput" in problem
    assert "DirectPut streams only" in problem


@pytest.mark.parametrize(
    ("given", "arn"),
    [
        ({"NoEncryptionConfig": "NoEncryption"}, None),
        ({"KMSEncryptionConfig": {"AWSKMSKeyARN": KEY_ARN}}, KEY_ARN),
    ],
)
def test_s3_encryption_configs_that_load(given: dict[str, Any], arn: str | None) -> None:
    body = stream_body()
    body["ExtendedS3DestinationConfiguration"]["EncryptionConfiguration"] = given
    body["ExtendedS3DestinationConfiguration"]["S3BackupMode"] = "Enabled"
    body["ExtendedS3DestinationConfiguration"]["S3BackupConfiguration"] = {
        "BucketARN": "arn:aws:s3:::backup",
        "EncryptionConfiguration": given,
    }
    config = DeliveryStreamConfig.model_validate(body)
    section = config.s3
    assert section is not None and section.backup is not None
    assert section.kms_key_arn == arn and section.backup.kms_key_arn == arn
    described = section.plain_description("123456789012")["EncryptionConfiguration"]
    assert described == given


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, "neither is given"),
        (
            {
                "NoEncryptionConfig": "NoEncryption",
                "KMSEncryptionConfig": {"AWSKMSKeyARN": KEY_ARN},
            },
            "both are given",
        ),
        ({"NoEncryptionConfig": "Encrypt"}, "NoEncryptionConfig"),
        ({"KMSEncryptionConfig": {"AWSKMSKeyARN": "not-an-arn"}}, "must look like arn"),
        ({"KMSEncryptionConfig": {}}, "AWSKMSKeyARN"),
    ],
)
def test_s3_encryption_configs_refused(
    tmp_path: Path, given: dict[str, Any], expected: str
) -> None:
    body = stream_body()
    body["ExtendedS3DestinationConfiguration"]["EncryptionConfiguration"] = given
    found = problems(tmp_path, body)
    assert len(found) == 1 and expected in found[0], found
    assert "EncryptionConfiguration" in found[0]


def test_the_staging_bucket_of_redshift_checks_its_encryption_too(tmp_path: Path) -> None:
    body = {
        "DeliveryStreamName": "r",
        "RedshiftDestinationConfiguration": {
            "ClusterJDBCURL": "jdbc:postgresql://127.0.0.1:5432/db",
            "CopyCommand": {"DataTableName": "t"},
            "Username": "u",
            "Password": "p",
            "S3Configuration": {
                "BucketARN": "arn:aws:s3:::staging",
                "EncryptionConfiguration": {"KMSEncryptionConfig": {"AWSKMSKeyARN": "bad"}},
            },
        },
    }
    [problem] = problems(tmp_path, body)
    assert "S3Configuration.EncryptionConfiguration" in problem


def test_describe_shows_the_stream_encryption() -> None:
    def described(**extra: Any) -> Any:
        config = DeliveryStreamConfig.model_validate(stream_body(**extra))
        found = describe(config, region="us-east-1", account_id="123456789012", created_at=0)
        return found["DeliveryStreamEncryptionConfiguration"]

    assert described() == {"Status": "DISABLED"}
    assert described(DeliveryStreamEncryptionConfigurationInput={}) == {
        "KeyType": "AWS_OWNED_CMK",
        "Status": "ENABLED",
    }
    given = {"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": KEY_ARN}
    assert described(DeliveryStreamEncryptionConfigurationInput=given) == {
        **given,
        "Status": "ENABLED",
    }
