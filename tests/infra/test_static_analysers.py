"""Static analysers on the synthesized template, each finding either absent or acknowledged with a
reason in infra/static_analysis.py:

- parliament (Duo Labs' IAM linter) on every role's policies, the instance-role boundary and a
  cluster's own control-plane and node policies (kubestep/iam_policies.py);
- cloudsplaining (Salesforce) on the same documents: privilege escalation, resource exposure and
  credentials exposure are its HIGH risks;
- checkov's CloudFormation checks on the template file, run from its own virtualenv
  (scripts/setup.sh: checkov pins boto3 and urllib3 to versions the project cannot use).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.static_analysis import ACKNOWLEDGED, acknowledgement
from kubestep import iam_policies
from tests.iam.template import Environment, Resolver, managed_policy_statements, role_policies

ROOT = Path(__file__).resolve().parents[2]
CHECKOV = Path(os.environ.get("KUBESTEP_CHECKOV", ROOT / ".build" / "checkov" / "bin" / "checkov"))
ACCOUNT, REGION = "123456789012", "us-east-1"
Finding = tuple[str, str, str]  # (finding, where, detail)


@pytest.fixture(scope="module")
def documents(synthesized_template: dict[str, Any]) -> dict[str, dict]:
    """Name (a logical id, or InstancePolicy:<role>) -> policy document, intrinsics resolved."""
    resolver = Resolver(synthesized_template, Environment(ACCOUNT, REGION))
    docs = {
        logical_id: {"Version": "2012-10-17", "Statement": policies.statements}
        for logical_id, policies in role_policies(synthesized_template, resolver).items()
    }
    docs["InstanceRoleBoundaryPolicy"] = {
        "Version": "2012-10-17",
        "Statement": managed_policy_statements(synthesized_template, resolver, "-instance-boundary"),
    }
    facts = iam_policies.ClusterFacts(
        account=iam_policies.Account("aws", REGION, ACCOUNT),
        service="demo",
        uid="aaaa1111",
        table_arn=f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/demo-kubestep",
        service_kms_key_arn=f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        control_plane_secret_arn=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:gke-aaaa1111-controlplane-Ab12Cd",
        node_secret_arn=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:gke-aaaa1111-node-Ef34Gh",
        hosted_zone_id="Z0SERVICEZONE",
        dns_domain="demo.kubestep.internal",
        volume_kms_key_arns=(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",),
        node_termination_queue_arn=f"arn:aws:sqs:{REGION}:{ACCOUNT}:gke-aaaa1111-node-termination",
    )
    docs["InstancePolicy:controlplane"] = iam_policies.control_plane_policy(facts)
    docs["InstancePolicy:node"] = iam_policies.node_policy(facts)
    return docs


def _unacknowledged(tool: str, findings: list[Finding]) -> list[str]:
    return [
        f"{tool} {finding} on {where}: {detail}"
        for finding, where, detail in findings
        if acknowledgement(tool, finding, where) is None
    ]


def _parliament_actions(finding: Any) -> list[str]:
    detail = finding.detail
    if isinstance(detail, list):
        return sorted({d["action"] if isinstance(d, dict) else str(d) for d in detail})
    match = re.search(r"for action (\S+)", str(detail))
    return [match.group(1)] if match else [""]


@pytest.fixture(scope="module")
def parliament_findings(documents) -> list[Finding]:
    from parliament import analyze_policy_string, config

    findings, counts = [], {}
    for name, document in documents.items():
        for finding in analyze_policy_string(json.dumps(document)).findings:
            severity = config.get(finding.issue, {}).get("severity", "HIGH")
            counts[severity] = counts.get(severity, 0) + 1
            if severity in ("MEDIUM", "HIGH", "CRITICAL"):
                for action in _parliament_actions(finding):
                    findings.append((f"{finding.issue}:{action}", name, str(finding.detail)[:200]))
    print(f"parliament: {len(documents)} documents, findings by severity {counts}")
    return findings


def test_parliament_finds_nothing_unacknowledged_from_medium_up(parliament_findings):
    assert not _unacknowledged("parliament", parliament_findings)


@pytest.fixture(scope="module")
def cloudsplaining_findings(documents) -> list[Finding]:
    from cloudsplaining.scan.policy_document import PolicyDocument

    findings, counts = [], {}
    for name, document in documents.items():
        policy = PolicyDocument(document)
        risks = {
            # HIGH in cloudsplaining's report
            "PrivilegeEscalation": [str(p) for p in policy.allows_privilege_escalation],
            "ResourceExposure": policy.permissions_management_without_constraints,
            "CredentialsExposure": policy.credentials_exposure,
            # MEDIUM / LOW: counted
            "DataExfiltration": policy.allows_data_exfiltration_actions,
            "ServiceWildcard": policy.service_wildcard,
            "InfrastructureModification": policy.infrastructure_modification,
        }
        for risk, actions in risks.items():
            counts[risk] = counts.get(risk, 0) + len(actions)
            if actions and risk in ("PrivilegeEscalation", "ResourceExposure", "CredentialsExposure"):
                findings.append((risk, name, ", ".join(sorted(actions))[:300]))
    print(f"cloudsplaining: {len(documents)} documents, actions by risk {counts}")
    return findings


def test_cloudsplaining_finds_no_unacknowledged_high_risk(cloudsplaining_findings):
    assert not _unacknowledged("cloudsplaining", cloudsplaining_findings)


@pytest.fixture(scope="module")
def checkov_findings(synth) -> list[Finding]:
    assert CHECKOV.exists(), f"checkov is installed by scripts/setup.sh into {CHECKOV.parent.parent}"
    result = subprocess.run(
        [
            str(CHECKOV),
            "--file",
            str(synth.template_path),
            "--framework",
            "cloudformation",
            "--output",
            "json",
            "--quiet",
            "--compact",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]  # 1: some check failed
    report = json.loads(result.stdout)
    report = report[0] if isinstance(report, list) else report
    summary = report["summary"]
    print(f"checkov {summary['checkov_version']}: {summary['passed']} passed, {summary['failed']} failed")
    assert summary["parsing_errors"] == 0 and summary["passed"] > 50
    return [
        (check["check_id"], check["resource"].split(".", 1)[1], check["check_name"])
        for check in report["results"]["failed_checks"]
    ]


def test_checkov_finds_nothing_unacknowledged(checkov_findings):
    assert not _unacknowledged("checkov", checkov_findings)


def test_every_acknowledgement_is_still_needed(parliament_findings, cloudsplaining_findings, checkov_findings):
    """An acknowledgement no analyser's finding needs any more is removed."""
    found = {"parliament": parliament_findings, "cloudsplaining": cloudsplaining_findings, "checkov": checkov_findings}
    needed = {
        (ack.tool, ack.finding, ack.resource)
        for tool, findings in found.items()
        for finding, where, _detail in findings
        if (ack := acknowledgement(tool, finding, where)) is not None
    }
    stale = [a for a in ACKNOWLEDGED if (a.tool, a.finding, a.resource) not in needed]
    assert not stale, f"acknowledgements no finding needs: {stale}"
