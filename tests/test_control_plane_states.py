"""The control plane's transient states, driven in-process on a real service (objects go to a
local folder): what a caller sees while a stream is CREATING, when it cannot be created, and
what is stored."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from firehose.api import FirehoseApi
from firehose.config import DeliveryStreamConfig
from firehose.errors import (
    ResourceInUseError,
    ResourceNotFoundError,
    ServiceUnavailableError,
    ValidationError,
)
from firehose.service import Service
from firehose.settings import Settings

ROLE = "arn:aws:iam::123456789012:role/r"


def body(name: str) -> dict[str, Any]:
    return {
        "DeliveryStreamName": name,
        "ExtendedS3DestinationConfiguration": {
            "BucketARN": "arn:aws:s3:::local",
            "RoleARN": ROLE,
            "BufferingHints": {"SizeInMBs": 1, "IntervalInSeconds": 0},
        },
    }


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    settings = Settings(
        data_dir=tmp_path / "data", port=0, s3_endpoint_url=f"file://{tmp_path / 's3'}"
    )
    running = Service(settings, [DeliveryStreamConfig.model_validate(body("fixed"))])
    await running.start()
    yield running
    await running.stop()


def status(service: Service, name: str) -> str:
    return str(service.control.describe(name, None)["DeliveryStreamStatus"])


async def test_a_creating_stream_takes_no_puts_and_cannot_be_deleted(service: Service) -> None:
    api = FirehoseApi(service, control=service.control)
    control = service.control
    # No await between these calls: the stream's log opens in the background afterwards.
    await control.create(body("young"))
    assert status(service, "young") == "CREATING"
    assert "young" in control.names(None)
    with pytest.raises(ResourceNotFoundError):
        await api.put_record({"DeliveryStreamName": "young", "Record": {"Data": "eA=="}})
    with pytest.raises(ResourceInUseError):
        await control.delete({"DeliveryStreamName": "young"})
    await control.stop()  # waits for the background open
    assert status(service, "young") == "ACTIVE"
    answer = await api.put_record({"DeliveryStreamName": "young", "Record": {"Data": "eA=="}})
    assert answer["RecordId"]

    stored = json.loads((service.settings.data_dir / "api-streams" / "young.json").read_bytes())
    assert stored["request"] == body("young")
    assert stored["version"] == 1 and stored["deleting"] is False


async def test_a_stream_whose_log_cannot_open_fails_to_create_and_can_be_deleted(
    service: Service,
) -> None:
    control = service.control
    # A file where the stream's log folder must go.
    (service.settings.data_dir / "streams" / "blocked").write_text("in the way")
    await control.create(body("blocked"))
    await control.stop()
    described = control.describe("blocked", None)
    assert described["DeliveryStreamStatus"] == "CREATING_FAILED"
    assert described["FailureDescription"]["Type"] == "UNKNOWN_ERROR"
    with pytest.raises(ResourceInUseError):
        await control.tag({"DeliveryStreamName": "blocked", "Tags": [{"Key": "a"}]})
    await control.delete({"DeliveryStreamName": "blocked"})
    await control.stop()
    assert "blocked" not in control.names(None)
    assert not (service.settings.data_dir / "api-streams" / "blocked.json").exists()
    assert not (service.settings.data_dir / "streams" / "blocked").exists()


async def test_changes_wait_for_the_service_to_be_ready(service: Service) -> None:
    api = FirehoseApi(service, control=service.control)
    service.ready = False
    create = api._handler("CreateDeliveryStream", "")
    with pytest.raises(ServiceUnavailableError):
        await create(api, body("early"))
    service.ready = True
    await create(api, body("early"))
    await service.control.stop()
    assert status(service, "early") == "ACTIVE"


async def test_untag_and_list_refuse_bad_requests(service: Service) -> None:
    control = service.control
    await control.create(body("tagged"))
    await control.stop()
    for keys, path in (([], "tagKeys"), ([f"k{i}" for i in range(51)], "tagKeys")):
        with pytest.raises(ValidationError, match=f"at '{path}'"):
            await control.untag({"DeliveryStreamName": "tagged", "TagKeys": keys})
    with pytest.raises(ValidationError, match=r"tagKeys\.2\.member"):
        await control.untag({"DeliveryStreamName": "tagged", "TagKeys": ["ok", "aws:no"]})
    with pytest.raises(ValidationError, match=r"'tagKeys'.*must not be null"):
        await control.untag({"DeliveryStreamName": "tagged"})
    with pytest.raises(ResourceNotFoundError):
        await control.untag({"DeliveryStreamName": "missing", "TagKeys": ["a"]})
    assert control.names("DirectPut") == ["fixed", "tagged"]
    assert control.names("KinesisStreamAsSource") == []
