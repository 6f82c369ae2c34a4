"""Template adaptation for moto's CloudFormation (no emulator needed)."""

from __future__ import annotations

import json

import pytest

from kubestep_local.deploy import DeployError, prepare_template, transform_state_machine

ASL = json.dumps(
    {
        "StartAt": "A",
        "States": {
            "A": {
                "Type": "Task",
                "Resource": "${TasksArn}",
                "Parameters": {"name.$": "$$.Execution.Name", "other": "${NotASubstitution}"},
                "End": True,
            }
        },
    }
)
ARN_REF = {"Fn::GetAtt": ["Fn", "Arn"]}


def test_string_definition_becomes_a_join_with_the_substitution_values() -> None:
    props = transform_state_machine(
        {"DefinitionString": ASL, "DefinitionSubstitutions": {"TasksArn": ARN_REF}, "RoleArn": "r"}
    )
    assert "DefinitionSubstitutions" not in props
    assert props["RoleArn"] == "r"
    join = props["DefinitionString"]["Fn::Join"]
    assert join[0] == ""
    assert ARN_REF in join[1]
    text = "".join(p if isinstance(p, str) else "<ARN>" for p in join[1])
    definition = json.loads(text)
    assert definition["States"]["A"]["Resource"] == "<ARN>"
    # `$$` survives (moto's Fn::Sub with a map would have made it `$`); unknown placeholders stay.
    assert definition["States"]["A"]["Parameters"] == {
        "name.$": "$$.Execution.Name",
        "other": "${NotASubstitution}",
    }


def test_literal_substitutions_collapse_to_a_string() -> None:
    props = transform_state_machine({"DefinitionString": ASL, "DefinitionSubstitutions": {"TasksArn": "arn:x"}})
    assert json.loads(props["DefinitionString"])["States"]["A"]["Resource"] == "arn:x"


def test_join_definition_keeps_its_tokens() -> None:
    left, right = ASL.split('"${TasksArn}"')
    definition = {"Fn::Join": ["", [left + '"${TasksArn}"', {"Ref": "AWS::Region"}, right]]}
    props = transform_state_machine({"DefinitionString": definition, "DefinitionSubstitutions": {"TasksArn": "X"}})
    parts = props["DefinitionString"]["Fn::Join"][1]
    assert {"Ref": "AWS::Region"} in parts
    assert "".join(p for p in parts if isinstance(p, str)).count('"X"') == 1


def test_sub_definition_folds_its_variables() -> None:
    definition = {"Fn::Sub": [ASL.replace("${NotASubstitution}", "${AWS::Region}"), {"TasksArn": ARN_REF}]}
    parts = transform_state_machine({"DefinitionString": definition})["DefinitionString"]["Fn::Join"][1]
    assert ARN_REF in parts
    assert any(isinstance(p, dict) and "${AWS::Region}" in p.get("Fn::Sub", "") for p in parts)


def test_definition_object_and_s3_location() -> None:
    props = transform_state_machine({"Definition": {"StartAt": "A", "States": {}}})
    assert json.loads(props["DefinitionString"]) == {"StartAt": "A", "States": {}}
    with pytest.raises(DeployError, match="from_string"):
        transform_state_machine({"DefinitionS3Location": {"Bucket": "b", "Key": "k"}})


def test_prepare_template_drops_what_moto_cannot_create() -> None:
    template = {
        "Parameters": {"BootstrapVersion": {"Type": "AWS::SSM::Parameter::Value<String>"}},
        "Rules": {"CheckBootstrapVersion": {}},
        "Resources": {
            "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {}},
            "Stage": {"Type": "AWS::ApiGateway::Stage", "Properties": {"StageName": "v1"}},
            "Account": {"Type": "AWS::ApiGateway::Account", "Properties": {}},
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Layers": ["arn:layer"],
                    "Environment": {"Variables": {"STAGE": {"Ref": "Stage"}}},
                },
                "DependsOn": ["Stage", "Api"],
            },
        },
        "Outputs": {"ApiUrl": {"Value": {"Fn::Join": ["", ["https://x/", {"Ref": "Stage"}, "/"]]}}},
    }
    out = prepare_template(template)
    assert "Rules" not in out
    assert set(out["Resources"]) == {"Api", "Fn"}
    fn = out["Resources"]["Fn"]
    assert "Layers" not in fn["Properties"]
    assert fn["Properties"]["Environment"]["Variables"]["STAGE"] == "v1"
    assert fn["DependsOn"] == ["Api"]
    assert out["Outputs"]["ApiUrl"]["Value"]["Fn::Join"][1][1] == "v1"
    assert "Stage" in template["Resources"], "the input template is not modified"
