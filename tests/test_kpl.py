"""KPL de-aggregation, on records packed by the real aws-kinesis-agg aggregator."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from aws_kinesis_agg.aggregator import RecordAggregator

from transforms.kpl import MAGIC, build, deaggregate
from transforms.processor import KinesisRecordMetadata, ProcessingContext, ProcessingRecord

CONTEXT = ProcessingContext(
    "orders",
    "arn:aws:firehose:eu-west-1:123456789012:deliverystream/orders",
    "eu-west-1",
    source_kinesis_stream_arn="arn:aws:kinesis:eu-west-1:123456789012:stream/orders",
)
SHARD = KinesisRecordMetadata(
    "shardId-000000000003",
    "aggregate-key",
    "49654827385238765400984756201884839277183472932861181986",
    1722945600000,
)


def aggregate(user_records: Sequence[tuple[str, bytes, str | None]]) -> bytes:
    aggregator = RecordAggregator()
    for partition_key, data, explicit_hash_key in user_records:
        assert aggregator.add_user_record(partition_key, data, explicit_hash_key) is None
    _, _, packed = aggregator.clear_and_get().get_contents()
    assert isinstance(packed, bytes)
    return packed


USER_RECORDS = [
    ("customer-1", b'{"order":1,"total":"9.99"}\n', None),
    ("customer-2", b'{"order":2,"total":"15.00"}\n', "170141183460469231731687303715884105728"),
    ("customer-1", b"\x00\xffbinary\n", None),
    ("customer-3", b"", None),
]


async def test_an_aggregate_becomes_its_user_records() -> None:
    packed = aggregate(USER_RECORDS)
    assert packed.startswith(MAGIC)
    record = ProcessingRecord(41, 1722945600000, packed, kinesis=SHARD, lambda_keys={"a": "b"})
    output = await build(None, CONTEXT).process([record])
    assert not output.failed
    assert [(r.seq, r.sub_seq, bytes(r.data)) for r in output.records] == [
        (41, index, data) for index, (_, data, _) in enumerate(USER_RECORDS)
    ]
    kinesis = [r.kinesis for r in output.records]
    assert [(k.partition_key, k.sub_sequence_number) for k in kinesis if k] == [
        ("customer-1", 0),
        ("customer-2", 1),
        ("customer-1", 2),
        ("customer-3", 3),
    ]
    assert all(k and k.sequence_number == SHARD.sequence_number for k in kinesis)
    assert all(k and k.shard_id == SHARD.shard_id for k in kinesis)
    assert all(
        r.lambda_keys == {"a": "b"} and r.arrival_ms == 1722945600000 for r in output.records
    )


async def test_plain_records_and_bad_digests_pass_through_unchanged() -> None:
    packed = aggregate(USER_RECORDS[:2])
    bad_md5 = packed[:-1] + bytes([packed[-1] ^ 1])
    tampered = bytearray(packed)
    tampered[12] ^= 0x20  # inside the protobuf: the MD5 no longer matches
    records = [
        ProcessingRecord(1, 0, b'{"plain":"record"}\n', kinesis=SHARD),
        ProcessingRecord(2, 0, bad_md5, kinesis=SHARD),
        ProcessingRecord(3, 0, bytes(tampered)),
        ProcessingRecord(4, 0, memoryview(packed), kinesis=SHARD),
        ProcessingRecord(5, 0, MAGIC),  # too short to hold a digest
    ]
    output = await build(None, CONTEXT).process(list(records))
    assert not output.failed
    assert output.records[:3] == records[:3]
    assert [(r.seq, r.sub_seq, bytes(r.data)) for r in output.records[3:5]] == [
        (4, 0, USER_RECORDS[0][1]),
        (4, 1, USER_RECORDS[1][1]),
    ]
    assert output.records[5] is records[4]


def test_a_valid_digest_over_bytes_that_are_not_protobuf_passes_through() -> None:
    body = b"\x0a\xff\xff"  # a length that runs off the end
    assert deaggregate(MAGIC + body + hashlib.md5(body).digest()) is None


def test_many_user_records() -> None:
    user_records = [(f"pk-{n % 7}", b"event %d\n" % n, None) for n in range(1000)]
    inner = deaggregate(aggregate(user_records))
    assert inner is not None
    assert [(key, bytes(data)) for key, data in inner] == [(k, d) for k, d, _ in user_records]
