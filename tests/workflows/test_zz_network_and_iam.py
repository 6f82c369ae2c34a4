"""Last in the runtime's group: network teardown, then the IAM check (DESIGN §8) over every AWS
action the handlers called in all the workflow tests of this session."""

from __future__ import annotations

import fnmatch
import json

from .conftest import ha_request


def run(runtime, workflow, payload, name):
    return runtime.run_execution(workflow, payload, name=name, check=False, timeout=300)


def test_deprovision_refuses_while_clusters_exist_then_deletes_the_vpc(runtime, store):
    assert run(runtime, "CreateCluster", ha_request("last"), "create-last")["status"] == "SUCCEEDED"
    refused = run(runtime, "DeprovisionNetwork", {}, "deprovision-network-refused")
    assert refused["status"] == "FAILED" and "clusters still use it" in refused["cause"]
    assert store.network.get().status == "READY"
    assert run(runtime, "DeleteCluster", {"clusterName": "last"}, "delete-last")["status"] == "SUCCEEDED"
    vpc_id = store.network.get().vpc_id
    done = run(runtime, "DeprovisionNetwork", {}, "deprovision-network")
    assert done["status"] == "SUCCEEDED", done.get("cause")
    assert store.network.get() is None
    ec2 = runtime.boto3_client("ec2")
    assert not ec2.describe_vpcs(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Vpcs"]
    svc = runtime.service_name
    tagged = [{"Name": "tag:gke:management-service", "Values": [svc]}]
    assert not ec2.describe_subnets(Filters=tagged)["Subnets"]
    assert not [a for a in ec2.describe_addresses(Filters=tagged)["Addresses"]]
    assert all(n["State"] == "deleted" for n in ec2.describe_nat_gateways()["NatGateways"])
    # Provisioning again works (a new execution name; the old one stays reserved on AWS).
    again = run(runtime, "ProvisionNetwork", {}, "provision-network-2")
    assert again["status"] == "SUCCEEDED", again.get("cause")


def _function_statements(template: dict) -> dict[str, list[dict]]:
    """Function name -> the Allow statements of its execution role."""
    resources = template["Resources"]
    by_role: dict[str, list[dict]] = {}
    for logical_id, resource in resources.items():
        # CDK moves what does not fit a role's inline policy size into an overflow managed policy.
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for role in resource["Properties"].get("Roles", []):
                by_role.setdefault(role["Ref"], []).extend(resource["Properties"]["PolicyDocument"]["Statement"])
        if resource["Type"] == "AWS::IAM::Role":
            for inline in resource["Properties"].get("Policies", []):
                by_role.setdefault(logical_id, []).extend(inline["PolicyDocument"]["Statement"])
    out = {}
    for resource in resources.values():
        if resource["Type"] == "AWS::Lambda::Function":
            props = resource["Properties"]
            role = props["Role"]["Fn::GetAtt"][0]
            out[props["FunctionName"]] = [s for s in by_role.get(role, []) if s["Effect"] == "Allow"]
    return out


# API operations that are not IAM actions themselves: IAM authorizes the actions inside them
# (kubestep's transactions only Put).
IMPLIED_ACTIONS = {"dynamodb:TransactWriteItems": "dynamodb:PutItem"}


def _granted(action: str, statements: list[dict]) -> bool:
    action = IMPLIED_ACTIONS.get(action, action)
    for statement in statements:
        actions = statement.get("Action", [])
        for pattern in actions if isinstance(actions, list) else [actions]:
            if fnmatch.fnmatch(action.lower(), pattern.lower()):
                return True
    return False


def test_every_action_the_handlers_called_is_granted_by_the_synthesized_policies(runtime):
    template = json.loads(runtime.synthesize().read_text())
    statements = _function_statements(template)
    called: dict[str, set[str]] = {}
    for record in runtime.recorder.call_records():
        called.setdefault(record.function_name, set()).add(record.action)
    # The workflows of this session exercised all the task functions.
    for suffix in ("network-tasks", "cluster-tasks", "execution-events"):
        assert any(name.endswith(suffix) for name in called), f"no calls recorded for {suffix}"
    assert sum(len(v) for v in called.values()) > 40
    missing = {
        function: sorted(a for a in actions if not _granted(a, statements[function]))
        for function, actions in called.items()
    }
    missing = {f: a for f, a in missing.items() if a}
    assert not missing, f"actions called but not granted: {missing}"
