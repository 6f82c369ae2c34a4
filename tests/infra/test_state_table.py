"""The DynamoDB table of docs/contracts.md."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match, Template

from tests.infra.helpers import resources_of


def test_table_keys_gsi_ttl_pitr_billing(template: Template) -> None:
    template.resource_count_is("AWS::DynamoDB::Table", 1)
    template.resource_count_is("AWS::DynamoDB::GlobalTable", 0)  # TableV2: moto cannot deploy it
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "TableName": "demo-kubestep",
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": Match.array_with(
                [
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "S"},
                    {"AttributeName": "gsi1pk", "AttributeType": "S"},
                    {"AttributeName": "gsi1sk", "AttributeType": "S"},
                    {"AttributeName": "gsi2pk", "AttributeType": "S"},
                    {"AttributeName": "gsi2sk", "AttributeType": "S"},
                ]
            ),
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "gsi1",
                    "KeySchema": [
                        {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                        {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                },
                {
                    "IndexName": "gsi2",
                    "KeySchema": [
                        {"AttributeName": "gsi2pk", "KeyType": "HASH"},
                        {"AttributeName": "gsi2sk", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                },
            ],
            "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        },
    )


def test_table_is_encrypted_with_the_stacks_customer_managed_key(
    synthesized_template: dict[str, Any],
) -> None:
    (table,) = resources_of(synthesized_template, "AWS::DynamoDB::Table").values()
    (key_id,) = resources_of(synthesized_template, "AWS::KMS::Key")
    sse = table["Properties"]["SSESpecification"]
    assert sse["SSEEnabled"] is True
    assert sse["SSEType"] == "KMS"
    assert sse["KMSMasterKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}


def test_table_and_key_are_retained(synthesized_template: dict[str, Any]) -> None:
    for resource_type in ("AWS::DynamoDB::Table", "AWS::KMS::Key"):
        for resource in resources_of(synthesized_template, resource_type).values():
            assert resource["DeletionPolicy"] == "Retain"
            assert resource["UpdateReplacePolicy"] == "Retain"


def test_key_rotates_and_lets_auto_scaling_use_it_for_ebs(template: Template) -> None:
    slr = Match.object_like(
        {
            "ArnEquals": {
                "aws:PrincipalArn": {
                    "Fn::Join": [
                        "",
                        [
                            "arn:aws:iam::",
                            {"Ref": "AWS::AccountId"},
                            ":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
                        ],
                    ]
                }
            }
        }
    )
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "EnableKeyRotation": True,
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Action": Match.array_with(["kms:Decrypt", "kms:GenerateDataKey*"]),
                                "Condition": slr,
                                "Effect": "Allow",
                            }
                        ),
                        Match.object_like(
                            {
                                "Action": "kms:CreateGrant",
                                "Condition": Match.object_like({"Bool": {"kms:GrantIsForAWSResource": True}}),
                                "Effect": "Allow",
                            }
                        ),
                    ]
                )
            },
        },
    )


def test_a_key_named_by_the_manifest_is_used_as_given(variant_template: dict[str, Any]) -> None:
    assert resources_of(variant_template, "AWS::KMS::Key") == {}
    (table,) = resources_of(variant_template, "AWS::DynamoDB::Table").values()
    assert table["Properties"]["SSESpecification"]["KMSMasterKeyId"] == (
        "arn:aws:kms:eu-west-1:123456789012:alias/platform"
    )
