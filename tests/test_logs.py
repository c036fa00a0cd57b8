"""Structured logs: `--log-format json` writes one JSON object per line, with the request id
the client was given and the stream the request named."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

from botocore.exceptions import ClientError

from firehose.logs import REQUEST_ID, STREAM_NAME, JsonFormatter
from firehose.testing.servers import S3Server
from firehose.testing.service_process import ServiceProcess, s3_stream
from tests.test_metrics import start
from tests.test_quotas import _first_refusal, no_retries


def test_a_json_line_carries_what_the_context_knows() -> None:
    record = logging.LogRecord("firehose.api", logging.WARNING, __file__, 1, "a %s", ("b",), None)
    formatter = JsonFormatter()
    plain = json.loads(formatter.format(record))
    assert plain["message"] == "a b" and plain["level"] == "WARNING"
    assert plain["logger"] == "firehose.api" and plain["time"].endswith("+00:00")
    assert "request_id" not in plain and "delivery_stream_name" not in plain
    request, stream = REQUEST_ID.set("r-1"), STREAM_NAME.set("clicks")
    try:
        known = json.loads(formatter.format(record))
    finally:
        REQUEST_ID.reset(request)
        STREAM_NAME.reset(stream)
    assert known["request_id"] == "r-1" and known["delivery_stream_name"] == "clicks"


def test_json_logs_parse_and_carry_the_request_id(
    seaweedfs: S3Server, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    bucket = f"l-{uuid.uuid4().hex[:10]}"
    seaweedfs.create_bucket(bucket)
    calls = {**s3_stream("calls", bucket), "Quotas": {"RequestsPerSecond": 1}}
    service = start(
        services,
        tmp_path,
        [calls],
        args=["--s3-endpoint-url", seaweedfs.endpoint_url, "--log-format", "json"],
        env=seaweedfs.env(),
    )
    client = no_retries(service)
    # A refused call is logged (a 503 is the service's to explain) under its request id.
    refused: ClientError
    # PutRecord over the requests quota answers 503 (PutRecordBatch marks its entries instead).
    refused, _ = _first_refusal(
        lambda: client.put_record(DeliveryStreamName="calls", Record={"Data": b"y"})
    )
    request_id = refused.response["ResponseMetadata"]["RequestId"]
    assert service.terminate() == 0

    lines = [json.loads(line) for line in service.log_path.read_text().splitlines() if line]
    assert {"time", "level", "logger", "message"} <= lines[0].keys()
    assert any(line["message"].startswith("listening on") for line in lines)
    [logged] = [line for line in lines if line.get("request_id") == request_id]
    assert logged["delivery_stream_name"] == "calls"
    assert logged["level"] == "WARNING" and "ServiceUnavailableException" in logged["message"]
