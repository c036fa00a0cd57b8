"""Service settings: command-line options first, then `FIREHOSE_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from firehose.config import checked_endpoint_url
from firehose.config_load import error_message
from firehose.logs import LogFormat
from firehose.quotas import QuotaSet

ENV_PREFIX = "FIREHOSE_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    """What one service instance needs to run; every field is also `FIREHOSE_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    config: Path = Field(Path("configs"), description="a YAML file or a folder of them")
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(4573, ge=0, le=65535, description="port to listen on")
    data_dir: Path = Field(Path("data"), description="write-ahead logs and watermarks")
    region: str = Field("us-east-1", description="the region in ARNs")
    account_id: str = Field("000000000000", pattern=r"^\d{12}$", description="the account in ARNs")
    max_undelivered_mib: int = Field(
        2048, ge=1, description="per stream; past it puts answer ServiceUnavailableException"
    )
    wal_segment_mib: int = Field(64, ge=1, le=1024, description="write-ahead log segment size")
    log_key_file: Path | None = Field(
        None,
        description="32 random bytes that wrap the data keys of logs encrypted with "
        "AWS_OWNED_CMK; unset: <data dir>/log-master.key, created on first need",
    )
    s3_endpoint_url: str | None = Field(
        None, description="overrides every stream's S3 endpoint: http(s)://… or file://DIR"
    )
    shutdown_timeout_seconds: float = Field(
        25.0,
        ge=0,
        description="on SIGTERM, how long to keep delivering before leaving the rest in the log; "
        "give the container a stop grace period a few seconds longer (30s for the default)",
    )
    max_delivery_streams: int = Field(
        5000,
        ge=1,
        description="CreateDeliveryStream past this many streams (config files included) answers "
        "LimitExceededException",
    )
    stall_seconds: float = Field(
        10.0,
        gt=0,
        description="a delivery attempt unanswered this long (plus 0.25 s per MiB it sends) "
        "shows as stalled on /health",
    )
    keepalive_timeout_seconds: float = Field(
        75.0, gt=0, description="an idle connection is closed after this long"
    )
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="a connection whose request headers take longer is closed"
    )
    body_timeout_seconds: float = Field(
        60.0,
        gt=0,
        description="a request body taking longer is answered 408 and its connection closed",
    )
    max_request_memory_mib: int = Field(
        256,
        ge=1,
        description="request bodies held in memory at once, all requests together; "
        "past it requests wait a second, then are answered ServiceUnavailableException",
    )
    transform_mode: Literal["process", "thread", "inline"] = Field(
        "process",
        description="how Python transform functions run: process (worker processes that a hung "
        "call can be killed in), thread (a hung call is abandoned) or inline (on the delivery "
        "loop: cheap functions only)",
    )
    transform_workers: int = Field(
        2, ge=1, le=256, description="per Lambda processor: worker processes (or calls at once)"
    )
    transform_timeout_seconds: float = Field(
        300.0, gt=0, le=900, description="a transform invocation unanswered this long fails"
    )
    transform_memory_mib: int = Field(
        1024,
        ge=0,
        description="address space of each transform worker process (RLIMIT_AS); 0 for none",
    )
    max_active_partitions: int = Field(
        500,
        ge=1,
        description="per stream with dynamic partitioning: partitions buffering at once; a "
        "record that would open one more goes to the error output (PartitionCountExceeded)",
    )
    max_partition_buffer_mib: int = Field(
        256,
        ge=1,
        description="per stream: record data held in all its partition buffers together; past "
        "it the largest partitions are delivered early",
    )
    lease_table: str | None = Field(
        None,
        description="DynamoDB table of the Kinesis sources' shard leases and checkpoints, shared "
        "by the instances reading one data stream (created if missing; endpoint "
        "AWS_ENDPOINT_URL_DYNAMODB); unset: this instance reads every shard and keeps them in "
        "its data dir",
    )
    lease_seconds: float = Field(
        10.0, gt=0, description="a shard lease not renewed this long is taken over"
    )
    kinesis_poll_seconds: float = Field(
        1.0, gt=0, description="a caught-up Kinesis shard is read (GetRecords) this often"
    )
    kinesis_start_position: Literal["LATEST", "TRIM_HORIZON", "AT_TIMESTAMP"] = Field(
        "LATEST", description="where a Kinesis shard read for the first time starts"
    )
    kinesis_start_timestamp: float | None = Field(
        None, description="epoch seconds AT_TIMESTAMP starts at"
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL")
    log_format: LogFormat = Field(
        "text", description="text, or json: one JSON object per line with the request id"
    )
    quotas: QuotaSet = Field(
        "off",
        description="Direct PUT quotas of every stream: off, aws (AWS's defaults in us-east-1: "
        "500,000 records/s, 2,000 requests/s, 5 MiB/s) or aws-small (other Regions': 100,000, "
        "1,000, 1 MiB/s); a stream's Quotas in its config win",
    )
    credentials_file: Path | None = Field(
        None,
        description="AWS CLI credentials file whose keys may call the API (SigV4); "
        "unset: every request is accepted unsigned",
    )
    tls_cert: Path | None = Field(None, description="PEM certificate (chain): serve HTTPS")
    tls_key: Path | None = Field(None, description="PEM private key of --tls-cert")

    @field_validator("s3_endpoint_url")
    @classmethod
    def _check_endpoint(cls, value: str | None) -> str | None:
        return checked_endpoint_url(value)

    @field_validator("log_level")
    @classmethod
    def _check_log_level(cls, value: str) -> str:
        # logging.basicConfig would raise a bare ValueError on an unknown name.
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @property
    def max_undelivered_bytes(self) -> int:
        return self.max_undelivered_mib * 1024 * 1024

    @property
    def max_request_memory_bytes(self) -> int:
        return self.max_request_memory_mib * 1024 * 1024


class SettingsError(Exception):
    """Settings that cannot be used; `problems` holds one line per bad option or variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_settings(given: dict[str, Any]) -> Settings:
    """Settings from `given` command-line values over `FIREHOSE_*` variables, or SettingsError
    naming each bad one as the user set it (`--port` or `FIREHOSE_PORT`)."""
    try:
        return Settings(**given)
    except PydanticValidationError as exc:
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else ""
            source = f"--{name.replace('_', '-')}" if name in given else ENV_PREFIX + name.upper()
            problems.append(f"{source}: got {error.get('input')!r}, {_allowed(error)}")
        raise SettingsError(problems) from None


def _allowed(error: ErrorDetails) -> str:
    if error["type"] == "string_pattern_mismatch" and error["loc"] == ("account_id",):
        return "must be 12 digits"
    return error_message(error)
