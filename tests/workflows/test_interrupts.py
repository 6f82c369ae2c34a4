"""Interrupt anywhere (issue 11): for every step of CreateCluster that creates something, the Lambda
worker dies right after the step's first mutating AWS call took effect — before the step records
what it made — and the execution dies with it (no Catch runs; its lock stays held). The next
CreateCluster takes the lock over and finds what the dead run made.

The interruptions run as a chain on one cluster, in the order the steps run: run k dies in step k,
run k+1 takes over its lock, gets past step k (finding what run k made) and dies in step k+1; the
last run finishes with exactly the resources a clean create makes: nothing twice, nothing leaked."""

from __future__ import annotations

import pytest

from kubestep import inventory, naming
from kubestep.flow.asl import Parallel, Task
from kubestep.workflows import workflow
from kubestep_local.faults import MUTATING, Fault

from .fault_matrix import counts, small_cluster

# A third of this module's wall time is modelled waiting (boots, the held-back branch's throttle
# retries); its steps' deadlines count modelled waits, not the clock: at 0.01 it takes about 25% less.
RUNTIME_TIME_SCALE = 0.01
# What a clean create of fault_matrix.small_cluster makes (one replica, one node pool).
EXPECTED = {
    "autoScalingGroups": 2,
    "volumes": 1,
    "launchTemplates": 2,
    "securityGroups": 3,
    "loadBalancers": 1,
    "targetGroups": 1,
    "secrets": 2,
}
# In the order the steps run (the chain depends on it).
CREATING_STEPS = list(
    dict.fromkeys(
        t.spec.name for t in workflow("CreateCluster").tasks() if t.spec.creates and not t.name.startswith("Rollback")
    )
)


def _branch_steps() -> list[set[str]]:
    """The creating steps of each branch of the create's Parallel state (the control plane's
    chain and the node pools' run at once)."""

    def creating(states: list) -> set[str]:
        found: set[str] = set()
        for state in states:
            if isinstance(state, Task) and state.spec.creates:
                found.add(state.spec.name)
            for child in state.children():
                found |= creating(child)
        return found

    (parallel,) = [
        s for s in workflow("CreateCluster").states() if isinstance(s, Parallel) and not s.name.startswith("Rollback")
    ]
    return [creating(branch) for branch in parallel.branches]


def held_back_with(step: str) -> set[str]:
    """The creating steps of the other branches when `step` runs in one: they must make nothing
    before the run dies in `step`, or the chain's later runs would find their work done."""
    branches = _branch_steps()
    return set().union(*(b for b in branches if step not in b)) if any(step in b for b in branches) else set()


def test_every_creating_step_is_covered() -> None:
    assert {"EnsureSecurityGroups", "EnsureLoadBalancer", "EnsureEtcdVolume", "EnsureReplicaGroup"} <= set(
        CREATING_STEPS
    )


@pytest.fixture(scope="module")
def chain(runtime, store) -> dict:
    """The chain; the execution-status janitor is paused so each dead run's lock stays for its
    successor to take over."""
    cluster = "interrupted"
    request = small_cluster(cluster)
    # Named, so TagSubnets has a tag to write (a cluster on the service's subnets tags none).
    lb_subnet = sorted(z.private_subnet_id for z in store.network.get().zones.values())[0]
    request["cluster"]["spec"]["networking"]["serviceLoadBalancerSubnetIDs"] = [lb_subnet]
    runs: dict[str, dict] = {}
    runtime.events.stop()
    try:
        for index, step in enumerate(CREATING_STEPS):
            (fault,) = runtime.inject(Fault("crash", MUTATING, task=step, cluster=cluster, abort=True))
            # The other branch's creating calls are throttled (nothing takes effect; the state
            # retries) until this run dies, so each run is interrupted in its own step.
            others = held_back_with(step)
            held = runtime.inject(*(Fault("throttle", MUTATING, times=None, task=t, cluster=cluster) for t in others))
            arn = runtime.start_execution("CreateCluster", request, f"{cluster}-{index}")
            result = runtime.wait_execution(arn, 600, 0.2)
            firing = runtime.faults.firings(fault)
            for injected in (fault, *held):
                runtime.faults.remove(injected)
            held = store.locks.get(cluster)
            runs[step] = {
                "status": result["status"],
                "fired": [f.operation for f in firing],
                "held": held.operation_id if held else None,
                "name": f"{cluster}-{index}",
            }
        last = runtime.wait_execution(runtime.start_execution("CreateCluster", request, f"{cluster}-last"), 600, 0.2)
    finally:
        runtime.events.start()
    record = store.clusters.get(cluster)
    iam = runtime.boto3_client("iam")
    roles = [iam.get_role(RoleName=naming.instance_role(record.uid, r))["Role"] for r in ("control-plane", "node")]
    takeovers = [e for e in store.events.list(cluster) if e.reason == "LockTakenOver"]
    made = counts(runtime, record.uid)
    deleted = runtime.run_execution("DeleteCluster", {"clusterName": cluster}, name=f"{cluster}-delete", check=False)
    left = inventory.count(inventory.cluster_resources(record.uid, runtime.boto3_client))
    return {
        "runs": runs,
        "last": last,
        "made": made,
        "roles": roles,
        "takeovers": takeovers,
        "deleted": deleted["status"],
        "left": left,
    }


@pytest.mark.parametrize("step", CREATING_STEPS)
def test_the_worker_dies_after_the_first_mutating_call_of_each_creating_step(chain, step) -> None:
    run = chain["runs"][step]
    assert len(run["fired"]) == 1, f"the worker never died in {step}"
    assert not run["fired"][0].split(":", 1)[1].startswith(("Describe", "Get", "List"))
    assert run["status"] == "ABORTED"
    assert run["held"] == run["name"], "the dead run's lock stayed"


def test_each_rerun_took_the_lock_over_and_the_last_made_exactly_one_of_everything(chain) -> None:
    assert chain["last"]["status"] == "SUCCEEDED", chain["last"].get("cause")
    assert len(chain["takeovers"]) == len(CREATING_STEPS)
    assert chain["made"] == EXPECTED, "exactly what a clean create makes: nothing twice"
    assert len(chain["roles"]) == 2
    assert (chain["deleted"], chain["left"]) == ("SUCCEEDED", 0), "nothing leaked"
