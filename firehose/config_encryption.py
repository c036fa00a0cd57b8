"""`DeliveryStreamEncryptionConfigurationInput`: a stream's records encrypted at rest in its
write-ahead log. (The objects' side, `EncryptionConfiguration`, is part of the S3 shape in
`firehose.config_base`.)"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from firehose.config_base import FieldProblems, _alias, _Model, checked_kms_key_arn


class DeliveryStreamEncryption(_Model):
    """`DeliveryStreamEncryptionConfigurationInput`: encrypt the stream's log at rest, with a
    local key (`AWS_OWNED_CMK`) or with data keys from KMS (`CUSTOMER_MANAGED_CMK`)."""

    key_type: Literal["AWS_OWNED_CMK", "CUSTOMER_MANAGED_CMK"] = Field(
        "AWS_OWNED_CMK", validation_alias=_alias("KeyType", "key_type")
    )
    key_arn: str | None = Field(None, validation_alias=_alias("KeyARN", "key_arn"))

    @field_validator("key_arn")
    @classmethod
    def _check_key_arn(cls, value: str | None) -> str | None:
        return None if value is None else checked_kms_key_arn(value)

    @model_validator(mode="after")
    def _key_arn_with_its_type(self) -> DeliveryStreamEncryption:
        if self.key_type == "CUSTOMER_MANAGED_CMK" and self.key_arn is None:
            raise FieldProblems([("KeyARN", "is required when KeyType is CUSTOMER_MANAGED_CMK")])
        if self.key_type == "AWS_OWNED_CMK" and self.key_arn is not None:
            raise FieldProblems(
                [("KeyARN", "is given only with KeyType CUSTOMER_MANAGED_CMK, not AWS_OWNED_CMK")]
            )
        return self

    def description(self) -> dict[str, Any]:
        """`DeliveryStreamEncryptionConfiguration` of DescribeDeliveryStream."""
        described: dict[str, Any] = {"KeyType": self.key_type, "Status": "ENABLED"}
        if self.key_arn is not None:
            described["KeyARN"] = self.key_arn
        return described
