"""UpdateDestination's merge and refusal rules, and the model checks of control-plane requests."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError as PydanticValidationError

from firehose.config import DeliveryStreamConfig
from firehose.control_checks import encryption_input_problems, model_violations, tags_problems
from firehose.destination_update import refused_change, update_member, updated_request
from firehose.errors import InvalidArgumentError, SerializationError

ROLE = "arn:aws:iam::123456789012:role/r"


def s3_request(**members: Any) -> dict[str, Any]:
    return {
        "DeliveryStreamName": "s",
        "ExtendedS3DestinationConfiguration": {
            "BucketARN": "arn:aws:s3:::b",
            "RoleARN": ROLE,
            "BufferingHints": {"SizeInMBs": 7, "IntervalInSeconds": 120},
            "EncryptionConfiguration": {"NoEncryptionConfig": "NoEncryption"},
            **members,
        },
    }


def test_same_kind_merges_nested_members_and_replaces_alternatives() -> None:
    update = {
        "BufferingHints": {"IntervalInSeconds": 5},
        "EncryptionConfiguration": {"KMSEncryptionConfig": {"AWSKMSKeyARN": "arn:k"}},
        "S3BackupUpdate": {"BucketARN": "arn:aws:s3:::backup"},
    }
    merged = updated_request(s3_request(Prefix="p/"), "ExtendedS3DestinationUpdate", update)
    section = merged["ExtendedS3DestinationConfiguration"]
    assert section["BufferingHints"] == {"SizeInMBs": 7, "IntervalInSeconds": 5}
    assert section["EncryptionConfiguration"] == {"KMSEncryptionConfig": {"AWSKMSKeyARN": "arn:k"}}
    assert section["S3BackupConfiguration"] == {"BucketARN": "arn:aws:s3:::backup"}
    assert section["Prefix"] == "p/" and section["RoleARN"] == ROLE


def test_the_plain_s3_update_merges_into_an_extended_s3_destination() -> None:
    merged = updated_request(s3_request(), "S3DestinationUpdate", {"Prefix": "x/"})
    assert list(merged) == ["DeliveryStreamName", "ExtendedS3DestinationConfiguration"]
    assert merged["ExtendedS3DestinationConfiguration"]["Prefix"] == "x/"


def test_a_change_of_kind_replaces_the_destination() -> None:
    update = {"EndpointConfiguration": {"Url": "https://h"}, "S3Update": {"BucketARN": "a"}}
    replaced = updated_request(s3_request(), "HttpEndpointDestinationUpdate", update)
    assert replaced == {
        "DeliveryStreamName": "s",
        "HttpEndpointDestinationConfiguration": {
            "EndpointConfiguration": {"Url": "https://h"},
            "S3Configuration": {"BucketARN": "a"},
        },
    }


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("AmazonopensearchserviceDestinationConfiguration", "HttpEndpointDestinationUpdate"),
        ("ExtendedS3DestinationConfiguration", "ElasticsearchDestinationUpdate"),
    ],
)
def test_opensearch_changes_only_to_opensearch(old: str, new: str) -> None:
    with pytest.raises(InvalidArgumentError, match="OpenSearch"):
        updated_request({"DeliveryStreamName": "s", old: {}}, new, {})


def test_opensearch_and_elasticsearch_change_into_each_other() -> None:
    request = {"DeliveryStreamName": "s", "ElasticsearchDestinationConfiguration": {"A": 1}}
    replaced = updated_request(request, "AmazonopensearchserviceDestinationUpdate", {"B": 2})
    assert replaced["AmazonopensearchserviceDestinationConfiguration"] == {"B": 2}


def test_an_update_names_exactly_one_destination() -> None:
    with pytest.raises(InvalidArgumentError, match="exactly one"):
        update_member({"ExtendedS3DestinationUpdate": {}, "SplunkDestinationUpdate": {}})
    with pytest.raises(InvalidArgumentError, match="got 0"):
        update_member({"DeliveryStreamName": "s"})
    with pytest.raises(SerializationError):
        update_member({"ExtendedS3DestinationUpdate": "nope"})


def config(**members: Any) -> DeliveryStreamConfig:
    return DeliveryStreamConfig.model_validate(s3_request(**members))


def test_backup_goes_from_disabled_to_enabled_only() -> None:
    backup = {"BucketARN": "arn:aws:s3:::backup", "RoleARN": ROLE}
    enabled = config(S3BackupMode="Enabled", S3BackupConfiguration=backup)
    disabled = config(S3BackupMode="Disabled", S3BackupConfiguration=backup)
    assert refused_change(disabled, enabled) is None
    assert "Enabled to Disabled" in str(refused_change(enabled, disabled))


def test_dynamic_partitioning_is_neither_added_nor_removed() -> None:
    partitioned = config(
        Prefix="!{partitionKeyFromQuery:k}/",
        ErrorOutputPrefix="errors/",
        BufferingHints={"SizeInMBs": 64, "IntervalInSeconds": 60},
        DynamicPartitioningConfiguration={"Enabled": True},
        ProcessingConfiguration={
            "Enabled": True,
            "Processors": [
                {
                    "Type": "MetadataExtraction",
                    "Parameters": [
                        {"ParameterName": "MetadataExtractionQuery", "ParameterValue": "{k:.k}"},
                        {"ParameterName": "JsonParsingEngine", "ParameterValue": "JQ-1.6"},
                    ],
                }
            ],
        },
    )
    plain = config()
    assert "cannot be enabled" in str(refused_change(plain, partitioned))
    assert "cannot be disabled" in str(refused_change(partitioned, plain))
    assert refused_change(plain, config(Prefix="other/")) is None


def test_model_violations_speak_the_api_model() -> None:
    request = s3_request(BufferingHints={"SizeInMBs": 0, "IntervalInSeconds": 901})
    with pytest.raises(PydanticValidationError) as caught:
        DeliveryStreamConfig.model_validate(request)
    assert sorted(model_violations(caught.value)) == [
        "Value '0' at 'extendedS3DestinationConfiguration.bufferingHints.sizeInMBs' failed to "
        "satisfy constraint: Member must have value greater than or equal to 1",
        "Value '901' at 'extendedS3DestinationConfiguration.bufferingHints.intervalInSeconds' "
        "failed to satisfy constraint: Member must have value less than or equal to 900",
    ]


def test_tag_rules() -> None:
    assert tags_problems([{"Key": "team", "Value": "Équipe 1 = a/b@c%"}]) == []
    assert tags_problems([{"Key": "k"}]) == []
    (problem,) = tags_problems([{"Key": "aws:x", "Value": "v"}])
    assert "tags.1.member.key" in problem and "(?!aws:)" in problem
    (problem,) = tags_problems([{"Key": "k", "Value": "v" * 257}])
    assert "tags.1.member.value" in problem and "less than or equal to 256" in problem
    (problem,) = tags_problems([{"Key": "k" * 129}])
    assert "less than or equal to 128" in problem
    assert "greater than or equal to 1" in tags_problems([])[0]
    assert "less than or equal to 50" in tags_problems([{"Key": f"{i}"} for i in range(51)])[0]


def test_encryption_input_rules() -> None:
    path = "deliveryStreamEncryptionConfigurationInput"
    key = "arn:aws:kms:us-east-1:123456789012:alias/mine"
    assert encryption_input_problems({"KeyType": "CUSTOMER_MANAGED_CMK", "KeyARN": key}, path) == []
    (problem,) = encryption_input_problems({}, path)
    assert f"'{path}.keyType'" in problem and "must not be null" in problem
    (problem,) = encryption_input_problems({"KeyType": "AWS_OWNED_CMK", "KeyARN": "arn:x"}, path)
    assert f"'{path}.keyARN'" in problem and "regular expression" in problem
