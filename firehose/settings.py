"""Service settings: command-line options first, then `FIREHOSE_*` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """What one service instance needs to run; every field is also `FIREHOSE_<NAME>`."""

    model_config = SettingsConfigDict(env_prefix="FIREHOSE_", extra="ignore")

    config: Path = Field(Path("configs"), description="a YAML file or a folder of them")
    host: str = "127.0.0.1"
    port: int = Field(4573, ge=0, le=65535)
    data_dir: Path = Field(Path("data"), description="write-ahead logs and watermarks")
    region: str = "us-east-1"
    account_id: str = Field("000000000000", pattern=r"^\d{12}$")
    max_undelivered_mib: int = Field(
        2048, ge=1, description="per stream; past it puts answer ServiceUnavailableException"
    )
    wal_segment_mib: int = Field(64, ge=1, le=1024)
    s3_endpoint_url: str | None = Field(
        None, description="overrides every stream's S3 endpoint: http(s)://… or file://DIR"
    )
    shutdown_timeout_seconds: float = Field(
        120.0,
        ge=0,
        description="on SIGTERM, how long to try delivering before leaving data in the log",
    )
    log_level: str = "INFO"

    @property
    def max_undelivered_bytes(self) -> int:
        return self.max_undelivered_mib * 1024 * 1024
