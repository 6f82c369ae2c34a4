"""Synthesize the management-service app once per test session (synth takes seconds)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# jsii prints a banner about the machine's Node.js version on every start; the value of the
# end-of-life variable is the major version it silences.
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")

import aws_cdk as cdk  # noqa: E402  (after the jsii environment above)
from aws_cdk.assertions import Template  # noqa: E402

from infra.app import build_app, synthesize, template_path  # noqa: E402
from infra.config import DEFAULT_MANIFEST  # noqa: E402
from infra.lambda_asset import build_lambda_asset  # noqa: E402
from infra.state_machines import STEPFUNCTIONS_DIR, discover_workflows  # noqa: E402

CONTRACT_WORKFLOWS = ("ProvisionNetwork", "DeprovisionNetwork", "CreateCluster", "DeleteCluster")

THROWAWAY_ASL = {
    "Comment": "test stand-in, used only while stepfunctions/ has no ASL files",
    "TimeoutSeconds": 3600,
    "StartAt": "Network",
    "States": {
        "Network": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${NetworkTasksFunctionArn}", "Payload": {"task": "Noop"}},
            "Next": "Cluster",
        },
        "Cluster": {"Type": "Task", "Resource": "${ClusterTasksFunctionArn}", "End": True},
    },
}

VARIANT_MANIFEST = """\
apiVersion: kubestep.io/v1
kind: AWSManagementService
metadata:
  name: prod
spec:
  region: eu-west-1
  existingVPC:
    vpcID: vpc-0123456789abcdef0
    subnetIDs: [subnet-0123456789abcdef0]
  kmsKeyARN: arn:aws:kms:eu-west-1:123456789012:alias/platform
  tags:
    cost-center: "42"
  iam:
    permissionsBoundary: arn:aws:iam::123456789012:policy/platform-boundary
"""


@dataclass(frozen=True)
class Synth:
    app: cdk.App
    assembly_dir: Path
    template_path: Path
    workflows: tuple[str, ...]

    @property
    def template(self) -> dict[str, Any]:
        return json.loads(self.template_path.read_text())


@pytest.fixture(scope="session")
def stepfunctions_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's ASL files, or throwaway stand-ins named per the contracts while there are none."""
    if discover_workflows(STEPFUNCTIONS_DIR):
        return STEPFUNCTIONS_DIR
    directory = tmp_path_factory.mktemp("stepfunctions")
    for workflow in CONTRACT_WORKFLOWS:
        (directory / f"{workflow}.asl.json").write_text(json.dumps(THROWAWAY_ASL, indent=2))
    return directory


@pytest.fixture(scope="session")
def lambda_asset_dir() -> Path:
    return build_lambda_asset()


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory, stepfunctions_dir: Path, lambda_asset_dir: Path) -> Synth:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = build_app(outdir=str(outdir), manifest_path=str(DEFAULT_MANIFEST), stepfunctions_dir=stepfunctions_dir)
    assembly = app.synth()  # raises on unacknowledged cdk-nag findings
    return Synth(app, outdir, template_path(assembly), tuple(discover_workflows(stepfunctions_dir)))


@pytest.fixture(scope="session")
def cloud_assembly_dir(synth: Synth) -> Path:
    return synth.assembly_dir


@pytest.fixture(scope="session")
def synthesized_template(synth: Synth) -> dict[str, Any]:
    return synth.template


@pytest.fixture(scope="session")
def template(synthesized_template: dict[str, Any]) -> Template:
    return Template.from_json(synthesized_template)


@pytest.fixture(scope="session")
def workflows(synth: Synth) -> tuple[str, ...]:
    return synth.workflows


@pytest.fixture(scope="session")
def variant_template_path(
    tmp_path_factory: pytest.TempPathFactory, stepfunctions_dir: Path, lambda_asset_dir: Path
) -> Path:
    """Another service: existing VPC, KMS key by alias, permissions boundary, API access logging on."""
    directory = tmp_path_factory.mktemp("variant")
    manifest = directory / "management-service.yaml"
    manifest.write_text(VARIANT_MANIFEST)
    return synthesize(
        str(directory / "cdk.out"),
        str(manifest),
        stepfunctions_dir=stepfunctions_dir,
        context={"kubestep:apiAccessLogging": "true"},
    )


@pytest.fixture(scope="session")
def variant_template(variant_template_path: Path) -> dict[str, Any]:
    return json.loads(variant_template_path.read_text())
