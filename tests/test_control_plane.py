"""The control plane end to end: `firehose serve` with a real SeaweedFS, driven by boto3 and the
AWS CLI as a user would."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from firehose.testing.servers import S3Server, free_port
from firehose.testing.service_process import ServiceProcess, s3_stream
from tests.e2e import kms_client, wait_for

ARN = "arn:aws:s3:::{}"
ROLE = "arn:aws:iam::123456789012:role/firehose"
KEY = re.compile(
    r"^(?P<prefix>.*?)(?P<stream>[\w.-]+)-(?P<version>\d+)-\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2}-"
    r"[0-9a-f-]{36}$"
)
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def error_of(call: Callable[[], Any]) -> tuple[str, str]:
    """(code, message) of the ClientError `call` raises."""
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    return error["Code"], error["Message"]


def s3_config(bucket: str, **members: Any) -> dict[str, Any]:
    return {"BucketARN": ARN.format(bucket), "RoleARN": ROLE, **members}


def wait_status(client: Any, name: str, status: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen.update(client.describe_delivery_stream(DeliveryStreamName=name))
        return bool(seen["DeliveryStreamDescription"]["DeliveryStreamStatus"] == status)

    wait_for(reached, timeout=30)
    return dict(seen["DeliveryStreamDescription"])


def wait_gone(client: Any, name: str, timeout: float = 60) -> None:
    def gone() -> bool:
        try:
            client.describe_delivery_stream(DeliveryStreamName=name)
        except client.exceptions.ResourceNotFoundException:
            return True
        return False

    wait_for(gone, timeout=timeout)


def call(service: ServiceProcess, operation: str, body: dict[str, Any]) -> Any:
    """One API call as raw JSON 1.1, for what an SDK would not send."""
    request = urllib.request.Request(
        service.url,
        data=json.dumps(body).encode(),
        headers={
            "X-Amz-Target": f"Firehose_20150804.{operation}",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def records(start: int, count: int) -> list[bytes]:
    return [json.dumps({"n": n}).encode() + b"\n" for n in range(start, start + count)]


def put_all(client: Any, name: str, items: list[bytes]) -> None:
    answer = client.put_record_batch(
        DeliveryStreamName=name, Records=[{"Data": item} for item in items]
    )
    assert answer["FailedPutCount"] == 0


def delivered(server: S3Server, bucket: str, prefix: str = "") -> list[bytes]:
    return [
        line + b"\n"
        for key in server.list_keys(bucket, prefix)
        for line in server.get(bucket, key).splitlines()
    ]


@pytest.fixture(scope="module")
def fresh_bucket(seaweedfs: S3Server) -> str:
    """One bucket for the module, each test under prefixes of its own: every bucket costs
    SeaweedFS a volume, and it has only so many."""
    name = f"cp-{uuid.uuid4().hex[:12]}"
    seaweedfs.create_bucket(name)
    return name


@pytest.fixture
def service(
    seaweedfs: S3Server, fresh_bucket: str, tmp_path: Path, services: list[ServiceProcess]
) -> ServiceProcess:
    """A service with one stream from a config file ("fixed"); others come through the API."""
    process = ServiceProcess(
        tmp_path,
        [s3_stream("fixed", fresh_bucket, Prefix="fixed/")],
        env={**seaweedfs.env(), "FIREHOSE_SHUTDOWN_TIMEOUT_SECONDS": "20"},
    )
    services.append(process)
    return process.start()


def test_create_put_describe_list_and_tags(
    service: ServiceProcess, seaweedfs: S3Server, fresh_bucket: str
) -> None:
    client = service.client()
    arn = client.create_delivery_stream(
        DeliveryStreamName="made",
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration=s3_config(
            fresh_bucket,
            Prefix="made/",
            BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 1},
        ),
        Tags=[{"Key": "team", "Value": "web"}, {"Key": "env", "Value": "dev"}],
    )["DeliveryStreamARN"]
    assert arn == "arn:aws:firehose:us-east-1:000000000000:deliverystream/made"
    described = wait_status(client, "made", "ACTIVE")
    assert described["VersionId"] == "1"
    assert described["DeliveryStreamType"] == "DirectPut"
    assert described["DeliveryStreamEncryptionConfiguration"] == {"Status": "DISABLED"}
    assert described["CreateTimestamp"] == described["LastUpdateTimestamp"]
    assert described["HasMoreDestinations"] is False
    (destination,) = described["Destinations"]
    assert destination["DestinationId"] == "destinationId-000000000001"
    extended = destination["ExtendedS3DestinationDescription"]
    assert extended["CompressionFormat"] == "UNCOMPRESSED"
    assert extended["EncryptionConfiguration"] == {"NoEncryptionConfig": "NoEncryption"}
    assert extended["S3BackupMode"] == "Disabled"
    after = client.describe_delivery_stream(
        DeliveryStreamName="made", Limit=1, ExclusiveStartDestinationId=destination["DestinationId"]
    )["DeliveryStreamDescription"]
    assert after["Destinations"] == [] and after["HasMoreDestinations"] is False

    listed = client.list_delivery_streams()
    assert listed == {**listed, "DeliveryStreamNames": ["fixed", "made"]}
    assert client.list_delivery_streams(ExclusiveStartDeliveryStreamName="fixed")[
        "DeliveryStreamNames"
    ] == ["made"]

    sent = records(0, 50)
    put_all(client, "made", sent)
    client.put_record(DeliveryStreamName="made", Record={"Data": b"last\n"})
    wait_for(lambda: len(delivered(seaweedfs, fresh_bucket, "made/")) == 51)
    assert sorted(delivered(seaweedfs, fresh_bucket, "made/")) == sorted([*sent, b"last\n"])
    for key in seaweedfs.list_keys(fresh_bucket, "made/"):
        match = KEY.match(key)
        assert match is not None and match["stream"] == "made" and match["version"] == "1"

    tags = client.list_tags_for_delivery_stream(DeliveryStreamName="made")
    assert tags == {
        **tags,
        "Tags": [{"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "web"}],
        "HasMoreTags": False,
    }


def test_create_refuses_what_aws_refuses(service: ServiceProcess, fresh_bucket: str) -> None:
    client = service.client()

    def create(name: str = "bad", **members: Any) -> Any:
        members.setdefault("ExtendedS3DestinationConfiguration", s3_config(fresh_bucket))
        return lambda: client.create_delivery_stream(DeliveryStreamName=name, **members)

    assert error_of(create("bad/name")) == (
        "ValidationException",
        "1 validation error detected: Value 'bad/name' at 'deliveryStreamName' failed to "
        "satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+",
    )
    too_big = s3_config(fresh_bucket, BufferingHints={"SizeInMBs": 500, "IntervalInSeconds": 60})
    assert error_of(create(ExtendedS3DestinationConfiguration=too_big)) == (
        "ValidationException",
        "1 validation error detected: Value '500' at "
        "'extendedS3DestinationConfiguration.bufferingHints.sizeInMBs' failed to satisfy "
        "constraint: Member must have value less than or equal to 128",
    )
    code, message = error_of(create(DeliveryStreamType="Sideways"))
    assert code == "ValidationException" and "deliveryStreamType" in message
    code, message = error_of(create(Tags=[{"Key": f"k{i}"} for i in range(51)]))
    assert code == "ValidationException" and "less than or equal to 50" in message
    code, message = error_of(create(Tags=[{"Key": "aws:reserved", "Value": "x"}]))
    assert code == "ValidationException" and "tags.1.member.key" in message
    code, message = error_of(create(DeliveryStreamEncryptionConfigurationInput={"KeyType": "MINE"}))
    assert code == "ValidationException" and "keyType" in message

    bad_arn = {"BucketARN": "arn:aws:s3:::", "RoleARN": ROLE}
    code, message = error_of(create(ExtendedS3DestinationConfiguration=bad_arn))
    assert code == "InvalidArgumentException"
    assert "ExtendedS3DestinationConfiguration.BucketARN" in message
    bad_prefix = s3_config(fresh_bucket, Prefix="!{nonsense}/")
    code, message = error_of(create(ExtendedS3DestinationConfiguration=bad_prefix))
    assert code == "InvalidArgumentException"
    assert message.startswith("CreateDeliveryStream: ExtendedS3DestinationConfiguration.Prefix")
    code, message = error_of(
        create(DeliveryStreamEncryptionConfigurationInput={"KeyType": "CUSTOMER_MANAGED_CMK"})
    )
    assert code == "InvalidArgumentException" and "KeyARN" in message
    kinesis = {
        "KinesisStreamARN": "arn:aws:kinesis:us-east-1:123456789012:stream/s",
        "RoleARN": ROLE,
    }
    code, message = error_of(
        create(DeliveryStreamType="KinesisStreamAsSource", KinesisStreamSourceConfiguration=kinesis)
    )
    assert code == "InvalidArgumentException" and "config file" in message

    assert error_of(create("fixed"))[0] == "ResourceInUseException"
    client.create_delivery_stream(
        DeliveryStreamName="once", ExtendedS3DestinationConfiguration=s3_config(fresh_bucket)
    )
    assert error_of(create("once")) == (
        "ResourceInUseException",
        "Firehose once under account 000000000000 already exists.",
    )
    assert client.list_delivery_streams()["DeliveryStreamNames"] == ["fixed", "once"]


def test_stream_count_limit(
    seaweedfs: S3Server, fresh_bucket: str, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    process = ServiceProcess(
        tmp_path,
        [s3_stream("fixed", fresh_bucket)],
        env={**seaweedfs.env(), "FIREHOSE_MAX_DELIVERY_STREAMS": "2"},
    )
    services.append(process)
    client = process.start().client()
    body = s3_config(fresh_bucket)
    client.create_delivery_stream(DeliveryStreamName="two", ExtendedS3DestinationConfiguration=body)
    code, message = error_of(
        lambda: client.create_delivery_stream(
            DeliveryStreamName="three", ExtendedS3DestinationConfiguration=body
        )
    )
    assert code == "LimitExceededException" and "quota of 2" in message
    wait_status(client, "two", "ACTIVE")
    client.delete_delivery_stream(DeliveryStreamName="two")
    wait_gone(client, "two")
    client.create_delivery_stream(
        DeliveryStreamName="three", ExtendedS3DestinationConfiguration=body
    )


def test_terraform_create_body_is_accepted(service: ServiceProcess, fresh_bucket: str) -> None:
    """What the Terraform AWS provider sends for an extended S3 stream with few settings."""
    client = service.client()
    client.create_delivery_stream(
        DeliveryStreamName="terraform-made",
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "BucketARN": ARN.format(fresh_bucket),
            "RoleARN": ROLE,
            "Prefix": "",
            "ErrorOutputPrefix": "",
            "BufferingHints": {"IntervalInSeconds": 300, "SizeInMBs": 5},
            "CompressionFormat": "UNCOMPRESSED",
            "CloudWatchLoggingOptions": {"Enabled": False, "LogGroupName": "", "LogStreamName": ""},
            "ProcessingConfiguration": {"Enabled": False, "Processors": []},
            "S3BackupMode": "Disabled",
            "DynamicPartitioningConfiguration": {
                "Enabled": False,
                "RetryOptions": {"DurationInSeconds": 300},
            },
            "FileExtension": "",
            "CustomTimeZone": "UTC",
            "EncryptionConfiguration": {"NoEncryptionConfig": "NoEncryption"},
        },
        Tags=[{"Key": "Name", "Value": "terraform-made"}],
    )
    wait_status(client, "terraform-made", "ACTIVE")


def test_update_with_records_buffered_loses_nothing_and_names_version_2(
    service: ServiceProcess, seaweedfs: S3Server, fresh_bucket: str
) -> None:
    client = service.client()
    client.create_delivery_stream(
        DeliveryStreamName="moving",
        ExtendedS3DestinationConfiguration=s3_config(
            fresh_bucket,
            Prefix="moving-before/",
            BufferingHints={"SizeInMBs": 3, "IntervalInSeconds": 900},
            EncryptionConfiguration={"NoEncryptionConfig": "NoEncryption"},
        ),
    )
    first = wait_status(client, "moving", "ACTIVE")
    buffered = records(0, 200)
    put_all(client, "moving", buffered)

    # Puts keep coming while the update swaps the stream's runtime: none may fail.
    stop = threading.Event()
    during: list[bytes] = []
    failures: list[BaseException] = []

    def produce() -> None:
        producer = service.client()
        n = 1000
        while not stop.is_set():
            batch = records(n, 10)
            try:
                put_all(producer, "moving", batch)
            except BaseException as exc:
                failures.append(exc)
                return
            during.extend(batch)
            n += 10

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        wait_for(lambda: len(during) >= 50)
        client.update_destination(
            DeliveryStreamName="moving",
            CurrentDeliveryStreamVersionId="1",
            DestinationId="destinationId-000000000001",
            ExtendedS3DestinationUpdate={
                "Prefix": "moving-after/",
                "BufferingHints": {"IntervalInSeconds": 1},
                # SeaweedFS refuses SSE-KMS puts (it has no KMS): the merge of KMS settings is
                # checked in test_destination_update.
                "EncryptionConfiguration": {"NoEncryptionConfig": "NoEncryption"},
            },
        )
        count = len(during)
        wait_for(lambda: len(during) >= count + 50)
    finally:
        stop.set()
        producer.join()
    assert not failures

    described = client.describe_delivery_stream(DeliveryStreamName="moving")[
        "DeliveryStreamDescription"
    ]
    assert described["VersionId"] == "2"
    assert described["LastUpdateTimestamp"] > first["LastUpdateTimestamp"]
    assert described["CreateTimestamp"] == first["CreateTimestamp"]
    extended = described["Destinations"][0]["ExtendedS3DestinationDescription"]
    # Members the update left out keep their values, nested ones too.
    assert extended["BufferingHints"] == {"SizeInMBs": 3, "IntervalInSeconds": 1}
    assert extended["EncryptionConfiguration"] == {"NoEncryptionConfig": "NoEncryption"}
    assert extended["Prefix"] == "moving-after/"

    expected = sorted([*buffered, *during])
    wait_for(lambda: len(set(delivered(seaweedfs, fresh_bucket, "moving-"))) >= len(expected))
    assert sorted(set(delivered(seaweedfs, fresh_bucket, "moving-"))) == expected
    # Everything buffered at the update was delivered by the new runtime.
    assert seaweedfs.list_keys(fresh_bucket, "moving-before/") == []
    keys = seaweedfs.list_keys(fresh_bucket, "moving-after/")
    assert keys and all(KEY.match(key)["version"] == "2" for key in keys)  # type: ignore[index]

    stale = error_of(
        lambda: client.update_destination(
            DeliveryStreamName="moving",
            CurrentDeliveryStreamVersionId="1",
            DestinationId="destinationId-000000000001",
            ExtendedS3DestinationUpdate={"Prefix": "x/"},
        )
    )
    assert stale[0] == "ConcurrentModificationException"


def test_update_refusals(service: ServiceProcess, fresh_bucket: str) -> None:
    client = service.client()
    client.create_delivery_stream(
        DeliveryStreamName="rules",
        ExtendedS3DestinationConfiguration=s3_config(
            fresh_bucket,
            S3BackupMode="Enabled",
            S3BackupConfiguration={"BucketARN": ARN.format(fresh_bucket), "RoleARN": ROLE},
        ),
    )
    wait_status(client, "rules", "ACTIVE")

    def update(
        version: str = "1", destination: str = "destinationId-000000000001", **member: Any
    ) -> Callable[[], Any]:
        return lambda: client.update_destination(
            DeliveryStreamName="rules",
            CurrentDeliveryStreamVersionId=version,
            DestinationId=destination,
            **member,
        )

    prefix: dict[str, Any] = {"ExtendedS3DestinationUpdate": {"Prefix": "p/"}}
    assert error_of(update("7", **prefix))[0] == "ConcurrentModificationException"
    assert error_of(update(destination="destinationId-000000000009", **prefix))[0] == (
        "InvalidArgumentException"
    )
    code, message = error_of(update("v1", **prefix))
    assert code == "ValidationException" and "currentDeliveryStreamVersionId" in message
    code, message = error_of(update(ExtendedS3DestinationUpdate={"S3BackupMode": "Disabled"}))
    assert code == "InvalidArgumentException" and "S3BackupMode" in message
    partitioning = {"DynamicPartitioningConfiguration": {"Enabled": True}, "Prefix": "!{x}/"}
    code, message = error_of(update(ExtendedS3DestinationUpdate=partitioning))
    assert code == "InvalidArgumentException"
    search = {
        "DomainARN": "arn:aws:es:us-east-1:123456789012:domain/logs",
        "IndexName": "logs",
        "RoleARN": ROLE,
        "S3Update": {"BucketARN": ARN.format(fresh_bucket), "RoleARN": ROLE},
    }
    code, message = error_of(update(AmazonopensearchserviceDestinationUpdate=search))
    assert code == "InvalidArgumentException" and "OpenSearch" in message
    # A change of kind replaces the destination: every required member must be given.
    code, message = error_of(update(HttpEndpointDestinationUpdate={"RoleARN": ROLE}))
    assert code == "InvalidArgumentException" and "EndpointConfiguration" in message
    code, _ = error_of(lambda: client.update_destination(
        DeliveryStreamName="rules", CurrentDeliveryStreamVersionId="1",
        DestinationId="destinationId-000000000001",
    ))  # fmt: skip
    assert code == "InvalidArgumentException"
    code, _ = error_of(
        lambda: client.update_destination(
            DeliveryStreamName="nope",
            CurrentDeliveryStreamVersionId="1",
            DestinationId="destinationId-000000000001",
            **prefix,
        )
    )
    assert code == "ResourceNotFoundException"
    # None of the refused updates changed anything.
    described = client.describe_delivery_stream(DeliveryStreamName="rules")
    assert described["DeliveryStreamDescription"]["VersionId"] == "1"
    client.update_destination(
        DeliveryStreamName="rules",
        CurrentDeliveryStreamVersionId="1",
        DestinationId="destinationId-000000000001",
        HttpEndpointDestinationUpdate={
            "EndpointConfiguration": {"Url": "https://127.0.0.1:9/ingest"},
            "S3Update": {"BucketARN": ARN.format(fresh_bucket), "RoleARN": ROLE},
        },
    )
    described = client.describe_delivery_stream(DeliveryStreamName="rules")
    description = described["DeliveryStreamDescription"]
    assert description["VersionId"] == "2"
    assert "HttpEndpointDestinationDescription" in description["Destinations"][0]


def test_delete_delivers_first_unless_forced(
    service: ServiceProcess, seaweedfs: S3Server, fresh_bucket: str
) -> None:
    client = service.client()
    slow = s3_config(fresh_bucket, BufferingHints={"SizeInMBs": 5, "IntervalInSeconds": 900})
    for name in ("kept", "dropped"):
        client.create_delivery_stream(
            DeliveryStreamName=name,
            ExtendedS3DestinationConfiguration={**slow, "Prefix": f"{name}/"},
        )
        wait_status(client, name, "ACTIVE")
        put_all(client, name, records(0, 20))
    logs = service.workdir / "data" / "streams"
    assert (logs / "kept").is_dir() and (logs / "dropped").is_dir()

    client.delete_delivery_stream(DeliveryStreamName="kept")
    client.delete_delivery_stream(DeliveryStreamName="dropped", AllowForceDelete=True)
    wait_gone(client, "kept")
    wait_gone(client, "dropped")
    assert sorted(delivered(seaweedfs, fresh_bucket, "kept/")) == sorted(records(0, 20))
    assert seaweedfs.list_keys(fresh_bucket, "dropped/") == []
    assert not (logs / "kept").exists() and not (logs / "dropped").exists()
    assert client.list_delivery_streams()["DeliveryStreamNames"] == ["fixed"]
    code, _ = error_of(lambda: client.put_record(DeliveryStreamName="kept", Record={"Data": b"x"}))
    assert code == "ResourceNotFoundException"
    code, _ = error_of(lambda: client.delete_delivery_stream(DeliveryStreamName="kept"))
    assert code == "ResourceNotFoundException"

    # The name is free again, with a fresh log.
    client.create_delivery_stream(
        DeliveryStreamName="kept", ExtendedS3DestinationConfiguration=slow
    )
    described = wait_status(client, "kept", "ACTIVE")
    assert described["VersionId"] == "1"


def test_a_deleting_stream_refuses_puts_and_changes(
    service: ServiceProcess, seaweedfs: S3Server
) -> None:
    """A stream whose store does not answer cannot deliver: its delete waits out the shutdown
    timeout (20 s here) in DELETING, then fails and keeps the records; only a forced delete
    drops them."""
    client = service.client()
    # EndpointURL is ours, so boto3 would refuse it: the body goes as the wire has it.
    nowhere = s3_config(
        "nowhere",
        EndpointURL=f"http://127.0.0.1:{free_port()}",
        BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0},
    )
    call(
        service,
        "CreateDeliveryStream",
        {"DeliveryStreamName": "stuck", "ExtendedS3DestinationConfiguration": nowhere},
    )
    wait_status(client, "stuck", "ACTIVE")
    put_all(client, "stuck", records(0, 5))
    client.delete_delivery_stream(DeliveryStreamName="stuck")
    described = client.describe_delivery_stream(DeliveryStreamName="stuck")
    assert described["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "DELETING"
    assert "stuck" in client.list_delivery_streams()["DeliveryStreamNames"]
    code, _ = error_of(lambda: client.put_record(DeliveryStreamName="stuck", Record={"Data": b"x"}))
    assert code == "ResourceNotFoundException"
    assert error_of(lambda: client.delete_delivery_stream(DeliveryStreamName="stuck"))[0] == (
        "ResourceInUseException"
    )
    code, _ = error_of(
        lambda: client.tag_delivery_stream(
            DeliveryStreamName="stuck", Tags=[{"Key": "a", "Value": "b"}]
        )
    )
    assert code == "ResourceInUseException"

    def status() -> str:
        described = client.describe_delivery_stream(DeliveryStreamName="stuck")
        return str(described["DeliveryStreamDescription"]["DeliveryStreamStatus"])

    wait_for(lambda: status() == "DELETING_FAILED")
    failure = client.describe_delivery_stream(DeliveryStreamName="stuck")[
        "DeliveryStreamDescription"
    ]["FailureDescription"]
    assert failure["Type"] == "UNKNOWN_ERROR" and "AllowForceDelete" in failure["Details"]
    assert (service.workdir / "data" / "streams" / "stuck").is_dir()
    client.delete_delivery_stream(DeliveryStreamName="stuck", AllowForceDelete=True)
    wait_gone(client, "stuck")
    assert not (service.workdir / "data" / "streams" / "stuck").exists()


def test_config_file_streams_are_read_only(service: ServiceProcess) -> None:
    client = service.client()
    calls: dict[str, Callable[[], Any]] = {
        "update": lambda: client.update_destination(
            DeliveryStreamName="fixed",
            CurrentDeliveryStreamVersionId="1",
            DestinationId="destinationId-000000000001",
            ExtendedS3DestinationUpdate={"Prefix": "x/"},
        ),
        "delete": lambda: client.delete_delivery_stream(DeliveryStreamName="fixed"),
        "tag": lambda: client.tag_delivery_stream(
            DeliveryStreamName="fixed", Tags=[{"Key": "a", "Value": "b"}]
        ),
        "untag": lambda: client.untag_delivery_stream(DeliveryStreamName="fixed", TagKeys=["a"]),
        "start": lambda: client.start_delivery_stream_encryption(DeliveryStreamName="fixed"),
        "stop": lambda: client.stop_delivery_stream_encryption(DeliveryStreamName="fixed"),
    }
    for call in calls.values():
        code, message = error_of(call)
        assert code == "InvalidArgumentException" and "defined in a config file" in message
    described = client.describe_delivery_stream(DeliveryStreamName="fixed")
    assert described["DeliveryStreamDescription"]["DeliveryStreamStatus"] == "ACTIVE"
    assert client.list_tags_for_delivery_stream(DeliveryStreamName="fixed")["Tags"] == []


def test_tags_overwrite_untag_limit_and_pages(service: ServiceProcess, fresh_bucket: str) -> None:
    client = service.client()
    client.create_delivery_stream(
        DeliveryStreamName="tagged",
        ExtendedS3DestinationConfiguration=s3_config(fresh_bucket),
        Tags=[{"Key": "a", "Value": "1"}],
    )
    wait_status(client, "tagged", "ACTIVE")
    client.tag_delivery_stream(
        DeliveryStreamName="tagged",
        Tags=[{"Key": "a", "Value": "2"}, *({"Key": f"k{i:02}", "Value": "v"} for i in range(48))],
    )
    listed = client.list_tags_for_delivery_stream(DeliveryStreamName="tagged", Limit=10)
    assert len(listed["Tags"]) == 10 and listed["HasMoreTags"] is True
    assert listed["Tags"][0] == {"Key": "a", "Value": "2"}
    pages, start = [], None
    while True:
        extra: dict[str, str] = {} if start is None else {"ExclusiveStartTagKey": start}
        page = client.list_tags_for_delivery_stream(DeliveryStreamName="tagged", Limit=20, **extra)
        pages.append(page["Tags"])
        if not page["HasMoreTags"]:
            break
        start = page["Tags"][-1]["Key"]
    assert [len(p) for p in pages] == [20, 20, 9]
    code, _ = error_of(
        lambda: client.tag_delivery_stream(
            DeliveryStreamName="tagged", Tags=[{"Key": "x", "Value": "1"}, {"Key": "y"}]
        )
    )
    assert code == "LimitExceededException"
    client.tag_delivery_stream(DeliveryStreamName="tagged", Tags=[{"Key": "k00", "Value": "w"}])
    client.untag_delivery_stream(DeliveryStreamName="tagged", TagKeys=["a", "never-there"])
    tags = client.list_tags_for_delivery_stream(DeliveryStreamName="tagged")["Tags"]
    assert len(tags) == 48 and tags[0] == {"Key": "k00", "Value": "w"}
    code, message = error_of(
        lambda: client.tag_delivery_stream(
            DeliveryStreamName="tagged", Tags=[{"Key": "ok", "Value": "no<>"}]
        )
    )
    assert code == "ValidationException" and "tags.1.member.value" in message
    code, _ = error_of(
        lambda: client.list_tags_for_delivery_stream(DeliveryStreamName="tagged", Limit=51)
    )
    assert code == "ValidationException"
    code, _ = error_of(lambda: client.list_tags_for_delivery_stream(DeliveryStreamName="nope"))
    assert code == "ResourceNotFoundException"


def test_start_and_stop_encryption(
    seaweedfs: S3Server,
    moto_s3: S3Server,
    fresh_bucket: str,
    tmp_path: Path,
    services: list[ServiceProcess],
) -> None:
    # Customer-managed keys come from KMS: moto's, in server mode.
    kms = kms_client(moto_s3)
    key_arn = kms.create_key()["KeyMetadata"]["Arn"]
    env = {
        **seaweedfs.env(),
        "FIREHOSE_SHUTDOWN_TIMEOUT_SECONDS": "20",
        "AWS_ENDPOINT_URL_KMS": moto_s3.endpoint_url,
    }
    service = ServiceProcess(tmp_path, [s3_stream("fixed", fresh_bucket, Prefix="fixed/")], env=env)
    services.append(service)
    service.start()
    client = service.client()
    client.create_delivery_stream(
        DeliveryStreamName="secret",
        ExtendedS3DestinationConfiguration=s3_config(fresh_bucket, Prefix="secret/"),
    )
    wait_status(client, "secret", "ACTIVE")

    def encryption() -> dict[str, Any]:
        described = client.describe_delivery_stream(DeliveryStreamName="secret")
        shown: dict[str, Any] = described["DeliveryStreamDescription"][
            "DeliveryStreamEncryptionConfiguration"
        ]
        return shown

    client.start_delivery_stream_encryption(
        DeliveryStreamName="secret",
        DeliveryStreamEncryptionConfigurationInput={"KeyType": "AWS_OWNED_CMK"},
    )
    assert encryption()["Status"] in ("ENABLING", "ENABLED")
    wait_for(lambda: encryption()["Status"] == "ENABLED")
    assert encryption() == {"Status": "ENABLED", "KeyType": "AWS_OWNED_CMK"}
    client.start_delivery_stream_encryption(
        DeliveryStreamName="secret",
        DeliveryStreamEncryptionConfigurationInput={
            "KeyType": "CUSTOMER_MANAGED_CMK",
            "KeyARN": key_arn,
        },
    )
    wait_for(lambda: encryption().get("KeyARN") == key_arn and encryption()["Status"] == "ENABLED")
    assert encryption()["KeyType"] == "CUSTOMER_MANAGED_CMK"
    put_all(client, "secret", records(10, 3))
    # A key KMS does not have: the switch fails and the stream keeps the key it had.
    client.start_delivery_stream_encryption(
        DeliveryStreamName="secret",
        DeliveryStreamEncryptionConfigurationInput={
            "KeyType": "CUSTOMER_MANAGED_CMK",
            "KeyARN": KMS_KEY,
        },
    )
    wait_for(lambda: encryption()["Status"] == "ENABLING_FAILED")
    assert encryption().get("KeyARN") == key_arn
    put_all(client, "secret", records(20, 3))
    client.stop_delivery_stream_encryption(DeliveryStreamName="secret")
    assert encryption()["Status"] in ("DISABLING", "DISABLED")
    wait_for(lambda: encryption() == {"Status": "DISABLED"})
    put_all(client, "secret", records(0, 3))

    bad_key = {"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": "arn:aws:s3:::not-a-key"}
    code, message = error_of(
        lambda: client.start_delivery_stream_encryption(
            DeliveryStreamName="secret", DeliveryStreamEncryptionConfigurationInput=bad_key
        )
    )
    assert code == "ValidationException" and "keyARN" in message
    code, _ = error_of(
        lambda: client.start_delivery_stream_encryption(
            DeliveryStreamName="secret",
            DeliveryStreamEncryptionConfigurationInput={"KeyType": "CUSTOMER_MANAGED_CMK"},
        )
    )
    assert code == "InvalidArgumentException"
    code, _ = error_of(lambda: client.stop_delivery_stream_encryption(DeliveryStreamName="nope"))
    assert code == "ResourceNotFoundException"

    # 4 calls made; 21 more reach the limit of 25 a day, the 26th is refused.
    for call in range(21):
        if call % 2 == 0:
            client.start_delivery_stream_encryption(DeliveryStreamName="secret")
            wait_for(lambda: encryption()["Status"] == "ENABLED")
        else:
            client.stop_delivery_stream_encryption(DeliveryStreamName="secret")
            wait_for(lambda: encryption()["Status"] == "DISABLED")
    code, message = error_of(
        lambda: client.start_delivery_stream_encryption(DeliveryStreamName="secret")
    )
    assert code == "LimitExceededException" and "24 hours" in message


def test_restart_and_sigkill_keep_api_streams(
    service: ServiceProcess, seaweedfs: S3Server, fresh_bucket: str
) -> None:
    client = service.client()
    client.create_delivery_stream(
        DeliveryStreamName="durable",
        ExtendedS3DestinationConfiguration=s3_config(
            fresh_bucket,
            Prefix="durable/",
            BufferingHints={"SizeInMBs": 5, "IntervalInSeconds": 900},
        ),
        Tags=[{"Key": "keep", "Value": "me"}],
    )
    first = wait_status(client, "durable", "ACTIVE")
    client.update_destination(
        DeliveryStreamName="durable",
        CurrentDeliveryStreamVersionId="1",
        DestinationId="destinationId-000000000001",
        ExtendedS3DestinationUpdate={"Prefix": "durable-v2/"},
    )
    client.start_delivery_stream_encryption(DeliveryStreamName="durable")
    wait_for(
        lambda: (
            client.describe_delivery_stream(DeliveryStreamName="durable")[
                "DeliveryStreamDescription"
            ]["DeliveryStreamEncryptionConfiguration"]["Status"]
            == "ENABLED"
        )
    )
    put_all(client, "durable", records(0, 30))
    # A delete acknowledged just before the kill is finished by the next start.
    client.create_delivery_stream(
        DeliveryStreamName="doomed", ExtendedS3DestinationConfiguration=s3_config(fresh_bucket)
    )
    wait_status(client, "doomed", "ACTIVE")
    client.delete_delivery_stream(DeliveryStreamName="doomed", AllowForceDelete=True)
    service.kill()

    service.start()
    client = service.client()
    described = client.describe_delivery_stream(DeliveryStreamName="durable")[
        "DeliveryStreamDescription"
    ]
    assert described["VersionId"] == "2"
    assert described["CreateTimestamp"] == first["CreateTimestamp"]
    assert described["DeliveryStreamEncryptionConfiguration"]["Status"] == "ENABLED"
    assert client.list_tags_for_delivery_stream(DeliveryStreamName="durable")["Tags"] == [
        {"Key": "keep", "Value": "me"}
    ]
    assert client.list_delivery_streams()["DeliveryStreamNames"] == ["durable", "fixed"]
    assert not (service.workdir / "data" / "streams" / "doomed").exists()
    assert service.terminate() == 0  # the shutdown flush delivers what the log held
    keys = seaweedfs.list_keys(fresh_bucket, "durable-v2/")
    assert all(KEY.match(key)["version"] == "2" for key in keys)  # type: ignore[index]
    assert sorted(delivered(seaweedfs, fresh_bucket, "durable-v2/")) == sorted(records(0, 30))


def test_sigkill_during_updates_leaves_a_consistent_stream(
    service: ServiceProcess, seaweedfs: S3Server, fresh_bucket: str
) -> None:
    """Kill the service while updates and puts run: after the restart the stream is at one of
    the versions it went through and every acknowledged record is delivered."""
    client = service.client()
    client.create_delivery_stream(
        DeliveryStreamName="busy",
        ExtendedS3DestinationConfiguration=s3_config(
            fresh_bucket, Prefix="busy/", BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 60}
        ),
    )
    wait_status(client, "busy", "ACTIVE")
    acknowledged: list[bytes] = []
    versions: list[int] = [1]
    errors: list[Exception] = []
    stop = threading.Event()

    def update_forever() -> None:
        updater = service.client()
        while not stop.is_set():
            try:
                updater.update_destination(
                    DeliveryStreamName="busy",
                    CurrentDeliveryStreamVersionId=str(versions[-1]),
                    DestinationId="destinationId-000000000001",
                    ExtendedS3DestinationUpdate={"Prefix": f"busy-v{versions[-1] + 1}/"},
                )
            except Exception as exc:
                errors.append(exc)
                return
            versions.append(versions[-1] + 1)

    def put_forever() -> None:
        producer = service.client()
        n = 0
        while not stop.is_set():
            batch = records(n, 20)
            try:
                put_all(producer, "busy", batch)
            except Exception as exc:
                errors.append(exc)
                return
            acknowledged.extend(batch)
            n += 20

    threads = [threading.Thread(target=update_forever), threading.Thread(target=put_forever)]
    for thread in threads:
        thread.start()
    wait_for(lambda: (len(versions) >= 4 and len(acknowledged) >= 200) or bool(errors))
    assert not errors
    service.kill()
    stop.set()
    for thread in threads:
        thread.join()

    service.start()
    client = service.client()
    described = client.describe_delivery_stream(DeliveryStreamName="busy")
    version = int(described["DeliveryStreamDescription"]["VersionId"])
    assert versions[-1] <= version <= versions[-1] + 1
    assert not list((service.workdir / "data" / "api-streams").glob(".*.tmp"))
    assert service.terminate() == 0
    assert set(acknowledged) <= set(delivered(seaweedfs, fresh_bucket, "busy"))


def test_a_name_in_a_config_file_and_the_store_stops_the_start(
    service: ServiceProcess, fresh_bucket: str
) -> None:
    client = service.client()
    client.create_delivery_stream(
        DeliveryStreamName="twice", ExtendedS3DestinationConfiguration=s3_config(fresh_bucket)
    )
    wait_status(client, "twice", "ACTIVE")
    assert service.terminate() == 0
    service.streams.append(s3_stream("twice", fresh_bucket))
    with pytest.raises(RuntimeError) as caught:
        service.start()
    assert "delivery stream twice is defined in a config file and was also created" in str(
        caught.value
    )


def test_aws_cli_manages_streams(
    service: ServiceProcess, seaweedfs: S3Server, fresh_bucket: str
) -> None:
    aws = str(Path(sys.executable).parent / "aws")
    env = {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": str(Path(sys.executable).parent),
    }

    def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [aws, "firehose", *args, "--endpoint-url", service.url],
            capture_output=True, check=check, env=env, text=True,
        )  # fmt: skip

    config = json.dumps(s3_config(fresh_bucket, Prefix="cli/"))
    created = cli(
        "create-delivery-stream", "--delivery-stream-name", "by-cli",
        "--extended-s3-destination-configuration", config,
    )  # fmt: skip
    assert json.loads(created.stdout)["DeliveryStreamARN"].endswith("/by-cli")
    wait_status(service.client(), "by-cli", "ACTIVE")
    described = json.loads(
        cli("describe-delivery-stream", "--delivery-stream-name", "by-cli").stdout
    )
    assert described["DeliveryStreamDescription"]["VersionId"] == "1"
    cli(
        "update-destination", "--delivery-stream-name", "by-cli",
        "--current-delivery-stream-version-id", "1",
        "--destination-id", "destinationId-000000000001",
        "--extended-s3-destination-update", json.dumps({"Prefix": "cli2/"}),
    )  # fmt: skip
    cli("tag-delivery-stream", "--delivery-stream-name", "by-cli", "--tags", "Key=a,Value=b")
    tags = json.loads(
        cli("list-tags-for-delivery-stream", "--delivery-stream-name", "by-cli").stdout
    )
    assert tags["Tags"] == [{"Key": "a", "Value": "b"}]
    refused = cli(
        "update-destination", "--delivery-stream-name", "by-cli",
        "--current-delivery-stream-version-id", "1",
        "--destination-id", "destinationId-000000000001",
        "--extended-s3-destination-update", json.dumps({"Prefix": "cli3/"}),
        check=False,
    )  # fmt: skip
    assert refused.returncode != 0 and "ConcurrentModificationException" in refused.stderr
    cli("delete-delivery-stream", "--delivery-stream-name", "by-cli")
    wait_gone(service.client(), "by-cli")
    listed = json.loads(cli("list-delivery-streams").stdout)
    assert listed["DeliveryStreamNames"] == ["fixed"]


def test_a_service_with_an_empty_config_folder_serves_api_streams(
    seaweedfs: S3Server, fresh_bucket: str, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    service = ServiceProcess(tmp_path, [], env=seaweedfs.env())
    services.append(service)
    service.start()
    client = service.client()
    assert client.list_delivery_streams()["DeliveryStreamNames"] == []
    client.create_delivery_stream(
        DeliveryStreamName="only",
        ExtendedS3DestinationConfiguration=s3_config(
            fresh_bucket, Prefix="only/", BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0}
        ),
    )
    wait_status(client, "only", "ACTIVE")
    sent = records(0, 20)
    put_all(client, "only", sent)
    wait_for(lambda: len(delivered(seaweedfs, fresh_bucket, "only/")) >= len(sent))
    assert sorted(delivered(seaweedfs, fresh_bucket, "only/")) == sorted(sent)
