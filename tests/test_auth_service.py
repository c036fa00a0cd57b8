"""Authentication, TLS and secrets through `firehose serve`: the AWS CLI and boto3 with keys from
a credentials file, HTTPS with a self-signed certificate, refusals to start, and an audit that no
key, token or password reaches the log, a description, /health or an error record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest

from firehose.testing.servers import S3Server, free_port
from firehose.testing.service_process import ServiceProcess, firehose_client, s3_stream
from firehose.testing.tls import self_signed_certificate
from tests.e2e import health, wait_for

KEY_ID, SECRET = "AKIDE2EWRITER", "e2e-api-secret/9f3b7c"
KEYS_FOR_SERVICE = f"""\
[default]
aws_access_key_id = {KEY_ID}
aws_secret_access_key = {SECRET}

[clicks-only]
aws_access_key_id = AKIDE2ECLICKS
aws_secret_access_key = clicks-secret
firehose_streams = clicks
"""
# The AWS CLI reads the service's own file, plus a profile whose key the service does not know.
KEYS_FOR_CLI = f"""{KEYS_FOR_SERVICE}
[wrong]
aws_access_key_id = {KEY_ID}X
aws_secret_access_key = {SECRET}
"""


def credentials_file(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "credentials"
    path.write_text(text)
    return path


def service_with_keys(
    tmp_path: Path, streams: list[dict[str, Any]], *args: str, **fields: Any
) -> ServiceProcess:
    path = credentials_file(tmp_path / "service-keys", KEYS_FOR_SERVICE)
    return ServiceProcess(
        tmp_path / "svc", streams, args=["--credentials-file", str(path), *args], **fields
    )


def local_stream(tmp_path: Path, name: str) -> dict[str, Any]:
    return s3_stream(name, "b", EndpointURL=f"file://{tmp_path / 's3'}")


def aws_cli(credentials: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The AWS CLI (v1, from the test extra) with only the given credentials file."""
    aws = str(Path(sys.executable).parent / "aws")
    env = {
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_CONFIG_FILE": str(credentials.parent / "no-config"),
        "AWS_DEFAULT_REGION": "us-east-1",
        "HOME": str(credentials.parent),
        "PATH": str(Path(sys.executable).parent),
    }
    return subprocess.run([aws, *args], capture_output=True, env=env, text=True, timeout=120)


def test_the_aws_cli_signs_with_a_profile_of_the_credentials_file(
    tmp_path: Path, services: list[ServiceProcess]
) -> None:
    service = service_with_keys(tmp_path, [local_stream(tmp_path, "clicks")])
    services.append(service)
    service.start()
    cli_keys = credentials_file(tmp_path / "cli", KEYS_FOR_CLI)
    put = ["firehose", "put-record", "--endpoint-url", service.url,
           "--delivery-stream-name", "clicks", "--record", '{"Data":"hello\\n"}']  # fmt: skip
    answer = aws_cli(cli_keys, *put)
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["RecordId"]
    listed = aws_cli(cli_keys, "firehose", "list-delivery-streams", "--endpoint-url", service.url)
    assert json.loads(listed.stdout)["DeliveryStreamNames"] == ["clicks"], listed.stderr
    refused = aws_cli(cli_keys, *put, "--profile", "wrong")
    assert refused.returncode != 0
    assert "UnrecognizedClientException" in refused.stderr
    assert "The security token included in the request is invalid." in refused.stderr
    assert service.terminate() == 0
    assert SECRET not in service.log_path.read_text() and KEY_ID not in service.log_path.read_text()


def test_unsigned_and_wrongly_signed_requests_to_a_real_service(
    tmp_path: Path, services: list[ServiceProcess]
) -> None:
    service = service_with_keys(tmp_path, [local_stream(tmp_path, "clicks")])
    services.append(service)
    service.start()
    body = json.dumps({"DeliveryStreamName": "clicks", "Record": {"Data": "eA=="}}).encode()
    request = urllib.request.Request(
        service.url + "/",
        data=body,
        headers={"X-Amz-Target": "Firehose_20150804.PutRecord"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 403
    assert json.loads(raised.value.read()) == {
        "__type": "MissingAuthenticationTokenException",
        "message": "Missing Authentication Token",
    }
    with pytest.raises(botocore.exceptions.ClientError) as signed_wrong:
        service.client(KEY_ID, SECRET + "x").put_record(
            DeliveryStreamName="clicks", Record={"Data": b"x"}
        )
    assert signed_wrong.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert acknowledged_by(service, "clicks") == 0
    assert service.client(KEY_ID, SECRET).put_record(
        DeliveryStreamName="clicks", Record={"Data": b"x"}
    )["RecordId"]


def acknowledged_by(service: ServiceProcess, stream: str) -> int:
    return int(health(service)["streams"][stream]["incoming_records"])


def test_without_a_credentials_file_the_start_warns_loudly(
    tmp_path: Path, services: list[ServiceProcess]
) -> None:
    open_service = ServiceProcess(tmp_path / "open", [local_stream(tmp_path, "s")])
    services.append(open_service)
    open_service.start()
    assert open_service.client("anyone", "anything").list_delivery_streams()
    assert open_service.terminate() == 0
    (warning,) = [line for line in open_service.log().splitlines() if "AUTHENTICATION" in line]
    assert " WARNING " in warning and "every request is accepted unsigned" in warning

    closed = service_with_keys(tmp_path, [local_stream(tmp_path, "s")])
    services.append(closed)
    closed.start()
    assert closed.terminate() == 0
    assert "AUTHENTICATION IS OFF" not in closed.log()
    assert "authentication on: the 2 keys of " in closed.log()


def test_tls_with_a_self_signed_certificate(tmp_path: Path, services: list[ServiceProcess]) -> None:
    cert, key = self_signed_certificate(tmp_path / "tls")
    service = service_with_keys(
        tmp_path,
        [local_stream(tmp_path, "clicks")],
        "--tls-cert", str(cert), "--tls-key", str(key),
        ca_file=cert,
    )  # fmt: skip
    services.append(service)
    service.start()
    assert service.url.startswith("https://")
    client = service.client(KEY_ID, SECRET)
    answer = client.put_record_batch(
        DeliveryStreamName="clicks", Records=[{"Data": b"over tls\n"}] * 10
    )
    assert answer["FailedPutCount"] == 0
    untrusting = firehose_client(service.url, KEY_ID, SECRET)  # the system's CAs only
    with pytest.raises(botocore.exceptions.SSLError):
        untrusting.list_delivery_streams()
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(f"http://127.0.0.1:{service.port}/health", timeout=5)
    assert acknowledged_by(service, "clicks") == 10
    assert service.terminate() == 0
    assert f"listening on https://127.0.0.1:{service.port}" in service.log()


# -- refusing to start -------------------------------------------------------------------------


def serve(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    configs = tmp_path / "configs"
    configs.mkdir(exist_ok=True)
    (configs / "s.yaml").write_text(
        f"name: s\ns3: {{bucket: b, endpoint_url: 'file://{tmp_path}'}}\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FIREHOSE_")}
    return subprocess.run(
        [sys.executable, "-m", "firehose.cli", "serve", "--config", str(configs),
         "--data-dir", str(tmp_path / "data"), "--port", str(free_port()), *args],
        env=environment, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def assert_refused(result: subprocess.CompletedProcess[str], reason: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("cannot start: ") and reason in lines[0], lines[0]


def test_refusals_to_start(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path / "a")
    other_cert, other_key = self_signed_certificate(tmp_path / "b")
    missing = tmp_path / "missing.pem"
    not_pem = credentials_file(tmp_path / "notpem", "not a certificate\n")
    secret_in = credentials_file(tmp_path / "half", f"[p]\naws_secret_access_key = {SECRET}\n")
    cases = [
        (["--credentials-file", str(missing)], f"credentials file {missing}: No such file"),
        (["--credentials-file", str(secret_in)], "has aws_secret_access_key but no aws_access"),
        (["--tls-cert", str(missing), "--tls-key", str(key)], f"TLS certificate {missing}: No "),
        (["--tls-cert", str(cert), "--tls-key", str(missing)], f"TLS key {missing}: No such"),
        (["--tls-cert", str(cert), "--tls-key", str(other_key)], "key values mismatch"),
        (["--tls-cert", str(not_pem), "--tls-key", str(key)], f"TLS certificate {not_pem} with"),
        (["--tls-cert", str(other_cert)], "--tls-cert and --tls-key go together"),
    ]
    for args, reason in cases:
        result = serve(tmp_path, *args)
        assert_refused(result, reason)
        assert SECRET not in result.stderr + result.stdout


# -- secrets -----------------------------------------------------------------------------------

HEC_TOKEN = "5f2e9d40-audit-hec-token"
ACCESS_KEY = "audit-http-endpoint-access-key"
SEARCH_PASSWORD = "audit-opensearch-password"
DATABASE_PASSWORD = "audit-redshift-password"


def failing_streams(bucket: str) -> list[dict[str, Any]]:
    """One stream of each kind that holds a secret, each pointed at a port nobody listens on,
    so that every secret passes through connection errors, retries and error records."""
    dead = f"http://127.0.0.1:{free_port()}"
    backup = {
        "BucketARN": f"arn:aws:s3:::{bucket}",
        "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
    }
    retry = {"DurationInSeconds": 1}
    fast = {"SizeInMBs": 1, "IntervalInSeconds": 0}
    return [
        {
            "DeliveryStreamName": "to-http",
            "HttpEndpointDestinationConfiguration": {
                "EndpointConfiguration": {"Url": dead, "Name": "dead", "AccessKey": ACCESS_KEY},
                "BufferingHints": fast,
                "RetryOptions": retry,
                "S3Configuration": {**backup, "Prefix": "http/", "ErrorOutputPrefix": "http-e/"},
            },
        },
        {
            "DeliveryStreamName": "to-splunk",
            "SplunkDestinationConfiguration": {
                "HECEndpoint": dead,
                "HECEndpointType": "Raw",
                "HECToken": HEC_TOKEN,
                "BufferingHints": fast,
                "RetryOptions": retry,
                "S3Configuration": {**backup, "Prefix": "splunk/"},
            },
        },
        {
            "DeliveryStreamName": "to-search",
            "AmazonopensearchserviceDestinationConfiguration": {
                "ClusterEndpoint": dead,
                "IndexName": "audit",
                "Username": "firehose",
                "Password": SEARCH_PASSWORD,
                "BufferingHints": fast,
                "RetryOptions": retry,
                "S3Configuration": {**backup, "Prefix": "search/"},
            },
        },
        {
            "DeliveryStreamName": "to-database",
            "RedshiftDestinationConfiguration": {
                "ClusterJDBCURL": f"jdbc:postgresql://127.0.0.1:{free_port()}/warehouse",
                "CopyCommand": {"DataTableName": "audit"},
                "Username": "loader",
                "Password": DATABASE_PASSWORD,
                "RetryOptions": {"DurationInSeconds": 0},
                "S3Configuration": {**backup, "Prefix": "database/"},
            },
        },
    ]


def test_no_secret_reaches_logs_descriptions_health_or_error_records(
    seaweedfs: S3Server, tmp_path: Path, services: list[ServiceProcess]
) -> None:
    bucket = f"audit-{uuid.uuid4().hex[:8]}"
    seaweedfs.create_bucket(bucket)
    streams = failing_streams(bucket)
    env = {**seaweedfs.env(), "FIREHOSE_LOG_LEVEL": "DEBUG"}
    service = service_with_keys(tmp_path, streams, env=env)
    services.append(service)
    service.start()
    client = service.client(KEY_ID, SECRET)
    for stream in streams:
        records = [{"Data": b'{"n": 1}\n'}] * 5
        answer = client.put_record_batch(
            DeliveryStreamName=stream["DeliveryStreamName"], Records=records
        )
        assert answer["FailedPutCount"] == 0
    with pytest.raises(botocore.exceptions.ClientError):
        service.client(KEY_ID, "not-" + SECRET).list_delivery_streams()
    wait_for(lambda: all(seaweedfs.list_keys(bucket, f"{p}/") for p in ("http-e", "splunk")))
    wait_for(lambda: bool(seaweedfs.list_keys(bucket, "search/")))
    wait_for(lambda: bool(seaweedfs.list_keys(bucket, "database/errors/")))
    shown = [
        json.dumps(
            client.describe_delivery_stream(DeliveryStreamName=s["DeliveryStreamName"]), default=str
        )
        for s in streams
    ]
    shown.append(service.health_text())
    assert service.terminate() == 0
    shown += [
        seaweedfs.get(bucket, key).decode(errors="replace") for key in seaweedfs.list_keys(bucket)
    ]
    shown.append(service.log_path.read_text())
    assert "DEBUG" in shown[-1]  # the most talkative log level was on
    secrets = [HEC_TOKEN, ACCESS_KEY, SEARCH_PASSWORD, DATABASE_PASSWORD, SECRET, KEY_ID]
    secrets += [seaweedfs.secret_key, seaweedfs.access_key]
    for text in shown:
        for secret in secrets:
            assert secret not in text
