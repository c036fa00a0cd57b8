"""End to end: `firehose serve` as a process, real producers, real S3-compatible servers."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from firehose.compression import CODECS
from firehose.testing.servers import S3Server, free_port, start_moto, stop
from firehose.testing.service_process import ServiceProcess, s3_stream
from tests.e2e import health as e2e_health
from tests.readers import READERS

REPO = Path(__file__).resolve().parent.parent
KEY_NAME = re.compile(
    r"^(?P<stream>.+)-1-(?P<ts>\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2})-"
    r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}(?P<ext>.*)$"
)


def json_records(start: int, count: int) -> list[bytes]:
    return [
        json.dumps({"id": i, "page": f"/p/{i % 97}", "user": f"u{i % 1013}"}).encode() + b"\n"
        for i in range(start, start + count)
    ]


@pytest.fixture
def service_dir(tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    """Collects started services so a failing test never leaves one running."""
    started: list[ServiceProcess] = []
    yield started
    for service in started:
        service.ensure_stopped()


def run_service(
    started: list[ServiceProcess], workdir: Path, streams: list[dict[str, Any]], **kwargs: Any
) -> ServiceProcess:
    service = ServiceProcess(workdir, streams, **kwargs)
    started.append(service)
    return service.start()


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_every_compression_format_names_and_encodes_objects_like_firehose(
    s3_server: S3Server, bucket: str, tmp_path: Path, service_dir: list[ServiceProcess]
) -> None:
    streams = [
        s3_stream(
            f"c-{codec.lower()}",
            bucket,
            Prefix=f"{codec}/",
            CompressionFormat=codec,
            BufferingHints={"SizeInMBs": 128, "IntervalInSeconds": 900},
        )
        for codec in READERS
    ]
    service = run_service(service_dir, tmp_path, streams, env=s3_server.env())
    client = service.client()
    sent = json_records(0, 1200)
    before = time.gmtime()
    for stream in streams:
        name = stream["DeliveryStreamName"]
        for i in range(0, len(sent), 400):
            answer = client.put_record_batch(
                DeliveryStreamName=name, Records=[{"Data": r} for r in sent[i : i + 400]]
            )
            assert answer["FailedPutCount"] == 0
    assert service.terminate() == 0  # SIGTERM flushes buffers no trigger would have flushed

    for codec, reader in READERS.items():
        keys = s3_server.list_keys(bucket, f"{codec}/")
        assert len(keys) == 1, (codec, keys)
        key = keys[0]
        prefix, name = key.rsplit("/", 1)
        assert re.fullmatch(rf"{codec}/\d{{4}}/\d{{2}}/\d{{2}}/\d{{2}}", prefix)
        assert prefix.split("/", 1)[1] in {
            time.strftime("%Y/%m/%d/%H", before),
            time.strftime("%Y/%m/%d/%H", time.gmtime()),
        }
        match = KEY_NAME.match(name)
        assert match, name
        assert match["stream"] == f"c-{codec.lower()}"
        assert match["ext"] == CODECS[codec].extension  # the table test_compression.py pins
        assert match["ts"][:13].replace("-", "/") == prefix.split("/", 1)[1]
        assert reader(s3_server.get(bucket, key)) == b"".join(sent), codec


def test_standard_tools_read_the_objects(
    seaweedfs: S3Server, tmp_path: Path, service_dir: list[ServiceProcess]
) -> None:
    bucket = "tools-" + tmp_path.name[-8:].lower().replace("_", "-")
    seaweedfs.create_bucket(bucket)
    tools = {"GZIP": ["gzip", "-dc"], "ZSTD": ["zstd", "-dc"], "ZIP": ["unzip", "-p"]}
    streams = [
        s3_stream(f"t-{c.lower()}", bucket, Prefix=f"{c}/", CompressionFormat=c) for c in tools
    ]
    service = run_service(service_dir, tmp_path, streams, env=seaweedfs.env())
    sent = json_records(0, 300)
    for stream in streams:
        service.client().put_record_batch(
            DeliveryStreamName=stream["DeliveryStreamName"], Records=[{"Data": r} for r in sent]
        )
    assert service.terminate() == 0
    for codec, command in tools.items():
        (key,) = seaweedfs.list_keys(bucket, f"{codec}/")
        path = tmp_path / key.rsplit("/", 1)[1]
        path.write_bytes(seaweedfs.get(bucket, key))
        out = subprocess.run([*command, str(path)], capture_output=True, check=True).stdout
        assert out == b"".join(sent), codec


def test_prefix_expressions_time_zone_and_file_extension(
    s3_server: S3Server, bucket: str, tmp_path: Path, service_dir: list[ServiceProcess]
) -> None:
    stream = s3_stream(
        "expr",
        bucket,
        Prefix="year=!{timestamp:yyyy}/month=!{timestamp:MM}/r=!{firehose:random-string}/",
        ErrorOutputPrefix="errors/!{firehose:error-output-type}/",
        CustomTimeZone="Pacific/Kiritimati",  # UTC+14: the date differs from UTC most of the day
        FileExtension=".json.gz",
        CompressionFormat="GZIP",
    )
    service = run_service(service_dir, tmp_path, [stream], env=s3_server.env())
    service.client().put_record(DeliveryStreamName="expr", Record={"Data": b'{"a":1}\n'})
    assert service.terminate() == 0
    (key,) = s3_server.list_keys(bucket)
    local = time.gmtime(time.time() + 14 * 3600)
    match = re.fullmatch(r"year=(\d{4})/month=(\d{2})/r=([0-9a-f-]{11})/(.+)", key)
    assert match, key
    assert (int(match[1]), int(match[2])) == (local.tm_year, local.tm_mon)
    name = KEY_NAME.match(match[4])
    assert name and name["ext"] == ".json.gz"
    assert name["ts"][:10] == time.strftime("%Y-%m-%d", local)
    assert gzip.decompress(s3_server.get(bucket, key)) == b'{"a":1}\n'


def test_large_objects_use_multipart_upload(
    s3_server: S3Server, bucket: str, tmp_path: Path, service_dir: list[ServiceProcess]
) -> None:
    stream = s3_stream("big", bucket, BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 900})
    service = run_service(service_dir, tmp_path, [stream], env=s3_server.env())
    client = service.client()
    chunk = [bytes([65 + i % 26]) * 1000 + b"\n" for i in range(3000)]  # ~2.9 MiB
    for _ in range(8):
        for i in range(0, 3000, 500):
            records = [{"Data": r} for r in chunk[i : i + 500]]
            answer = client.put_record_batch(DeliveryStreamName="big", Records=records)
            assert answer["FailedPutCount"] == 0
    assert service.terminate() == 0
    (key,) = s3_server.list_keys(bucket)
    body = s3_server.get(bucket, key)
    assert len(body) == 8 * 3000 * 1001 and body == b"".join(chunk) * 8
    head = s3_server.client().head_object(Bucket=bucket, Key=key)
    assert head["ETag"].strip('"').endswith("-3")  # 24 MB in 8 MiB parts


def test_aws_cli_works_unchanged(
    seaweedfs: S3Server, tmp_path: Path, service_dir: list[ServiceProcess]
) -> None:
    seaweedfs.create_bucket("cli-bucket")
    service = run_service(
        service_dir, tmp_path, [s3_stream("cli", "cli-bucket")], env=seaweedfs.env()
    )
    aws = str(Path(sys.executable).parent / "aws")
    env = {
        "AWS_ACCESS_KEY_ID": "x",
        "AWS_SECRET_ACCESS_KEY": "y",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": str(Path(sys.executable).parent),
    }
    # AWS CLI v1 (the one on PyPI) base64-encodes blob arguments itself; v2 takes base64.
    records = json.dumps([{"Data": "hello\n"}, {"Data": "world\n"}])
    out = subprocess.run(
        [aws, "firehose", "put-record-batch", "--endpoint-url", service.url,
         "--delivery-stream-name", "cli", "--records", records],
        capture_output=True, check=True, env=env, text=True,
    )  # fmt: skip
    answer = json.loads(out.stdout)
    assert answer["FailedPutCount"] == 0 and len(answer["RequestResponses"]) == 2
    failed = subprocess.run(
        [aws, "firehose", "put-record", "--endpoint-url", service.url,
         "--delivery-stream-name", "nope", "--record", '{"Data":"eA=="}'],
        capture_output=True, env=env, text=True,
    )  # fmt: skip
    assert failed.returncode != 0 and "ResourceNotFoundException" in failed.stderr
    listed = subprocess.run(
        [aws, "firehose", "list-delivery-streams", "--endpoint-url", service.url],
        capture_output=True, check=True, env=env, text=True,
    )  # fmt: skip
    assert json.loads(listed.stdout)["DeliveryStreamNames"] == ["cli"]
    assert service.terminate() == 0
    (key,) = seaweedfs.list_keys("cli-bucket")
    assert seaweedfs.get("cli-bucket", key) == b"hello\nworld\n"


def test_default_config_writes_to_a_local_folder(
    tmp_path: Path, service_dir: list[ServiceProcess]
) -> None:
    workdir = tmp_path / "quickstart"
    workdir.mkdir()
    service = ServiceProcess(workdir, [], args=[])
    service_dir.append(service)
    (workdir / "configs").mkdir()
    shutil.copy(REPO / "configs" / "local-events.yaml", workdir / "configs")
    service.start()  # the shipped example, run from its own folder as the quickstart does
    client = service.client()
    (name,) = client.list_delivery_streams()["DeliveryStreamNames"]
    client.put_record_batch(DeliveryStreamName=name, Records=[{"Data": b"a\n"}, {"Data": b"b\n"}])
    assert service.terminate() == 0
    files = [p for p in (workdir / "data" / "s3").rglob("*") if p.is_file()]
    assert len(files) == 1 and files[0].suffix == ".gz"
    out = subprocess.run(["gzip", "-dc", str(files[0])], capture_output=True, check=True).stdout
    assert out == b"a\nb\n"


def test_s3_down_then_back_loses_nothing_and_duplicates_nothing(
    tmp_path: Path, service_dir: list[ServiceProcess]
) -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    service = run_service(
        service_dir,
        tmp_path / "svc",
        [
            s3_stream(
                "resilient", "comeback", BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 0}
            )
        ],
        args=["--s3-endpoint-url", endpoint],
        env={"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"},
    )
    client = service.client()
    sent: list[bytes] = []
    for batch in range(6):
        records = json_records(batch * 100, 100)
        assert (
            client.put_record_batch(
                DeliveryStreamName="resilient", Records=[{"Data": r} for r in records]
            )["FailedPutCount"]
            == 0
        )
        sent += records
        time.sleep(0.3)

    def health() -> dict[str, Any]:
        stream: dict[str, Any] = e2e_health(service)["streams"]["resilient"]
        return stream

    wait_for(lambda: health()["last_error"], 30, "the stream to report S3 down")
    assert health()["undelivered_bytes"] == sum(map(len, sent))

    server, proc = start_moto(tmp_path / "moto", port=port)
    try:
        server.create_bucket("comeback")

        def everything_arrived() -> bool:
            keys = server.list_keys("comeback")
            return sum(len(server.get("comeback", k)) for k in keys) >= sum(map(len, sent))

        wait_for(everything_arrived, 90, "delivery after S3 came back")
        assert service.terminate() == 0
        keys = server.list_keys("comeback")
        got = b"".join(server.get("comeback", k) for k in sorted(keys))
        lines = got.splitlines(keepends=True)
        assert len(lines) == len(sent)  # nothing twice
        assert sorted(lines) == sorted(sent)  # nothing lost
    finally:
        stop(proc)


def test_sigkill_mid_load_loses_no_acknowledged_record(
    s3_server: S3Server, bucket: str, tmp_path: Path, service_dir: list[ServiceProcess]
) -> None:
    stream = s3_stream(
        "crashy", bucket, CompressionFormat="GZIP",
        BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 1},
    )  # fmt: skip
    service = run_service(service_dir, tmp_path, [stream], env=s3_server.env())
    acked: set[int] = set()
    lock = threading.Lock()
    stop_sending = threading.Event()

    def producer(worker: int) -> None:
        client = service.client()
        n = 0
        while not stop_sending.is_set():
            ids = [worker * 10_000_000 + n + i for i in range(250)]
            n += 250
            records = [
                {"Data": json.dumps({"id": i, "pad": "x" * 200}).encode() + b"\n"} for i in ids
            ]
            try:
                answer = client.put_record_batch(DeliveryStreamName="crashy", Records=records)
            except Exception:
                return  # the service died under us: nothing of this call was acknowledged
            with lock:
                for record_id, response in zip(ids, answer["RequestResponses"], strict=True):
                    if "RecordId" in response:
                        acked.add(record_id)

    threads = [threading.Thread(target=producer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(acked) > 20_000, 60, "load to build up")
    service.kill()
    stop_sending.set()
    for thread in threads:
        thread.join(30)
    assert len(acked) > 20_000

    # A crash may leave a torn frame at the end of the log: make sure there is one.
    segments = sorted((tmp_path / "data" / "streams" / "crashy").glob("*.wal"))
    with segments[-1].open("ab") as handle:
        handle.write(b"FHW1\x00\x10\x00\x00torn")

    service.start()
    assert service.terminate() == 0
    delivered: list[int] = []
    for key in s3_server.list_keys(bucket):
        for line in gzip.decompress(s3_server.get(bucket, key)).splitlines():
            delivered.append(json.loads(line)["id"])
    missing = acked - set(delivered)
    assert not missing, f"{len(missing)} acknowledged records lost"
    assert "corrupt or torn bytes" in service.log()


def test_size_and_interval_triggers_each_deliver_on_their_own(
    s3_server: S3Server, bucket: str, tmp_path: Path, service_dir: list[ServiceProcess]
) -> None:
    streams = [
        s3_stream("by-size", bucket, Prefix="size/",
                  BufferingHints={"SizeInMBs": 1, "IntervalInSeconds": 900}),
        s3_stream("by-time", bucket, Prefix="time/",
                  BufferingHints={"SizeInMBs": 128, "IntervalInSeconds": 2}),
    ]  # fmt: skip
    service = run_service(service_dir, tmp_path, streams, env=s3_server.env())
    client = service.client()
    record = b"x" * 999 + b"\n"
    for _ in range(3):  # 1.5 MB: one full 1 MiB buffer, the rest waits for the interval
        client.put_record_batch(DeliveryStreamName="by-size", Records=[{"Data": record}] * 500)
    client.put_record(DeliveryStreamName="by-time", Record={"Data": b"lonely\n"})
    wait_for(lambda: s3_server.list_keys(bucket, "time/"), 30, "the interval flush")
    wait_for(lambda: s3_server.list_keys(bucket, "size/"), 30, "the size flush")
    (key,) = s3_server.list_keys(bucket, "size/")
    assert len(s3_server.get(bucket, key)) == (1024 * 1024 // 1000) * 1000  # whole records only
    assert service.terminate() == 0
    keys = s3_server.list_keys(bucket, "size/")
    assert len(keys) == 2
    assert sum(len(s3_server.get(bucket, k)) for k in keys) == 1500 * 1000


def test_a_second_instance_on_the_same_data_dir_is_refused(
    tmp_path: Path, service_dir: list[ServiceProcess]
) -> None:
    streams = [s3_stream("shared", "b", EndpointURL=f"file://{tmp_path / 's3'}")]
    first = run_service(service_dir, tmp_path, streams)
    second = ServiceProcess(tmp_path, streams)
    service_dir.append(second)
    second.start(wait=False)
    assert second.proc is not None
    assert second.proc.wait(30) == 1
    assert "is in use by another firehose process" in second.log()
    assert first.terminate() == 0
