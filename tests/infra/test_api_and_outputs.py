"""API Gateway (IAM everywhere, throttled stage, no account-level resources) and stack outputs."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template

from tests.infra.helpers import resources_of


def test_rest_api_routes_and_iam_authorization(synthesized_template: dict[str, Any]) -> None:
    (api,) = resources_of(synthesized_template, "AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["Name"] == "demo-kubestep"
    paths = sorted(
        r["Properties"]["PathPart"] for r in resources_of(synthesized_template, "AWS::ApiGateway::Resource").values()
    )
    assert paths == ["v1", "{proxy+}"]
    methods = resources_of(synthesized_template, "AWS::ApiGateway::Method").values()
    assert len(methods) == 2
    api_function = next(
        logical_id
        for logical_id, f in resources_of(synthesized_template, "AWS::Lambda::Function").items()
        if f["Properties"]["FunctionName"] == "demo-api"
    )
    for method in methods:
        props = method["Properties"]
        assert props["AuthorizationType"] == "AWS_IAM"
        assert props["HttpMethod"] == "ANY"
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert api_function in str(props["Integration"]["Uri"])


def test_stage_v1_throttled_and_no_account_resource(template: Template, synthesized_template: dict[str, Any]) -> None:
    template.resource_count_is("AWS::ApiGateway::Account", 0)
    (stage,) = resources_of(synthesized_template, "AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["StageName"] == "api"
    assert "AccessLogSetting" not in props, "access logging is opt-in"
    (settings,) = props["MethodSettings"]
    assert settings["ThrottlingRateLimit"] == 50
    assert settings["ThrottlingBurstLimit"] == 100


def test_access_logging_opt_in_creates_no_account_resource(variant_template: dict[str, Any]) -> None:
    assert resources_of(variant_template, "AWS::ApiGateway::Account") == {}
    (stage,) = resources_of(variant_template, "AWS::ApiGateway::Stage").values()
    assert "DestinationArn" in stage["Properties"]["AccessLogSetting"]


def test_outputs(synthesized_template: dict[str, Any], workflows: tuple[str, ...]) -> None:
    outputs = synthesized_template["Outputs"]
    expected = {"TableName", "ApiUrl", "ServiceName", "BackupBucketName", *(f"{w}StateMachineArn" for w in workflows)}
    assert set(outputs) == expected
    assert outputs["ServiceName"]["Value"] == "demo"
    table_id = next(iter(resources_of(synthesized_template, "AWS::DynamoDB::Table")))
    assert outputs["TableName"]["Value"] == {"Ref": table_id}
    # The stage URL: https://<api id>.execute-api.us-east-1.<suffix>/api/ (routes live under /v1/...).
    (stage_id,) = resources_of(synthesized_template, "AWS::ApiGateway::Stage")
    (api_id,) = resources_of(synthesized_template, "AWS::ApiGateway::RestApi")
    separator, parts = outputs["ApiUrl"]["Value"]["Fn::Join"]
    assert separator == ""
    assert parts[0] == "https://" and parts[1] == {"Ref": api_id}
    assert parts[-2:] == [{"Ref": stage_id}, "/"]


def test_stack_tags(synthesized_template: dict[str, Any]) -> None:
    (table,) = resources_of(synthesized_template, "AWS::DynamoDB::Table").values()
    tags = {t["Key"]: t["Value"] for t in table["Properties"]["Tags"]}
    assert tags == {"gke:management-service": "demo", "team": "platform"}
    # The KMS key stays untagged: moto's CloudFormation cannot create a tagged key.
    (key,) = resources_of(synthesized_template, "AWS::KMS::Key").values()
    assert "Tags" not in key["Properties"]
