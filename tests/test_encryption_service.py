"""Encryption with real servers: a SIGKILL on an encrypted log loses nothing, data keys from KMS
(moto in server mode), KMS refusing or out of reach, and SSE-KMS objects.

SSE-KMS objects are checked on moto's S3: SeaweedFS, the tests' other store, answers
InternalError to a PutObject asking for aws:kms when it has no KMS of its own configured.
"""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest

from firehose.errors import LogKeyError
from firehose.log_keys import KEYS_FOLDER
from firehose.master_keys import DEFAULT_KEY_FILE
from firehose.testing.servers import S3Server, free_port
from firehose.testing.service_process import ServiceProcess, s3_stream
from firehose.wal import SEGMENT_SUFFIX
from tests.e2e import acknowledged, health, kms_client, wait_for
from tests.factories import memory_stream

MARK = b"confidential-payload"


def record(i: int) -> bytes:
    return json.dumps({"id": i, "secret": MARK.decode(), "pad": "x" * 150}).encode() + b"\n"


def delivered_ids(server: S3Server, bucket: str, prefix: str = "") -> list[int]:
    return [
        json.loads(line)["id"]
        for key in server.list_keys(bucket, prefix)
        for line in server.get(bucket, key).splitlines()
    ]


def log_files(workdir: Path, stream: str) -> list[Path]:
    return sorted((workdir / "data" / "streams" / stream).glob(f"*{SEGMENT_SUFFIX}"))


@pytest.fixture
def moto_bucket(moto_s3: S3Server) -> str:
    """A bucket in moto's S3: SeaweedFS gives each bucket a volume of its own, and the suite
    already uses about as many as its free disk allows."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    moto_s3.create_bucket(name)
    return name


def test_sigkill_on_an_encrypted_log_loses_no_acknowledged_record(
    moto_s3: S3Server, moto_bucket: str, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    bucket = moto_bucket
    stream = s3_stream("sealed", bucket, BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 60})
    stream["DeliveryStreamEncryptionConfigurationInput"] = {"KeyType": "AWS_OWNED_CMK"}
    service = ServiceProcess(tmp_path, [stream], env=moto_s3.env())
    services.append(service)
    service.start()
    acked: set[int] = set()
    lock = threading.Lock()
    stop_sending = threading.Event()

    def producer(worker: int) -> None:
        client = service.client()
        n = 0
        while not stop_sending.is_set():
            ids = [worker * 10_000_000 + n + i for i in range(250)]
            n += 250
            try:
                answer = client.put_record_batch(
                    DeliveryStreamName="sealed", Records=[{"Data": record(i)} for i in ids]
                )
            except Exception:
                return  # the service died under us: nothing of this call was acknowledged
            assert answer["Encrypted"] is True
            with lock:
                for record_id, response in zip(ids, answer["RequestResponses"], strict=True):
                    if "RecordId" in response:
                        acked.add(record_id)

    threads = [threading.Thread(target=producer, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(acked) > 15_000)
    service.kill()
    stop_sending.set()
    for thread in threads:
        thread.join(30)

    # Nothing of the records is in clear in the log, only sealed frames.
    segments = log_files(tmp_path, "sealed")
    assert segments
    for path in segments:
        data = path.read_bytes()
        assert MARK not in data and b'"id"' not in data
    assert (tmp_path / "data" / DEFAULT_KEY_FILE).exists()
    # A crash may leave a torn sealed frame at the end of the log: make sure there is one.
    with segments[-1].open("ab") as handle:
        handle.write(b"FHE1\x00\x10\x00\x00torn")

    service.start()
    assert service.terminate() == 0
    missing = acked - set(delivered_ids(moto_s3, bucket))
    assert not missing, f"{len(missing)} acknowledged records lost"
    assert "corrupt or torn bytes" in service.log()


def test_a_log_turned_encrypted_then_plain_across_kills_delivers_everything(
    moto_s3: S3Server, moto_bucket: str, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    """Each run writes its kind of frames and is killed before delivering any: the last run
    reads plain frames and frames under two data keys from one log."""
    bucket = moto_bucket
    stream = s3_stream("mixed", bucket, BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 900})
    service = ServiceProcess(tmp_path, [stream], env=moto_s3.env())
    services.append(service)
    sent: list[int] = []
    for run, encryption in enumerate([None, {"KeyType": "AWS_OWNED_CMK"}, None]):
        if encryption is None:
            stream.pop("DeliveryStreamEncryptionConfigurationInput", None)
        else:
            stream["DeliveryStreamEncryptionConfigurationInput"] = encryption
        service.start()
        ids = list(range(run * 1000, run * 1000 + 1000))
        answer = service.client().put_record_batch(
            DeliveryStreamName="mixed", Records=[{"Data": record(i)} for i in ids[:500]]
        )
        assert answer["Encrypted"] is (encryption is not None)
        assert acknowledged(service, "mixed", [record(i) for i in ids[500:]])
        sent += ids
        service.kill()
    assert moto_s3.list_keys(bucket) == []
    sealed = [p for p in log_files(tmp_path, "mixed") if MARK not in p.read_bytes()]
    assert len(sealed) == 1  # the second run's segment; the others are plain

    service.start()
    assert service.terminate() == 0
    assert sorted(delivered_ids(moto_s3, bucket)) == sent
    assert list((tmp_path / "data" / "streams" / "mixed" / KEYS_FOLDER).glob("*.json")) == []


def test_data_keys_from_kms_survive_a_restart(
    moto_s3: S3Server, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    key_arn = kms_client(moto_s3).create_key()["KeyMetadata"]["Arn"]
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    moto_s3.create_bucket(bucket)
    stream = s3_stream("kms", bucket, BufferingHints={"SizeInMBs": 128, "IntervalInSeconds": 900})
    stream["DeliveryStreamEncryptionConfigurationInput"] = {
        "KeyType": "CUSTOMER_MANAGED_CMK",
        "KeyARN": key_arn,
    }
    env = {**moto_s3.env(), "AWS_ENDPOINT_URL_KMS": moto_s3.endpoint_url}
    service = ServiceProcess(tmp_path, [stream], env=env)
    services.append(service)
    service.start()
    sent = [record(i) for i in range(300)]
    assert acknowledged(service, "kms", sent) == sent
    service.kill()  # the records are only in the log, sealed with a data key from KMS

    [key_file] = (tmp_path / "data" / "streams" / "kms" / KEYS_FOLDER).glob("*.json")
    kept = json.loads(key_file.read_text())
    assert (kept["kind"], kept["key_arn"]) == ("kms", key_arn)
    assert not (tmp_path / "data" / DEFAULT_KEY_FILE).exists()
    for path in log_files(tmp_path, "kms"):
        assert MARK not in path.read_bytes()

    service.start()  # the data key is decrypted by KMS again to read the log
    assert service.terminate() == 0
    assert sorted(delivered_ids(moto_s3, bucket)) == list(range(300))


def test_a_kms_key_that_does_not_exist_refuses_puts_and_shows_on_health(
    moto_s3: S3Server, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    gone = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
    refused = s3_stream("refused", "any-bucket")
    refused["DeliveryStreamEncryptionConfigurationInput"] = {
        "KeyType": "CUSTOMER_MANAGED_CMK",
        "KeyARN": gone,
    }
    fine = s3_stream("fine", "any-bucket")
    env = {**moto_s3.env(), "AWS_ENDPOINT_URL_KMS": moto_s3.endpoint_url}
    service = ServiceProcess(tmp_path, [refused, fine], env=env)
    services.append(service)
    service.start()

    client = service.client()
    with pytest.raises(client.exceptions.InvalidKMSResourceException) as error:
        client.put_record_batch(DeliveryStreamName="refused", Records=[{"Data": b"x"}])
    assert error.value.response["code"] == "NotFoundException"
    answer = client.put_record(DeliveryStreamName="fine", Record={"Data": b"x"})
    assert answer["Encrypted"] is False

    state = health(service)
    assert state["status"] == "degraded"
    stream = state["streams"]["refused"]
    assert stream["accepting"] is False
    assert "NotFoundException" in stream["log"]["failure"] and gone in stream["log"]["failure"]
    assert state["streams"]["fine"]["accepting"] is True
    assert "GenerateDataKey" in service.log() and "accepts no records" in service.log()
    assert service.terminate() == 0


def test_sse_kms_objects_for_the_destination_and_its_backup(
    moto_s3: S3Server, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"
    backup_key = "arn:aws:kms:us-east-1:123456789012:alias/backup"
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    moto_s3.create_bucket(bucket)
    stream = s3_stream(
        "sse",
        bucket,
        Prefix="main/",
        ErrorOutputPrefix="errors/",
        BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 900},
        EncryptionConfiguration={"KMSEncryptionConfig": {"AWSKMSKeyARN": key}},
        S3BackupMode="Enabled",
        S3BackupConfiguration={
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "backup/",
            "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 900},
            "EncryptionConfiguration": {"KMSEncryptionConfig": {"AWSKMSKeyARN": backup_key}},
        },
    )
    plain = s3_stream("plain", bucket, Prefix="plain/")
    service = ServiceProcess(tmp_path, [stream, plain], env=moto_s3.env())
    services.append(service)
    service.start()
    # 18 MiB in one object at shutdown: above the multipart threshold.
    big = [b"%07d" % i + b"y" * 7192 + b"\n" for i in range(2620)]
    for start in range(0, len(big), 500):
        part = big[start : start + 500]
        assert acknowledged(service, "sse", part) == part
    assert acknowledged(service, "plain", [b"p\n"]) == [b"p\n"]
    assert service.terminate() == 0

    s3 = moto_s3.client()
    found = {prefix: moto_s3.list_keys(bucket, prefix) for prefix in ("main/", "backup/", "plain/")}
    assert all(found.values()), found
    for prefix, wanted in (("main/", key), ("backup/", backup_key)):
        for object_key in found[prefix]:
            head = s3.head_object(Bucket=bucket, Key=object_key)
            assert head["ServerSideEncryption"] == "aws:kms"
            assert head["SSEKMSKeyId"] == wanted
            assert head["ContentLength"] > 16 * 1024 * 1024
            assert "-" in head["ETag"]  # a multipart upload's ETag
    [plain_key] = found["plain/"]
    assert "ServerSideEncryption" not in s3.head_object(Bucket=bucket, Key=plain_key)


async def test_a_data_key_kms_will_not_decrypt_leaves_the_log_untouched(
    moto_s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**moto_s3.env(), "AWS_ENDPOINT_URL_KMS": moto_s3.endpoint_url}.items():
        monkeypatch.setenv(name, value)
    key_arn = kms_client(moto_s3).create_key()["KeyMetadata"]["Arn"]
    encryption = {"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": key_arn}
    stream, dest = memory_stream(tmp_path, interval=0, encryption=encryption)
    dest.fail_forever = True
    await stream.open()
    assert stream.encrypted and stream.key_failure is None
    await stream.put([record(i) for i in range(10)])
    assert not await stream.close(timeout=0.2)
    before = {p: p.read_bytes() for p in stream.wal.directory.glob(f"*{SEGMENT_SUFFIX}")}
    [key_file] = (stream.wal.directory / KEYS_FOLDER).glob("*.json")
    kept = json.loads(key_file.read_text())
    gone = key_arn.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"
    key_file.write_text(json.dumps({**kept, "key_arn": gone}))

    stream, dest = memory_stream(tmp_path, interval=0)  # plain now, but its log is not
    await stream.open()
    assert stream.key_failure is not None
    assert stream.key_failure.kms_code == "NotFoundException"
    assert "Decrypt" in str(stream.key_failure)
    await stream.close(timeout=1)
    assert {p: p.read_bytes() for p in before} == before

    key_file.write_text(json.dumps(kept))  # KMS decrypts it again: everything is delivered
    stream, dest = memory_stream(tmp_path, interval=0)
    await stream.open()
    await dest.wait_for_records(10)
    assert dest.data == b"".join(record(i) for i in range(10))
    assert await stream.close(timeout=5)


async def test_kms_out_of_reach_refuses_puts_with_its_own_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    encryption = {
        "KeyType": "CUSTOMER_MANAGED_CMK",
        "KeyARN": "arn:aws:kms:us-east-1:123456789012:alias/logs",
    }
    stream, _ = memory_stream(tmp_path, encryption=encryption)
    await stream.open()
    assert stream.key_failure is not None and stream.key_failure.kms_code == "KMSUnreachable"
    with pytest.raises(LogKeyError):
        await stream.put([b"x"])
    assert stream.delivering  # what the log holds is still delivered
    await stream.close(timeout=1)
