"""`AppendDelimiterToRecord`: ends every record with `Delimiter` (a newline by default), so the
records of one object can be told apart."""

from __future__ import annotations

from firehose.processing_config import ProcessorConfig
from transforms.processor import ProcessingContext, ProcessingRecord, ProcessorOutput


class AppendDelimiter:
    type = "AppendDelimiterToRecord"

    def __init__(self, delimiter: bytes) -> None:
        self.delimiter = delimiter

    async def process(self, records: list[ProcessingRecord]) -> ProcessorOutput:
        delimiter = self.delimiter
        for record in records:
            # join takes bytes and memoryviews alike: one copy, no intermediate bytes.
            record.data = b"".join((record.data, delimiter))
        return ProcessorOutput(records)

    async def close(self) -> None:
        pass


def build(config: ProcessorConfig, context: ProcessingContext) -> AppendDelimiter:
    delimiter: bytes = config.values()["Delimiter"]
    return AppendDelimiter(delimiter)
