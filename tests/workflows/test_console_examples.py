"""The console path: every ready input in stepfunctions/examples/ starts its workflow as is."""

from __future__ import annotations

import json

from kubestep import inventory

from .conftest import ROOT

EXAMPLES = ROOT / "stepfunctions" / "examples"
# Part of this module's wall time is modelled waiting (boots, health gates); its steps' deadlines
# count modelled waits, not the clock (kubestep.flow.context): at 0.01 it takes about 20% less.
RUNTIME_TIME_SCALE = 0.01


def run(runtime, workflow, payload, name):
    return runtime.run_execution(workflow, payload, name=name, check=False, timeout=300)


def test_create_cluster_examples_work_from_the_console_with_the_execution_name_as_operation(runtime, store):
    for path in sorted(EXAMPLES.glob("CreateCluster*.json")):
        payload = json.loads(path.read_text())
        name = payload["cluster"]["metadata"]["name"]
        execution = f"console-{path.stem.replace('.', '-').lower()}"
        result = run(runtime, "CreateCluster", payload, execution)
        assert result["status"] == "SUCCEEDED", (path.name, result.get("cause"))
        record = store.clusters.get(name)
        assert record.phase == "RUNNING"
        operation = store.operations.get(execution)
        assert (operation.kind, operation.status, operation.target) == ("CreateCluster", "SUCCEEDED", name)
        # No zones named: one replica in each of the service's zones.
        zones = sorted(m.zone for m in store.etcd.members(name))
        assert zones == ["us-east-1a", "us-east-1b", "us-east-1c"]
        delete = (
            {"clusterName": name} if name != "console" else json.loads((EXAMPLES / "DeleteCluster.json").read_text())
        )
        assert run(runtime, "DeleteCluster", delete, f"console-delete-{name}")["status"] == "SUCCEEDED"
        assert inventory.count(inventory.cluster_resources(record.uid, runtime.boto3_client)) == 0


def test_malformed_console_input_fails_in_the_first_state(runtime):
    result = run(runtime, "CreateCluster", {"cluster": {"metadata": {"name": "x"}}, "extra": 1}, "console-malformed")
    assert result["error"] == "InvalidSpec"
    assert "cluster.spec" in result["cause"] and "extra" in result["cause"]


LIFECYCLE_EXAMPLES = [
    ("CreateNodePool", "CreateNodePool.json"),
    ("UpdateNodePool", "UpdateNodePool.json"),
    ("UpdateNodePool", "UpdateNodePool.roll.json"),
    ("DeleteNodePool", "DeleteNodePool.json"),
    ("UpdateCluster", "UpdateCluster.json"),
]


def test_lifecycle_examples_work_from_the_console(runtime, store):
    """Each lifecycle example, in order, on the console's cluster; then the planner's."""
    create = json.loads((EXAMPLES / "CreateCluster.json").read_text())
    assert run(runtime, "CreateCluster", create, "console-lifecycle-create")["status"] == "SUCCEEDED"
    record = store.clusters.get("console")
    for workflow, example in LIFECYCLE_EXAMPLES:
        payload = json.loads((EXAMPLES / example).read_text())
        execution = f"console-{example.removesuffix('.json').replace('.', '-').lower()}"
        result = run(runtime, workflow, payload, execution)
        assert result["status"] == "SUCCEEDED", (example, result.get("cause"))
        operation = store.operations.get(execution)
        assert (operation.kind, operation.status, operation.target) == (workflow, "SUCCEEDED", "console")
    assert store.clusters.get("console").version == "1.36.5"
    assert {p.name: p.version for p in store.node_pools.list("console")} == {"general": "1.36.5", "batch": "1.36.5"}
    assert store.node_pools.get("console", "general").spec.spec.labels == {"tier": "web"}
    planner = run(runtime, "PlanUpgrades", json.loads((EXAMPLES / "PlanUpgrades.json").read_text()), "console-plan")
    assert planner["status"] == "SUCCEEDED", planner.get("cause")
    deleted = run(runtime, "DeleteCluster", {"clusterName": "console"}, "console-lifecycle-delete")
    assert deleted["status"] == "SUCCEEDED"
    assert inventory.count(inventory.cluster_resources(record.uid, runtime.boto3_client)) == 0
