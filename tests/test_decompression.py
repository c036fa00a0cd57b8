"""Decompression: gzip'd records (one member or several) are gunzipped; others are filed."""

from __future__ import annotations

import gzip
import zlib

from firehose.processing_config import ProcessorConfig
from transforms.decompression import build
from transforms.processor import ProcessingContext, ProcessingRecord

CONTEXT = ProcessingContext(
    "logs", "arn:aws:firehose:eu-west-1:123456789012:deliverystream/l", "eu-west-1"
)
PAYLOAD = b'{"messageType":"DATA_MESSAGE","logEvents":[]}' * 50


async def test_gunzips_single_and_multi_member_records() -> None:
    processor = build(
        ProcessorConfig.model_validate(
            {
                "Type": "Decompression",
                "Parameters": [{"ParameterName": "CompressionFormat", "ParameterValue": "GZIP"}],
            }
        ),
        CONTEXT,
    )
    members = gzip.compress(b"first\n") + gzip.compress(b"second\n", compresslevel=9)
    records = [
        ProcessingRecord(1, 10, gzip.compress(PAYLOAD), query_keys={"q": "1"}),
        ProcessingRecord(2, 20, memoryview(members)),
        ProcessingRecord(3, 30, gzip.compress(PAYLOAD) + b"\0\0\0\0"),  # zero padding is ignored
    ]
    output = await processor.process(records)
    assert not output.failed
    assert [(r.seq, bytes(r.data)) for r in output.records] == [
        (1, PAYLOAD),
        (2, b"first\nsecond\n"),
        (3, PAYLOAD),
    ]
    assert output.records[0].query_keys == {"q": "1"}


async def test_a_record_that_is_not_gzip_is_decompression_failed() -> None:
    processor = build(ProcessorConfig.model_validate({"Type": "Decompression"}), CONTEXT)
    compressed = gzip.compress(PAYLOAD)
    corrupt = bytearray(compressed)
    corrupt[20] ^= 0xFF
    bad = {
        b'{"plain":"json"}': "magic",
        compressed[:-10]: "ends in the middle",
        compressed + b"junk": "after the last gzip member",
        bytes(corrupt): "",
        zlib.compress(PAYLOAD): "magic",  # zlib, not gzip
        b"": "magic",
    }
    records = [ProcessingRecord(n, 1000 + n, data, sub_seq=n) for n, data in enumerate(bad)]
    records.append(ProcessingRecord(99, 0, compressed))
    output = await processor.process(records)
    assert [bytes(r.data) for r in output.records] == [PAYLOAD]
    assert len(output.failed) == len(bad)
    for failed, (data, why) in zip(output.failed, bad.items(), strict=True):
        assert failed.output_type == "decompression-failed"
        assert failed.error_code == "Decompression.InvalidFormat"
        assert why in failed.error_message
        assert bytes(failed.record.data) == data  # the compressed bytes, as they came in
    assert [(f.record.seq, f.record.sub_seq) for f in output.failed] == [(n, n) for n in range(6)]
