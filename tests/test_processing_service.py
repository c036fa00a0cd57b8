"""Record processing through `firehose serve`: built-in processors, the error prefix and the
source-record backup, read back from a real S3 store."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

from firehose.testing.servers import S3Server
from firehose.testing.service_process import ServiceProcess, s3_stream
from tests.readers import READERS


def processors(*steps: tuple[str, dict[str, str]]) -> dict[str, Any]:
    return {
        "Enabled": True,
        "Processors": [
            {
                "Type": kind,
                "Parameters": [
                    {"ParameterName": k, "ParameterValue": v} for k, v in parameters.items()
                ],
            }
            for kind, parameters in steps
        ],
    }


def cloudwatch_payload(messages: list[str], group: str = "/app/web") -> bytes:
    """A subscription delivery as CloudWatch Logs makes it: gzip'd JSON."""
    document = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": group,
        "logStream": "i-0abc",
        "subscriptionFilters": ["to-firehose"],
        "logEvents": [
            {"id": str(index), "timestamp": 1_700_000_000_000 + index, "message": message}
            for index, message in enumerate(messages)
        ],
    }
    return gzip.compress(json.dumps(document).encode())


CONTROL = gzip.compress(
    json.dumps(
        {
            "messageType": "CONTROL_MESSAGE",
            "owner": "CloudWatchLogs",
            "logGroup": "",
            "logStream": "",
            "subscriptionFilters": [],
            "logEvents": [
                {
                    "id": "",
                    "timestamp": 1_700_000_000_000,
                    "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose.",
                }
            ],
        }
    ).encode()
)


def test_cloudwatch_logs_to_lines_with_errors_and_source_backup(
    s3_server: S3Server, bucket: str, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    stream = s3_stream(
        "logs",
        bucket,
        Prefix="lines/",
        ErrorOutputPrefix="errors/!{firehose:error-output-type}/",
        CompressionFormat="GZIP",
        BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0},
        ProcessingConfiguration=processors(
            ("AppendDelimiterToRecord", {}),  # listed first, run last: Firehose's order
            ("CloudWatchLogProcessing", {"DataMessageExtraction": "true"}),
            ("Decompression", {"CompressionFormat": "GZIP"}),
        ),
        S3BackupMode="Enabled",
        S3BackupConfiguration={
            "BucketARN": f"arn:aws:s3:::{bucket}",
            "Prefix": "raw/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
        },
    )
    service = ServiceProcess(tmp_path / "svc", [stream], env=s3_server.env())
    services.append(service)
    service.start()
    sent = [
        cloudwatch_payload(["GET /a 200", "GET /b 404"]),
        CONTROL,
        b"not gzip at all",
        cloudwatch_payload(["POST /c 201"]),
    ]
    answer = service.client().put_record_batch(
        DeliveryStreamName="logs", Records=[{"Data": data} for data in sent]
    )
    assert answer["FailedPutCount"] == 0
    assert service.terminate() == 0

    lines = b"".join(
        READERS["GZIP"](s3_server.get(bucket, key)) for key in s3_server.list_keys(bucket, "lines/")
    )
    assert sorted(lines.splitlines()) == [b"GET /a 200", b"GET /b 404", b"POST /c 201"]

    [error_key] = s3_server.list_keys(bucket, "errors/")
    assert error_key.startswith("errors/decompression-failed/logs-1-")
    [error] = [json.loads(line) for line in READERS["GZIP"](s3_server.get(bucket, error_key))
               .splitlines()]  # fmt: skip
    assert base64.b64decode(error["rawData"]) == b"not gzip at all"
    assert error["errorCode"] == "Decompression.InvalidFormat"
    assert {"attemptsMade", "arrivalTimestamp", "errorMessage", "attemptEndingTimestamp"} <= set(
        error
    )

    raw = b"".join(s3_server.get(bucket, key) for key in s3_server.list_keys(bucket, "raw/"))
    assert raw == b"".join(sent)  # every record as it came, before processing


HANDLERS = Path(__file__).with_name("handlers.py")


def lambda_stream(bucket: str, function: str, **extra: Any) -> dict[str, Any]:
    return s3_stream(
        "t",
        bucket,
        Prefix="out/",
        ErrorOutputPrefix="errors/!{firehose:error-output-type}/",
        BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0},
        ProcessingConfiguration=processors(
            ("Lambda", {"LambdaArn": f"{HANDLERS}:{function}", "NumberOfRetries": "1"})
        ),
        **extra,
    )


def test_validate_names_a_transform_that_cannot_be_imported(tmp_path: Path) -> None:
    import subprocess
    import sys

    import yaml

    config = tmp_path / "t.yaml"
    config.write_text(yaml.safe_dump(lambda_stream("b", "no_such_function")))
    result = subprocess.run(
        [sys.executable, "-m", "firehose.cli", "validate", "--config", str(config)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert (
        f"{config}: ExtendedS3DestinationConfiguration.ProcessingConfiguration.Processors[0]"
        ".Parameters.LambdaArn:" in result.stderr
    )
    assert "no_such_function" in result.stderr


def test_sigkill_while_transforms_run_loses_nothing(
    seaweedfs: S3Server, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    """Records go through a transform in worker processes; the service is killed with SIGKILL
    mid-way and started again: every acknowledged record is delivered or, for the ones the
    function fails, in the error prefix."""
    import time

    bucket = "killed"
    seaweedfs.create_bucket(bucket)
    stream = lambda_stream(bucket, "slow_fail_bad")
    service = ServiceProcess(tmp_path / "svc", [stream], env=seaweedfs.env())
    services.append(service)
    service.start()
    client = service.client()
    acknowledged: list[bytes] = []
    for batch in range(20):
        records = [f"{'bad ' if i % 50 == 0 else ''}r{batch}-{i}\n".encode() for i in range(200)]
        answer = client.put_record_batch(
            DeliveryStreamName="t", Records=[{"Data": r} for r in records]
        )
        acknowledged += [
            r for r, entry in zip(records, answer["RequestResponses"], strict=True)
            if "RecordId" in entry
        ]  # fmt: skip
        if batch == 10:
            time.sleep(0.1)  # the transform of the last batches is under way
            service.kill()
            service.start()
            client = service.client()
    assert service.terminate() == 0

    delivered = set(
        b"".join(
            seaweedfs.get(bucket, key) for key in seaweedfs.list_keys(bucket, "out/")
        ).splitlines(keepends=True)
    )
    errors = [
        json.loads(line)
        for key in seaweedfs.list_keys(bucket, "errors/processing-failed/")
        for line in seaweedfs.get(bucket, key).splitlines()
    ]
    failed = {base64.b64decode(error["rawData"]) for error in errors}
    assert all(error["errorCode"] == "Lambda.ProcessingFailed" for error in errors)
    assert len(acknowledged) == 4000
    for record in acknowledged:
        if record.startswith(b"bad "):
            assert record in failed
        else:
            assert record in delivered, record
