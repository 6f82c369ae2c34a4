"""Checks that do not come from us: cfn-lint and cdk-nag (DESIGN §8)."""

from __future__ import annotations

import json
from pathlib import Path

import aws_cdk as cdk
import pytest
from cfnlint.api import lint_all

from infra.config import ManifestError, load_service_config
from tests.infra.conftest import Synth


def _lint_errors(template_path: Path) -> list[str]:
    matches = lint_all(template_path.read_text())
    return [f"{m.rule.id} {m.message} ({'/'.join(map(str, m.path))})" for m in matches if m.rule.id.startswith("E")]


def test_cfn_lint_has_no_errors(synth: Synth) -> None:
    assert _lint_errors(synth.template_path) == []


def test_cfn_lint_has_no_errors_for_the_variant(variant_template_path: Path) -> None:
    assert _lint_errors(variant_template_path) == []


def test_cdk_nag_reports_no_unacknowledged_finding(synth: Synth) -> None:
    # The synth itself raises on one (policy validation); the report confirms it.
    report = synth.assembly_dir / "validation-report.json"
    if report.exists():
        for plugin in json.loads(report.read_text()).get("pluginReports", []):
            assert plugin.get("violations", []) == [], plugin


def test_every_acknowledgement_has_a_reason(synth: Synth) -> None:
    acknowledged = 0
    for construct in synth.app.node.find_all():
        for entry in construct.node.metadata:
            if entry.type != cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                continue
            # {"<plugin>::<rule id>[<finding>]": "<reason>", ...}
            for rule_id, reason in dict(entry.data).items():
                acknowledged += 1
                assert rule_id.startswith("AwsSolutions::AwsSolutions-"), rule_id
                assert len(reason) >= 40, (rule_id, reason)
    assert acknowledged > 0


def test_a_bad_manifest_is_refused_with_the_field_named(tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(
        "apiVersion: kubestep.io/v1\nkind: AWSManagementService\nmetadata: {name: x}\nspec: {region: us-east-1}\n"
    )
    with pytest.raises(ManifestError, match="dedicatedVPC or existingVPC"):
        load_service_config(manifest)
