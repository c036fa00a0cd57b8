"""Prove the S3 server fixtures: each server stores, lists and serves objects as S3 does."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from firehose.testing.servers import S3Server

MIB = 1024 * 1024


def test_put_get_and_list_by_prefix(s3_server: S3Server, bucket: str) -> None:
    client = s3_server.client()
    for key in ("a/1.json", "a/2.json", "b/1.json"):
        client.put_object(Bucket=bucket, Key=key, Body=key.encode())

    assert s3_server.get(bucket, "a/2.json") == b"a/2.json"
    assert sorted(s3_server.list_keys(bucket, prefix="a/")) == ["a/1.json", "a/2.json"]
    assert len(s3_server.list_keys(bucket)) == 3


def test_env_points_a_subprocess_at_the_server(s3_server: S3Server, bucket: str) -> None:
    """The service under test runs as a subprocess configured only through env()."""
    s3_server.client().put_object(Bucket=bucket, Key="seen", Body=b"x")
    script = (
        "import boto3, json, sys; "
        "r = boto3.client('s3').list_objects_v2(Bucket=sys.argv[1]); "
        "print(json.dumps([o['Key'] for o in r.get('Contents', [])]))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(
        [sys.executable, "-c", script, bucket],
        env={**env, **s3_server.env()},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stdout) == ["seen"]


def test_multipart_upload_of_two_5_mib_parts(s3_server: S3Server, bucket: str) -> None:
    """Our delivery relies on multipart; 5 MiB is S3's minimum size for a non-final part."""
    client = s3_server.client()
    parts = [b"a" * (5 * MIB), b"b" * (5 * MIB)]
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="big.bin")["UploadId"]
    etags = [
        client.upload_part(
            Bucket=bucket, Key="big.bin", UploadId=upload_id, PartNumber=number, Body=body
        )["ETag"]
        for number, body in enumerate(parts, start=1)
    ]
    client.complete_multipart_upload(
        Bucket=bucket,
        Key="big.bin",
        UploadId=upload_id,
        MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, start=1)]
        },
    )

    assert s3_server.list_keys(bucket) == ["big.bin"]
    assert s3_server.get(bucket, "big.bin") == b"".join(parts)


def test_the_service_never_imports_the_test_helpers() -> None:
    """firehose.testing needs boto3 and the test servers, which `make run` does not install."""
    code = (
        "import sys, firehose.cli, firehose.service, destinations.s3\n"
        "print(sorted(m for m in sys.modules if m.startswith(('firehose.testing', 'boto3'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
