"""The credentials file (the AWS CLI's format plus our allow-list keys) and the SigV4 arithmetic."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from firehose import sigv4
from firehose.credentials import Principal, load_credentials
from firehose.errors import StartError

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "credentials"
    path.write_text(text)
    return path


def refusal(path: Path) -> str:
    with pytest.raises(StartError) as raised:
        load_credentials(path)
    message = str(raised.value)
    assert SECRET not in message and "AKIDEXAMPLE" not in message
    return message


def test_every_profile_with_a_key_pair_is_a_caller(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = {SECRET}\n"
        "region = us-east-1\n\n"
        "[loader]\naws_access_key_id=AKIDLOADER\naws_secret_access_key=s%cret\n"
        "firehose_streams = clicks, logs-*\n"
        "firehose_actions = firehose:PutRecord, putrecordbatch, Describe*\n\n"
        "[only-settings]\noutput = json\n",
    )
    callers = load_credentials(path)
    assert set(callers) == {"AKIDEXAMPLE", "AKIDLOADER"}
    everyone, loader = callers["AKIDEXAMPLE"], callers["AKIDLOADER"]
    assert everyone.profile == "default" and everyone.secret_access_key == SECRET
    assert everyone.may_use_stream("anything") and everyone.may_perform("DeleteDeliveryStream")
    assert loader.secret_access_key == "s%cret"  # no interpolation
    assert loader.may_use_stream("clicks") and loader.may_use_stream("logs-app")
    assert not loader.may_use_stream("Clicks") and not loader.may_use_stream("clicks2")
    for action in ("PutRecord", "PutRecordBatch", "DescribeDeliveryStream"):
        assert loader.may_perform(action)
    assert not loader.may_perform("ListDeliveryStreams")
    assert SECRET not in repr(everyone) and "s%cret" not in repr(loader)


def test_a_missing_file(tmp_path: Path) -> None:
    message = refusal(tmp_path / "nope")
    assert message == f"credentials file {tmp_path / 'nope'}: No such file or directory"


def test_half_a_key_pair(tmp_path: Path) -> None:
    path = write(tmp_path, f"[ci]\naws_secret_access_key = {SECRET}\n")
    assert refusal(path).endswith("profile ci has aws_secret_access_key but no aws_access_key_id")


def test_the_same_key_in_two_profiles(tmp_path: Path) -> None:
    pair = f"aws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = {SECRET}\n"
    path = write(tmp_path, f"[a]\n{pair}\n[b]\n{pair}")
    assert refusal(path).endswith("profiles a and b have the same aws_access_key_id")


def test_an_action_pattern_matching_no_action(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"[a]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = {SECRET}\n"
        "firehose_actions = PutRecords\n",
    )
    assert "firehose_actions: 'PutRecords' matches no Firehose action (" in refusal(path)


def test_an_empty_allow_list(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"[a]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = {SECRET}\n"
        "firehose_streams = ,\n",
    )
    assert refusal(path).endswith("profile a: firehose_streams is empty")


@pytest.mark.parametrize(
    "text",
    ["[default]\nregion = us-east-1\n", ""],
    ids=["settings only", "empty"],
)
def test_a_file_with_no_key_pair(tmp_path: Path, text: str) -> None:
    assert "holds no profile with both aws_access_key_id and aws_secret_access_key" in refusal(
        write(tmp_path, text)
    )


def test_a_file_not_in_the_cli_format_is_not_quoted(tmp_path: Path) -> None:
    path = write(tmp_path, f"aws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = {SECRET}\n")
    assert "is not in the AWS CLI's format: File contains no section headers." in refusal(path)


def test_the_signature_of_aws_published_example() -> None:
    """AWS's SigV4 test suite, `get-vanilla`."""
    request = sigv4.canonical_request(
        "GET",
        sigv4.canonical_uri("/"),
        sigv4.canonical_query([]),
        {"host": ["example.amazonaws.com"], "x-amz-date": ["20150830T123600Z"]},
        ("host", "x-amz-date"),
        hashlib.sha256(b"").hexdigest(),
    )
    key = sigv4.signing_key(SECRET, "20150830", "us-east-1", "service")
    to_sign = sigv4.string_to_sign(
        "20150830T123600Z", "20150830/us-east-1/service/aws4_request", request
    )
    expected = "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    assert sigv4.signature(key, to_sign) == expected
    assert sigv4.signatures_match(expected, expected)
    assert not sigv4.signatures_match(expected, expected.upper())
    assert not sigv4.signatures_match(expected, expected[:-1] + "0")


def test_canonical_parts() -> None:
    assert sigv4.canonical_query([("b", "2"), ("a", "x y"), ("a", "1")]) == "a=1&a=x%20y&b=2"
    assert sigv4.canonical_query([("k", "a%2Fb"), ("s", "~")]) == "k=a%2Fb&s=~"
    headers = {"x-a": ["  one   two  "], "x-b": ["1", "2"]}
    assert sigv4.canonical_headers(headers, ("x-a", "x-b")) == "x-a:one two\nx-b:1,2\n"
    assert sigv4.canonical_uri("/a b/./c/../d") == "/a%20b/d"


def test_authorization_header_parts() -> None:
    parsed = sigv4.parse_authorization(
        "AWS4-HMAC-SHA256 Credential=AKID/20261129/us-east-1/firehose/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc"
    )
    assert parsed.credential.access_key_id == "AKID"
    assert parsed.credential.scope == "20261129/us-east-1/firehose/aws4_request"
    assert parsed.signed_headers == ("host", "x-amz-date") and parsed.signature == "abc"
    with pytest.raises(sigv4.MalformedAuthorization) as raised:
        sigv4.parse_authorization("AWS4-HMAC-SHA256 Credential=AKID/x")
    assert str(raised.value).startswith(
        "Authorization header requires 'Signature' parameter. "
        "Authorization header requires 'SignedHeaders' parameter."
    )


def test_a_principal_never_shows_its_secret() -> None:
    principal = Principal("p", "AKID", SECRET)
    assert SECRET not in repr(principal) and SECRET not in str(principal)
