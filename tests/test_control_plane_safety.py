"""The control plane keeps data and secrets safe, driven in-process on a real service: a delete
that is not forced never drops undelivered records (now or after a restart), a key that cannot
be used fails the create or the switch with the reason KMS gave, stored requests are private,
logs show no URL query strings, and an encryption change keeps an update that came first."""

from __future__ import annotations

import base64
import json
import logging
import stat
from pathlib import Path
from typing import Any

import pytest

from firehose.api import FirehoseApi
from firehose.config import DeliveryStreamConfig
from firehose.config_s3 import ExtendedS3Destination
from firehose.errors import LogKeyError
from firehose.kms_failures import key_failure_description
from firehose.service import Service
from firehose.settings import Settings
from firehose.testing.servers import S3Server, free_port
from tests.e2e import kms_client

ROLE = "arn:aws:iam::123456789012:role/r"
MISSING_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def body(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "DeliveryStreamName": name,
        "ExtendedS3DestinationConfiguration": {
            "BucketARN": "arn:aws:s3:::local",
            "RoleARN": ROLE,
            "Prefix": f"{name}/",
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
        },
        **extra,
    }


def http_body(name: str, url: str) -> dict[str, Any]:
    return {
        "DeliveryStreamName": name,
        "HttpEndpointDestinationConfiguration": {
            "EndpointConfiguration": {"Url": url, "Name": "ep"},
            "S3Configuration": {"BucketARN": "arn:aws:s3:::local", "RoleARN": ROLE},
            "RoleARN": ROLE,
        },
    }


def settings_for(tmp_path: Path, endpoint: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        port=0,
        s3_endpoint_url=endpoint,
        shutdown_timeout_seconds=0.3,
    )


def unreachable() -> str:
    """An S3 endpoint nothing listens on: every delivery fails."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


async def started(settings: Settings, *configs: dict[str, Any]) -> Service:
    service = Service(settings, [DeliveryStreamConfig.model_validate(c) for c in configs])
    await service.start()
    return service


def describe(service: Service, name: str) -> dict[str, Any]:
    return service.control.describe(name, None)


def stored(service: Service, name: str) -> dict[str, Any]:
    path = service.settings.data_dir / "api-streams" / f"{name}.json"
    loaded: dict[str, Any] = json.loads(path.read_bytes())
    return loaded


def delivered(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted((tmp_path / "s3").rglob("*")) if p.is_file())


async def put(service: Service, name: str, count: int) -> None:
    api = FirehoseApi(service, control=service.control)
    for i in range(count):
        data = base64.b64encode(f"record-{i}\n".encode()).decode()
        await api.put_record({"DeliveryStreamName": name, "Record": {"Data": data}})


# -- delete without AllowForceDelete -------------------------------------------------------------


async def test_a_delete_that_cannot_deliver_fails_and_keeps_the_log(
    tmp_path: Path, aws_env: None
) -> None:
    service = await started(settings_for(tmp_path, unreachable()))
    control = service.control
    try:
        await control.create(body("held"))
        await control.stop()
        await put(service, "held", 3)
        log_folder = service.settings.data_dir / "streams" / "held"

        await control.delete({"DeliveryStreamName": "held"})
        assert describe(service, "held")["DeliveryStreamStatus"] == "DELETING"
        await control.stop()
        described = describe(service, "held")
        assert described["DeliveryStreamStatus"] == "DELETING_FAILED"
        assert described["FailureDescription"]["Type"] == "UNKNOWN_ERROR"
        assert "AllowForceDelete" in described["FailureDescription"]["Details"]
        assert log_folder.is_dir()
        assert stored(service, "held")["deleting"] is False

        # A retry without force delivers again, and fails again.
        await control.delete({"DeliveryStreamName": "held"})
        await control.stop()
        assert describe(service, "held")["DeliveryStreamStatus"] == "DELETING_FAILED"
        assert log_folder.is_dir()

        await control.delete({"DeliveryStreamName": "held", "AllowForceDelete": True})
        await control.stop()
        assert "held" not in control.names(None)
        assert not log_folder.exists()
        assert not (service.settings.data_dir / "api-streams" / "held.json").exists()
    finally:
        await service.stop()


async def test_a_delete_cut_short_by_a_restart_delivers_before_it_deletes(
    tmp_path: Path, aws_env: None
) -> None:
    first = await started(settings_for(tmp_path, unreachable()))
    try:
        await first.control.create(body("pending"))
        await first.control.create(body("dropped"))
        await first.control.stop()
        await put(first, "pending", 3)
        await put(first, "dropped", 2)
    finally:
        await first.stop()  # nothing delivered: the records stay in the logs
    store = tmp_path / "data" / "api-streams"
    for name, force in (("pending", False), ("dropped", True)):
        saved = json.loads((store / f"{name}.json").read_bytes())
        saved.update(deleting=True, force_deleting=force)  # as a delete accepted before a crash
        (store / f"{name}.json").write_bytes(json.dumps(saved).encode())

    second = await started(settings_for(tmp_path, f"file://{tmp_path / 's3'}"))
    try:
        await second.control.stop()
        assert second.control.names(None) == []
        assert not (store / "pending.json").exists() and not (store / "dropped.json").exists()
        assert not (tmp_path / "data" / "streams" / "pending").exists()
        assert not (tmp_path / "data" / "streams" / "dropped").exists()
    finally:
        await second.stop()
    assert sorted(delivered(tmp_path).splitlines()) == [b"record-0", b"record-1", b"record-2"]
    assert not list((tmp_path / "s3").rglob("dropped/*"))


# -- keys that cannot be used --------------------------------------------------------------------


@pytest.fixture
def kms(moto_s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> Any:
    """moto's KMS, where the service looks for KMS."""
    for name, value in {**moto_s3.env(), "AWS_ENDPOINT_URL_KMS": moto_s3.endpoint_url}.items():
        monkeypatch.setenv(name, value)
    return kms_client(moto_s3)


async def test_a_create_with_a_key_that_cannot_be_used_fails(tmp_path: Path, kms: Any) -> None:
    service = await started(settings_for(tmp_path, f"file://{tmp_path / 's3'}"))
    control = service.control
    try:
        encryption = {"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": MISSING_KEY}
        await control.create(body("keyless", DeliveryStreamEncryptionConfigurationInput=encryption))
        await control.stop()
        described = describe(service, "keyless")
        assert described["DeliveryStreamStatus"] == "CREATING_FAILED"
        assert described["FailureDescription"]["Type"] == "KMS_KEY_NOT_FOUND"
        shown = described["DeliveryStreamEncryptionConfiguration"]
        assert shown["Status"] == "ENABLING_FAILED"
        assert shown["FailureDescription"]["Type"] == "KMS_KEY_NOT_FOUND"
        assert shown["FailureDescription"]["Details"]
        assert "keyless" not in service.streams
        await control.delete({"DeliveryStreamName": "keyless"})
        await control.stop()
        assert "keyless" not in control.names(None)
        assert not (service.settings.data_dir / "streams" / "keyless").exists()
    finally:
        await service.stop()


async def test_a_failed_switch_of_key_says_why(tmp_path: Path, kms: Any) -> None:
    usable = kms.create_key()["KeyMetadata"]["Arn"]
    service = await started(settings_for(tmp_path, f"file://{tmp_path / 's3'}"))
    control = service.control

    def encryption() -> dict[str, Any]:
        shown: dict[str, Any] = describe(service, "switch")["DeliveryStreamEncryptionConfiguration"]
        return shown

    async def switch_to(key_arn: str) -> None:
        given = {"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": key_arn}
        await control.start_encryption(
            {"DeliveryStreamName": "switch", "DeliveryStreamEncryptionConfigurationInput": given}
        )
        await control.stop()

    try:
        await control.create(body("switch"))
        await control.stop()
        await switch_to(MISSING_KEY)
        assert encryption()["Status"] == "ENABLING_FAILED"
        assert encryption()["FailureDescription"]["Type"] == "KMS_KEY_NOT_FOUND"
        assert MISSING_KEY in encryption()["FailureDescription"]["Details"]
        # A switch that works clears the failure.
        await switch_to(usable)
        assert encryption() == {
            "Status": "ENABLED",
            "KeyType": "CUSTOMER_MANAGED_CMK",
            "KeyARN": usable,
        }
    finally:
        await service.stop()


@pytest.mark.parametrize(
    ("code", "failure"),
    [
        ("NotFoundException", "KMS_KEY_NOT_FOUND"),
        ("AccessDeniedException", "KMS_ACCESS_DENIED"),
        ("DisabledException", "DISABLED_KMS_KEY"),
        ("InvalidStateException", "INVALID_KMS_KEY"),
        ("KMSUnreachable", "UNKNOWN_ERROR"),
    ],
)
def test_kms_codes_name_their_failure_type(code: str, failure: str) -> None:
    # moto's KMS answers only NotFoundException of these; the others come from AWS KMS.
    described = key_failure_description(LogKeyError("KMS said no", code))
    assert described == {"Type": failure, "Details": "KMS said no"}


# -- secrets -------------------------------------------------------------------------------------


async def test_stored_requests_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, f"file://{tmp_path / 's3'}")
    service = await started(settings)
    try:
        await service.control.create(http_body("secret", "https://127.0.0.1:1/in"))
        await service.control.stop()
    finally:
        await service.stop()
    folder = settings.data_dir / "api-streams"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "secret.json").stat().st_mode) == 0o600

    # Files and folders an earlier version left readable are made private at start.
    folder.chmod(0o755)
    (folder / "secret.json").chmod(0o644)
    service = await started(settings)
    await service.stop()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "secret.json").stat().st_mode) == 0o600


async def test_logs_show_no_query_strings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    settings = settings_for(tmp_path, f"file://{tmp_path / 's3'}")
    service = await started(settings, http_body("fixed", "https://127.0.0.1:1/in?code=s3cr3t-a"))
    try:
        await service.control.create(http_body("made", "https://127.0.0.1:1/in?code=s3cr3t-b"))
        await service.control.stop()
    finally:
        await service.stop()
    ready = [r.getMessage() for r in caplog.records if "delivering to" in r.getMessage()]
    assert len(ready) == 2
    assert all("https://127.0.0.1:1/in?…" in line for line in ready)
    assert "s3cr3t" not in caplog.text


# -- an encryption change and an update ----------------------------------------------------------


async def test_an_encryption_change_keeps_an_update_that_took_the_lock_first(
    tmp_path: Path,
) -> None:
    service = await started(settings_for(tmp_path, f"file://{tmp_path / 's3'}"))
    control = service.control
    try:
        await control.create(body("both"))
        await control.stop()
        # The switch is applied in the background; the update below takes the lock before it.
        await control.start_encryption({"DeliveryStreamName": "both"})
        await control.update_destination(
            {
                "DeliveryStreamName": "both",
                "CurrentDeliveryStreamVersionId": "1",
                "DestinationId": "destinationId-000000000001",
                "ExtendedS3DestinationUpdate": {"Prefix": "updated/"},
            }
        )
        await control.stop()
        request = stored(service, "both")["request"]
        destination = request["ExtendedS3DestinationConfiguration"]
        assert destination["Prefix"] == "updated/"
        assert request["DeliveryStreamEncryptionConfigurationInput"] == {"KeyType": "AWS_OWNED_CMK"}
        described = describe(service, "both")
        assert described["VersionId"] == "2"
        assert described["DeliveryStreamEncryptionConfiguration"]["Status"] == "ENABLED"
        destination_config = service.streams["both"].config.destination
        assert isinstance(destination_config, ExtendedS3Destination)
        assert destination_config.prefix == "updated/"
        assert service.streams["both"].encrypted
    finally:
        await service.stop()
