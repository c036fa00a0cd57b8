"""The Lambda processor with a real function ARN, through botocore against a fake Lambda."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.fake_lambda import FakeLambda
from tests.lambda_helpers import context, processor, records
from transforms.processor import ProcessorOutput

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:"


@pytest.fixture
async def fake_lambda(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeLambda]:
    server = FakeLambda()
    await server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    yield server
    await server.stop()


async def run(
    name: str, *datas: bytes, timeout: float = 10.0, **parameters: Any
) -> ProcessorOutput:
    lam = processor(ARN + name, context(timeout=timeout), **parameters)
    try:
        return await lam.process(records(*datas))
    finally:
        await lam.close()


async def test_transforms_through_invoke(fake_lambda: FakeLambda) -> None:
    output = await run("upper", b"abc", b"de")
    assert [bytes(r.data) for r in output.records] == [b"ABC", b"DE"]
    assert fake_lambda.calls == {"upper": 1}
    assert fake_lambda.invocation_types == ["RequestResponse"]


async def test_powertools_and_partition_keys_through_invoke(fake_lambda: FakeLambda) -> None:
    output = await run("powertools", b"abc", b"drop")
    assert [(bytes(r.data), r.lambda_keys) for r in output.records] == [(b"cba", {"len": "3"})]


@pytest.mark.parametrize(
    ("name", "code", "retried"),
    [
        ("raise_error", "Lambda.FunctionError", True),
        ("throttled", "Lambda.InvokeLimitExceeded", True),
        ("no_such_function", "Lambda.ResourceNotFound", False),
        ("denied", "Lambda.InvokeAccessDenied", False),
    ],
)
async def test_errors_map_to_firehose_codes_and_only_our_loop_retries(
    fake_lambda: FakeLambda, name: str, code: str, retried: bool
) -> None:
    output = await run(name, b"x", b"y", NumberOfRetries=2)
    attempts = 3 if retried else 1
    assert fake_lambda.calls == {name: attempts}  # botocore made no retries of its own
    assert output.records == []
    assert [bytes(f.record.data) for f in output.failed] == [b"x", b"y"]
    for failed in output.failed:
        assert failed.error_code == code, failed.error_message
        assert failed.details == {"lambdaArn": ARN + name, "attemptsMade": attempts}
    if name == "raise_error":
        assert "ValueError: no thanks" in output.failed[0].error_message


async def test_a_slow_function_times_out(fake_lambda: FakeLambda) -> None:
    output = await run("slow", b"x", timeout=0.5, NumberOfRetries=1)
    [failed] = output.failed
    assert failed.error_code == "Lambda.FunctionTimedOut"
    assert failed.details["attemptsMade"] == 2


async def test_a_contract_break_through_invoke(fake_lambda: FakeLambda) -> None:
    output = await run("missing_first", b"a", b"b")
    assert [f.error_code for f in output.failed] == ["Lambda.MissingRecordId"]
    assert [bytes(r.data) for r in output.records] == [b"b"]


async def test_one_client_reused_then_closed(fake_lambda: FakeLambda) -> None:
    lam = processor(ARN + "identity", context())
    await lam.process(records(b"a"))
    await lam.process(records(b"b"))
    invoker = lam._invoker
    clients = dict(invoker._clients)  # type: ignore[attr-defined]
    assert list(clients) == [("eu-west-1", fake_lambda.url)]
    await lam.close()
    assert invoker._clients == {}  # type: ignore[attr-defined]
    assert fake_lambda.calls == {"identity": 2}
