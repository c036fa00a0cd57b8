"""Firehose's CloudWatch metrics on `/metrics`, in Prometheus's text format.

One Prometheus metric per CloudWatch metric, labelled `delivery_stream_name`: the name is
`firehose_` and the CloudWatch name with `.` as `_` (`DeliveryToS3.Records` →
`firehose_DeliveryToS3_Records`); counters end in `_total`, latencies and durations are in
seconds and end in `_seconds`. Stream and destination numbers are read from the counters the
service keeps anyway when scraped; the API adds only a few increments and one histogram
observation per request, on children bound once per (operation, stream).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from firehose.history import History, Sample, kept
from firehose.quotas import QuotaBook
from firehose.readings import BACKUP, delivery_prefix, stream_readings
from firehose.stream import DeliveryStream

LABEL = "delivery_stream_name"
API_OPERATIONS = (
    "PutRecord",
    "PutRecordBatch",
    "DescribeDeliveryStream",
    "ListDeliveryStreams",
    "UpdateDeliveryStream",
)
# Operations whose metrics Firehose names otherwise.
METRIC_OPERATIONS = {"UpdateDestination": "UpdateDeliveryStream"}
# Puts refused because the stream's key cannot be had, by KMS's error code (the local key
# file's failures take the same codes).
KMS_METRICS = {
    "AccessDeniedException": "KMSKeyAccessDenied",
    "DisabledException": "KMSKeyDisabled",
    "KMSInvalidStateException": "KMSKeyInvalidState",
    "InvalidStateException": "KMSKeyInvalidState",
    "NotFoundException": "KMSKeyNotFound",
}
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# The window of the ratio metrics (`.Success`), as CloudWatch's usual 5-minute period.
RATIO_SECONDS = 300.0
EXCEEDED_SECONDS = 60.0  # PartitionCountExceeded is 1 when records were refused this recently
COUNTED_NAMES = frozenset(
    {"IncomingBytes", "IncomingRecords", "IncomingPutRequests", "ThrottledRecords"}
    | set(KMS_METRICS.values())
)
COUNTED_SUFFIXES = (".Bytes", ".Records", ".ObjectCount", ".Requests")
HELP = {
    "IncomingBytes": "Bytes accepted into the stream (after throttling)",
    "IncomingRecords": "Records accepted into the stream (after throttling)",
    "IncomingPutRequests": "Successful PutRecord and PutRecordBatch calls",
    "ThrottledRecords": "Records refused for a quota or back-pressure",
    "BytesPerSecondLimit": "Current bytes-per-second quota",
    "RecordsPerSecondLimit": "Current records-per-second quota",
    "PutRequestsPerSecondLimit": "Current requests-per-second quota",
    "KinesisMillisBehindLatest": "Milliseconds the furthest-behind shard read is behind its tip",
    "PartitionCount": "Partitions buffering now",
    "PartitionCountExceeded": "1 if records were refused for the active-partition limit lately",
    "KMSKeyAccessDenied": "Puts refused because KMS denied access to the stream's key",
    "KMSKeyDisabled": "Puts refused because the stream's KMS key is disabled",
    "KMSKeyInvalidState": "Puts refused because the stream's key is in a state that bars its use",
    "KMSKeyNotFound": "Puts refused because the stream's key does not exist",
}


def prometheus_name(cloudwatch: str) -> str:
    return "firehose_" + cloudwatch.replace(".", "_")


def _help(cloudwatch: str) -> str:
    if cloudwatch in HELP:
        return HELP[cloudwatch]
    if cloudwatch.endswith(".Success"):
        return f"Firehose {cloudwatch}: successful attempts / attempts over the last 5 minutes"
    if cloudwatch.endswith(".DataFreshness"):
        return f"Firehose {cloudwatch}: age in seconds of the oldest record not delivered"
    return f"Firehose {cloudwatch}"


@dataclass(slots=True)
class PutCounters:
    """What the API counts of one stream's puts: successful ones, and those the key refused."""

    put_requests: int = 0
    put_record_bytes: int = 0
    put_record_batch_bytes: int = 0
    put_record_batch_records: int = 0
    # KMS_METRICS name -> puts refused for that reason
    key_refusals: dict[str, int] = field(default_factory=dict)


class ApiMetrics:
    """`<Op>.Requests` and `<Op>.Latency` per operation and stream, the put sizes, and the
    puts refused for the stream's key."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._latency = {
            op: Histogram(
                prometheus_name(f"{op}.Latency") + "_seconds",
                f"Firehose {op}.Latency, in seconds",
                [LABEL],
                registry=registry,
                buckets=LATENCY_BUCKETS,
            )
            for op in API_OPERATIONS
        }
        self._requests = {
            op: Counter(
                prometheus_name(f"{op}.Requests"),
                f"Firehose {op}.Requests",
                [LABEL],
                registry=registry,
            )
            for op in API_OPERATIONS
        }
        self._bound: dict[tuple[str, str], tuple[Histogram, Counter]] = {}
        self.puts: dict[str, PutCounters] = {}

    def observe(self, operation: str, stream: str | None, seconds: float) -> None:
        """One request answered (`stream` "" when it named no known stream)."""
        operation = METRIC_OPERATIONS.get(operation, operation)
        key = (operation, stream or "")
        bound = self._bound.get(key)
        if bound is None:
            if operation not in self._latency:
                return  # an unknown operation: no metric of its own
            bound = self._bound[key] = (
                self._latency[operation].labels(key[1]),
                self._requests[operation].labels(key[1]),
            )
        bound[0].observe(seconds)
        bound[1].inc()

    def put(self, stream: str, *, batch: bool, records: int, size: int) -> None:
        """A put call that stored records: `records` and `size` as the request sent them."""
        counters = self._puts_of(stream)
        counters.put_requests += 1
        if batch:
            counters.put_record_batch_bytes += size
            counters.put_record_batch_records += records
        else:
            counters.put_record_bytes += size

    def key_refused(self, stream: str, kms_code: str) -> None:
        """A put refused because the stream's key cannot be had, for KMS's `kms_code`."""
        metric = KMS_METRICS.get(kms_code)
        if metric is not None:
            refusals = self._puts_of(stream).key_refusals
            refusals[metric] = refusals.get(metric, 0) + 1

    def forget(self, stream: str) -> None:
        """A deleted stream: its numbers go, so a new stream of that name starts from 0."""
        self.puts.pop(stream, None)
        for key in [key for key in self._bound if key[1] == stream]:
            del self._bound[key]
            self._latency[key[0]].remove(stream)
            self._requests[key[0]].remove(stream)

    def _puts_of(self, stream: str) -> PutCounters:
        counters = self.puts.get(stream)
        if counters is None:
            counters = self.puts[stream] = PutCounters()
        return counters


@runtime_checkable
class MeasuredSource(Protocol):
    """A source that reports Firehose metrics of its own (the Kinesis reader)."""

    stream: DeliveryStream

    def metrics(self) -> dict[str, float]: ...


class _Families:
    """Metric families by CloudWatch name, filled stream by stream."""

    def __init__(self) -> None:
        self.by_name: dict[str, Metric] = {}

    def add(self, cloudwatch: str, stream: str, value: float) -> None:
        family = self.by_name.get(cloudwatch)
        if family is None:
            name, doc = prometheus_name(cloudwatch), _help(cloudwatch)
            counted = cloudwatch in COUNTED_NAMES or cloudwatch.endswith(COUNTED_SUFFIXES)
            family = (
                CounterMetricFamily(name, doc, labels=[LABEL])
                if counted
                else GaugeMetricFamily(name, doc, labels=[LABEL])
            )
            self.by_name[cloudwatch] = family
        family.add_metric([stream], value)  # type: ignore[attr-defined]


def _delta(now: Mapping[str, float], then: Mapping[str, float], key: str) -> float:
    return now[key] - then.get(key, 0.0)


def _ratio(now: Mapping[str, float], then: Mapping[str, float], good: str, all_: str) -> float:
    """good / all over the window; 1 when nothing was tried (nothing failed)."""
    tried = _delta(now, then, all_)
    return 1.0 if tried <= 0 else _delta(now, then, good) / tried


class StreamCollector(Collector):
    """Every stream's readings, quotas and sources' numbers, read when scraped."""

    def __init__(
        self,
        streams: Mapping[str, DeliveryStream],
        sources: list[object],
        api: ApiMetrics,
        quotas: QuotaBook,
        history: History,
    ) -> None:
        self.streams = streams
        self.sources = sources
        self.api = api
        self.quotas = quotas
        self.history = history

    def collect(self) -> Iterator[Metric]:
        families = _Families()
        window = self.history.reference(RATIO_SECONDS)
        recent = self.history.reference(EXCEEDED_SECONDS)
        durations = SummaryMetricFamily(
            prometheus_name("ExecuteProcessing.Duration") + "_seconds",
            "Firehose ExecuteProcessing.Duration: time in the processing stage, in seconds",
            labels=[LABEL],
        )
        for name, stream in self.streams.items():
            values = stream_readings(stream)
            self._add_stream(families, name, stream, values, window, recent)
            if "_processing_calls" in values:
                durations.add_metric(
                    [name], int(values["_processing_calls"]), values["_processing_seconds"]
                )
        for source in self.sources:
            if isinstance(source, MeasuredSource):
                for metric, value in source.metrics().items():
                    families.add(metric, source.stream.name, value)
        yield from families.by_name.values()
        if durations.samples:
            yield durations

    def _add_stream(
        self,
        families: _Families,
        name: str,
        stream: DeliveryStream,
        values: dict[str, float],
        window: Sample | None,
        recent: Sample | None,
    ) -> None:
        for metric, value in values.items():
            if not metric.startswith("_"):
                families.add(metric, name, value)
        now = kept(stream, values)
        then = (window.stream(name) if window is not None else None) or {}
        outputs = [(delivery_prefix(stream), "attempts", "successful_attempts")]
        if stream.backup is not None:
            outputs.append((BACKUP, "backup_attempts", "backup_successful_attempts"))
        for prefix, attempts, successes in outputs:
            families.add(f"{prefix}.Success", name, _ratio(now, then, successes, attempts))
        if "_processing_calls" in values:
            failed = _delta(now, then, "processing_failed_calls")
            calls = _delta(now, then, "processing_calls")
            families.add(
                "ExecuteProcessing.Success", name, 1.0 if calls <= 0 else 1 - failed / calls
            )
        if "_partition_count_exceeded" in values:
            before = (recent.stream(name) if recent is not None else None) or {}
            refused = _delta(now, before, "partition_count_exceeded")
            families.add("PartitionCountExceeded", name, 1.0 if refused > 0 else 0.0)
        puts = self.api.puts.get(name)
        if stream.config.type == "DirectPut":
            puts = puts or PutCounters()
            families.add("IncomingPutRequests", name, puts.put_requests)
            families.add("PutRecord.Bytes", name, puts.put_record_bytes)
            families.add("PutRecordBatch.Bytes", name, puts.put_record_batch_bytes)
            families.add("PutRecordBatch.Records", name, puts.put_record_batch_records)
            if stream.config.encryption is not None or puts.key_refusals:
                for metric in dict.fromkeys(KMS_METRICS.values()):
                    families.add(metric, name, puts.key_refusals.get(metric, 0))
        quota = self.quotas.get(name)
        if quota is not None:
            limits = quota.limits
            for metric, limit in (
                ("BytesPerSecondLimit", limits.bytes_per_second),
                ("RecordsPerSecondLimit", limits.records_per_second),
                ("PutRequestsPerSecondLimit", limits.requests_per_second),
            ):
                if limit is not None:
                    families.add(metric, name, limit)


class ServiceMetrics:
    """The service's own registry (never the process-wide one): API metrics and the streams'."""

    def __init__(
        self,
        streams: Mapping[str, DeliveryStream],
        sources: list[object],
        quotas: QuotaBook,
        history: History,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.api = ApiMetrics(self.registry)
        self.registry.register(StreamCollector(streams, sources, self.api, quotas, history))

    def render(self) -> bytes:
        return generate_latest(self.registry)
