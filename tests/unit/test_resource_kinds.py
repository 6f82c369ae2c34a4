"""Each kind of AWS resource is declared once (`kubestep.resources.kinds`): the delete chain and
its compensation, the orphan sweep, drift and the inventory are read from that list. A toy kind
(SSM parameters tagged for a cluster) in a module of its own, added to the list with one line,
shows up in all of them; the list's order keeps every kind's dependencies."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import boto3
import pytest
from rich.console import Console

from kubestep import inventory, naming
from kubestep.cli.demo import resources_table
from kubestep.flow import steps
from kubestep.flow.asl import Catch, Map, Parallel, Task
from kubestep.models import AWSCluster
from kubestep.resources import kinds, orphans
from kubestep.resources.context import ClusterContext
from kubestep.store import ClusterRecord
from kubestep.workflows import fragments
from kubestep.workflows.delete_cluster import WORKFLOW as DELETE_CLUSTER

from .conftest import configure, load_service
from .fleet import EXAMPLES, REGION

TOY = '''
"""A toy kind: one SSM parameter per cluster, tagged like everything kubestep makes."""

from kubestep import naming
from kubestep.aws import client
from kubestep.aws.errors import Kind
from kubestep.flow.steps import step
from kubestep.resources.kind import MISSING, DeleteStep, ResourceKind, exists

PREFIX = "/kubestep-toy/"


def find_widgets(scope, uid):
    ssm = scope.clients("ssm")
    wanted = [{"Key": "Name", "Option": "BeginsWith", "Values": [PREFIX + (uid or "")]}]
    for page in ssm.get_paginator("describe_parameters").paginate(ParameterFilters=wanted):
        for parameter in page["Parameters"]:
            listed = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=parameter["Name"])
            tags = naming.tags_dict(listed["TagList"])
            found = scope.found(uid, parameter["Name"], tags, parameter.get("LastModifiedDate"))
            if found:
                yield found


@step
def delete_toy_widgets(ctx, scope: str) -> dict:
    ssm = client("ssm", ctx.settings.region)
    name = PREFIX + ctx.uid
    if exists(lambda: ssm.get_parameter(Name=name), Kind.PARAMETER):
        ssm.delete_parameter(Name=name)
    return {"deleted": name}


def widget_drift(ctx, found):
    ssm = client("ssm", ctx.settings.region)
    return {} if exists(lambda: ssm.get_parameter(Name=PREFIX + ctx.uid), Kind.PARAMETER) else {"toy-widget": MISSING}


KIND = ResourceKind(
    "toyWidgets", label="ToyWidget", find=find_widgets, delete=(DeleteStep(delete_toy_widgets),), drift=widget_drift
)
'''


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The toy kind's module, imported from a temporary directory; its step registered in a copy
    of the step registry, so no other test sees it."""
    monkeypatch.setattr(steps, "STEPS", dict(steps.STEPS))
    path = tmp_path / "toy_widgets.py"
    path.write_text(textwrap.dedent(TOY))
    spec = importlib.util.spec_from_file_location("toy_widgets", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "toy_widgets", module)
    spec.loader.exec_module(module)
    return module


def _add(monkeypatch: pytest.MonkeyPatch, toy: ModuleType) -> None:
    """Adding a kind: one line in the list (here before the secrets, which outlive it)."""
    at = [kind.name for kind in kinds.KINDS].index("secrets")
    monkeypatch.setattr(kinds, "KINDS", [*kinds.KINDS[:at], toy.KIND, *kinds.KINDS[at:]])


def _task_names(scope: str) -> list[str]:
    states = fragments.delete_cluster_states(prefix="", scope=scope, catch=Catch("Failed"), keep_etcd_volumes=False)
    names: list[str] = []
    for state in states:
        if isinstance(state, Parallel):
            names += [s.name for branch in state.branches for s in branch if isinstance(s, Task)]
        elif isinstance(state, Task):
            names.append(state.name)
    return names


def _main_path(workflow) -> list[str]:
    """The states a successful run enters, in order (from StartAt along Next; a Parallel's
    branches in place, in order)."""
    definition = json.loads(workflow.to_json())
    path, name = [], definition["StartAt"]
    while name:
        path.append(name)
        for branch in definition["States"][name].get("Branches", []):
            path += list(branch["States"])
        name = definition["States"][name].get("Next")
    return path


def test_the_delete_chain_is_the_kinds_list_in_order() -> None:
    """DeleteCluster's states are the list's delete steps, one each, in the list's order, but
    for those deleted together (`kinds.DELETED_TOGETHER`), which start the chain side by side."""
    listed = kinds.delete_steps()
    together = [s.name or steps.spec_of(s.fn).name for s in listed if s.fn in kinds.DELETED_TOGETHER]
    after = [s.name or steps.spec_of(s.fn).name for s in listed if s.fn not in kinds.DELETED_TOGETHER]
    chain = together + after
    assert together == ["DeleteNodePoolGroups", "DeleteControlPlaneGroups", "DeleteLoadBalancer"]
    assert chain == _task_names("cluster")
    assert [n for n in _main_path(DELETE_CLUSTER) if n in chain] == chain, "the state machine follows the list"
    assert after[0] == "TerminateInstances"
    assert chain[-3:] == ["DeleteDnsRecords", "DeleteClusterSecrets", "CancelSchedules"]
    operation = _task_names("operation")
    assert "DeleteKubernetesResources" not in operation and "CancelSchedules" not in operation
    assert [n for n in chain if n in operation] == operation


def test_what_is_deleted_together_is_needed_by_nothing_deleted_before_it_in_the_list() -> None:
    """Moving a step up to the start of the chain is safe only if no kind listed before it
    needs its kind (the NLB goes before the instances and volumes: neither needs it)."""
    names = [kind.name for kind in kinds.KINDS]
    for kind in kinds.KINDS:
        if not any(d.fn in kinds.DELETED_TOGETHER for d in kind.delete):
            continue
        for earlier in kinds.KINDS[: names.index(kind.name)]:
            assert kind.name not in earlier.needs or any(d.fn in kinds.DELETED_TOGETHER for d in earlier.delete), (
                f"{earlier.name} needs {kind.name}, deleted together before it"
            )


def test_each_kind_comes_before_what_it_needs() -> None:
    """Deleting in list order never deletes what a kind still needs (a group's launch template,
    an instance's profile): every kind it needs comes later."""
    names = [kind.name for kind in kinds.KINDS]
    assert len(set(names)) == len(names)
    for position, kind in enumerate(kinds.KINDS):
        for needed in kind.needs:
            assert needed in names, f"{kind.name} needs {needed}, which is not a kind"
            assert names.index(needed) > position, f"{kind.name} is deleted after {needed}, which it needs"


def test_every_kind_kubestep_makes_is_listed() -> None:
    listed = {kind.name for kind in kinds.KINDS if kind.find is not None}
    assert listed >= {
        "autoScalingGroups",
        "instances",
        "volumes",
        "listeners",
        "loadBalancers",
        "targetGroups",
        "launchTemplates",
        "instanceProfiles",
        "instanceRoles",
        "eventRules",
        "terminationQueues",
        "securityGroups",
        "dnsRecords",
        "secrets",
        "schedules",
    }
    assert all(kind.drift is not None for kind in kinds.KINDS if kind.find is not None)


def test_a_toy_kind_added_with_one_line_is_in_the_delete_chain(toy, monkeypatch) -> None:
    assert "DeleteToyWidgets" not in _task_names("cluster")
    _add(monkeypatch, toy)
    for scope in ("cluster", "operation"):
        names = _task_names(scope)
        assert names[names.index("DeleteToyWidgets") + 1] == "DeleteClusterSecrets", names
        assert names[names.index("DeleteToyWidgets") - 1] == "DeleteDnsRecords", names
    assert (toy.delete_toy_widgets, {"scope": "cluster"}) in kinds.delete_calls(keep_etcd_volumes=False)


def _widget(uid: str, service: str) -> str:
    name = f"/kubestep-toy/{uid}"
    tags = naming.cluster_tags(service, "toy", uid)
    boto3.client("ssm", REGION).put_parameter(Name=name, Value="w", Type="String", Tags=naming.ec2_tags(tags))
    return name


@pytest.fixture
def settings(aws, monkeypatch):
    return configure(monkeypatch, load_service(EXAMPLES / "management-service.yaml"))


def test_a_toy_kind_is_in_the_inventory_and_the_sweep(toy, monkeypatch, settings, store) -> None:
    lost, live = "toylost1", "toylive1"
    _add(monkeypatch, toy)
    lost_widget, live_widget = _widget(lost, settings.service_name), _widget(live, settings.service_name)
    store.clusters.create(ClusterRecord(name="alive", uid=live, spec=_spec("alive"), version="1.35.4"), [])

    def clients(service: str):
        return boto3.client(service, REGION)

    assert [r["id"] for r in inventory.cluster_resources(lost, clients)["toyWidgets"]] == [lost_widget]
    console = Console(width=200, record=True)
    console.print(resources_table(inventory.cluster_resources(lost, clients)))
    assert f"ToyWidget  {lost_widget}" in console.export_text(), "the demo's table shows every kind"
    assert [r["id"] for r in inventory.cluster_resources(live, clients)["toyWidgets"]] == [live_widget]
    found = {o.uid: o for o in orphans.find(settings, store, datetime.now(UTC))}
    assert set(found) == {lost}, "the live cluster's widget is no orphan"
    assert found[lost].resources == {"toyWidgets": [lost_widget]}
    # The sweep deletes an orphan's resources with the chain's own calls.
    orphan = orphans.OrphanContext(settings, store, "toy", lost, "sweep-toy")
    for fn, kwargs in kinds.delete_calls(keep_etcd_volumes=False):
        if fn is toy.delete_toy_widgets:
            fn(orphan, **kwargs)
    assert orphans.find(settings, store) == []
    assert [r["id"] for r in inventory.cluster_resources(live, clients)["toyWidgets"]] == [live_widget]


def _spec(name: str) -> AWSCluster:
    spec = {"metadata": {"name": name}, "spec": {"controlPlane": {"version": "1.35.4"}}}
    return AWSCluster.model_validate(spec, context={"stored": True})


def test_a_toy_kind_is_in_drift(toy, monkeypatch, settings, store) -> None:
    """Drift asks every kind, the toy too: its widget missing is reported, there it is not."""
    uid = "toydrift"
    _add(monkeypatch, toy)
    vpc = boto3.client("ec2", REGION).create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    store.network.update(status="READY", vpc_id=vpc, cidr="10.9.0.0/16")
    store.clusters.create(ClusterRecord(name="drifty", uid=uid, spec=_spec("drifty"), version="1.35.4"), [])
    ctx = ClusterContext(settings, store, "drifty", "detect-toy")
    assert kinds.detect(ctx)["toy-widget"] == "missing"
    _widget(uid, settings.service_name)
    drift = kinds.detect(ctx)
    assert "toy-widget" not in drift
    assert drift["sg-lb"] == "missing", "every other kind is asked as well (nothing else was made)"


def _names(states: list) -> list[str]:
    """Task names in order, a Map's steps in place."""
    out: list[str] = []
    for state in states:
        if isinstance(state, Map):
            out += _names(state.steps)
        elif isinstance(state, Task):
            out.append(state.name)
    return out


def test_the_create_chain_makes_each_kind_after_what_it_needs() -> None:
    """The create order (one fragment, which CreateCluster and RepairCluster both run) makes
    every kind kubestep makes, none before a kind it needs is begun."""
    chain = _names(
        fragments.ensure_cluster_states(replicas_map="Replicas") + fragments.ensure_node_pools_states(pools_map="Pools")
    )
    made = {kind.name: [chain.index(step) for step in kind.ensure] for kind in kinds.KINDS}
    # Instances are launched by their groups, DNS records written by the replicas at boot,
    # schedules made by `upgrade --at`: no create step makes them.
    made_elsewhere = {"instances", "dnsRecords", "schedules"}
    assert {k.name for k in kinds.KINDS if k.find is not None and not made[k.name]} == made_elsewhere
    for kind in kinds.KINDS:
        for needed in kind.needs:
            if made[kind.name] and made[needed]:
                assert min(made[kind.name]) >= min(made[needed]), f"{kind.name} is made before {needed}"
