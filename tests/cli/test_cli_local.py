"""The CLI end to end against `kubestep local up --detach` (a separate runtime process):
apply, get, describe, delete, events; boto3 at the printed endpoint sees the cluster's AWS
resources while it exists and none after delete; the clusters survive `local down` / `local up`
(issue 7, defect 7), a second runtime or a taken port fail at once, and `local env` gives a
fresh shell what the AWS CLI and boto3 need (defect 9)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
import yaml
from click.testing import CliRunner

from kubestep import inventory, naming
from kubestep.cli.main import main

from ..deployed_stack import saved_state, seed_home

ROOT = Path(__file__).resolve().parents[2]
SHARED_HOME = Path(os.environ.get("KUBESTEP_TEST_HOME", ROOT / ".build" / "test-home"))
# Its own $KUBESTEP_HOME (state file, logs) per session; the synthesized assembly is reused.
HOME = SHARED_HOME / f"cli-{os.getpid()}"


def kubestep(*args: str, home: Path = HOME, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process (as a user runs it), stdin not a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "kubestep.cli.main", *args],
        env={**os.environ, "KUBESTEP_HOME": str(home), "KUBESTEP_API_URL": ""},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def _up(home: Path = HOME, *extra: str) -> subprocess.CompletedProcess[str]:
    return kubestep(
        "local", "up", "--detach", "--port", "0", "--api-port", "0", "--time-scale", "0.02", *extra, home=home
    )


def _endpoint(stdout: str) -> str:
    return re.search(r"AWS endpoint:\s+(\S+)", stdout).group(1)


@pytest.fixture(scope="module")
def local_runtime(tmp_path_factory: pytest.TempPathFactory):
    shutil.rmtree(HOME, ignore_errors=True)
    # The shared synth cache itself, not a copy: another worker may be writing to it (its lock
    # keeps readers off an assembly being written).
    (SHARED_HOME / "local" / "cdk.out").mkdir(parents=True, exist_ok=True)
    (HOME / "local").mkdir(parents=True)
    (HOME / "local" / "cdk.out").symlink_to(SHARED_HOME / "local" / "cdk.out", target_is_directory=True)
    # Not the home's first `local up` (tests/cli/test_first_hour.py runs that): it restores the
    # session's deployed stack, as after a `local down`, instead of deploying it again.
    seed_home(HOME, saved_state(tmp_path_factory))
    up = _up()
    assert up.returncode == 0, up.stderr + up.stdout
    runtime = {"endpoint": _endpoint(up.stdout), "stdout": up.stdout}
    try:
        yield runtime
    finally:
        down = kubestep("local", "down", timeout=120)
        assert down.returncode == 0, down.stderr
        shutil.rmtree(HOME, ignore_errors=True)


def cli(local_runtime, *args: str):
    runner = CliRunner()
    return runner.invoke(
        main,
        list(args),
        env={"KUBESTEP_HOME": str(HOME), "KUBESTEP_API_URL": "", "KUBESTEP_CONTEXT": ""},
        catch_exceptions=False,
        prog_name="kubestep",
    )


def clients(endpoint):
    def make(service):
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    return make


def test_local_up_prints_both_endpoints(local_runtime):
    assert "AWS endpoint:" in local_runtime["stdout"] and "API endpoint:" in local_runtime["stdout"]
    state = json.loads((HOME / "local.json").read_text())
    assert state["endpoint_url"] == local_runtime["endpoint"]
    status = kubestep("local", "status")
    assert status.returncode == 0 and f"pid {state['pid']}" in status.stdout


def test_a_second_local_up_names_the_running_runtime(local_runtime):
    state = json.loads((HOME / "local.json").read_text())
    started = time.monotonic()
    second = kubestep("local", "up", "--detach", "--port", "0", "--api-port", "0")
    assert second.returncode == 1
    assert second.stdout == ""
    (line,) = second.stderr.strip().splitlines()
    assert line.startswith("error: a local runtime is already running (")
    for part in (f"pid {state['pid']}", state["endpoint_url"], state["api_url"], f"home {HOME}"):
        assert part in line
    assert time.monotonic() - started < 20


def test_local_up_on_a_taken_port_fails_fast(local_runtime, tmp_path):
    port = local_runtime["endpoint"].rsplit(":", 1)[1]
    started = time.monotonic()
    taken = kubestep("local", "up", "--detach", "--port", port, "--api-port", "0", home=tmp_path)
    assert taken.returncode == 1
    assert taken.stderr.strip() == (
        f"error: port {port} (the AWS endpoint) is in use; pick another with --port (0 picks a free one)"
    )
    assert time.monotonic() - started < 20  # it used to hang for more than 300 s
    assert not (tmp_path / "local.json").exists()


def test_local_env_is_all_a_fresh_shell_needs(local_runtime, tmp_path):
    """The README's `eval "$(kubestep local env)"` then the AWS CLI / boto3, on a machine with no
    AWS configuration at all (no ~/.aws, no AWS_* variables)."""
    result = kubestep("local", "env")
    assert result.returncode == 0, result.stderr
    exports = dict(re.findall(r"^export (\w+)=(\S+)$", result.stdout, flags=re.MULTILINE))
    state = json.loads((HOME / "local.json").read_text())
    assert exports == {
        "AWS_ENDPOINT_URL": state["endpoint_url"],
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "KUBESTEP_CONTEXT": "local",
    }
    probe = "import boto3; print(len(boto3.client('elbv2').describe_load_balancers()['LoadBalancers']))"
    script = 'eval "$1"; exec "$2" -c "$3"'
    bare = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    answer = subprocess.run(
        ["bash", "-c", script, "bash", result.stdout, sys.executable, probe], env=bare, capture_output=True, text=True
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip().isdigit()
    # kubestep itself uses the context `local`: the runtime of this $KUBESTEP_HOME, where it is now.
    listed = subprocess.run(
        [
            "bash",
            "-c",
            'eval "$1"; exec "$2" -m kubestep.cli.main get clusters -o json',
            "bash",
            result.stdout,
            sys.executable,
        ],
        env={**bare, "KUBESTEP_HOME": str(HOME)},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert listed.returncode == 0, listed.stderr
    assert isinstance(json.loads(listed.stdout), list)
    assert kubestep("local", "env", "--unset").stdout.startswith("unset AWS_ENDPOINT_URL ")


def test_local_down_warns_before_losing_clusters_of_a_runtime_that_keeps_no_state(local_runtime, tmp_path):
    """`kubestep demo --keep` runs a runtime that does not save its state: stopping it loses the
    clusters, so `local down` says so first and wants --force when nobody can answer."""
    result = cli(local_runtime, "apply", "-f", str(ROOT / "examples" / "cluster-ha.yaml"), "--wait")
    assert result.exit_code == 0, result.output
    state = json.loads((HOME / "local.json").read_text())
    holder = subprocess.Popen(["sleep", "120"])  # stands in for the demo's process
    try:
        (tmp_path / "local.json").write_text(json.dumps({**state, "pid": holder.pid, "persistent": False}))
        refused = kubestep("local", "down", home=tmp_path)
        assert refused.returncode == 1
        (line,) = refused.stderr.strip().splitlines()
        assert line.startswith("error: the local runtime holds clusters prod; this runtime does not keep its state")
        assert line.endswith("pass --force to stop it anyway")
        assert holder.poll() is None
        forced = kubestep("local", "down", "--force", home=tmp_path)
        assert forced.returncode == 0, forced.stderr
        assert forced.stdout.strip() == "stopped; clusters lost: prod"
        assert holder.wait(timeout=10) == -signal.SIGTERM
    finally:
        if holder.poll() is None:
            holder.kill()


def test_apply_get_describe_survive_a_restart_then_delete(local_runtime):
    # prod may exist already (the test above): apply is then "unchanged".
    result = cli(local_runtime, "apply", "-f", str(ROOT / "examples" / "cluster-ha.yaml"), "--wait")
    assert result.exit_code == 0, result.output
    if "awscluster/prod unchanged" not in result.stdout:
        # Live progress, step by step, with the time since the execution started (and the time scale).
        assert "local runtime at time scale 0.02" in result.stderr
        assert re.search(r"^  \[\s*[\d.]+s\] done  EnsureLoadBalancer \([\d.]+s\)$", result.stderr, re.M)
        assert re.search(r"^  \[\s*[\d.]+s\] done  MarkRunning", result.stderr, re.M)
        # What apply prints (README): the operation it started, then how that operation ended.
        started = re.search(r"^awscluster/prod creating \(operation (create-\S+)\)$", result.stdout, re.M)
        assert started, result.stdout
        assert f"awscluster/prod: operation {started.group(1)} SUCCEEDED" in result.stdout
    result = cli(local_runtime, "get", "clusters", "-o", "json")
    assert result.exit_code == 0, result.output
    clusters = json.loads(result.output)
    (prod,) = [c for c in clusters if c["metadata"]["name"] == "prod"]
    assert prod["status"]["phase"] == "RUNNING"
    assert prod["status"]["endpoint"]
    uid = prod["status"]["uid"]

    result = cli(local_runtime, "describe", "cluster", "prod")
    assert result.exit_code == 0, result.output
    assert "Control plane replicas" in result.output and "us-east-1c" in result.output
    assert "ClusterRunning" in result.output

    result = cli(local_runtime, "get", "nodepools", "-c", "prod", "-o", "yaml")
    assert result.exit_code == 0 and "general" in result.output and "batch" in result.output
    result = cli(local_runtime, "get", "clusters")
    assert re.search(r"^prod\s+RUNNING\s+1\.35\.4\s+3/3\s+2\s+\d+[smh]$", result.stdout, re.M), result.stdout

    found = inventory.cluster_resources(uid, clients(local_runtime["endpoint"]))
    assert len(found["loadBalancers"]) == 1
    assert len(found["autoScalingGroups"]) == 5
    assert len([v for v in found["volumes"] if v["role"] == "etcd"]) == 3

    # Applying again changes nothing.
    result = cli(local_runtime, "apply", "-f", str(ROOT / "examples" / "cluster-ha.yaml"))
    assert result.exit_code == 0 and "unchanged" in result.output

    # A second create still running when the runtime stops cannot survive the restart: it ends
    # ABORTED, and the management service's own handler releases its lock, as on AWS. Its
    # instances' boots hang (the runtime forgets that when it stops), so it is still running then.
    hang = kubestep("local", "fault", "boot-hangs", "second")
    assert hang.returncode == 0 and "cluster second: instances hang in boot" in hang.stdout, hang.stderr
    docs = list(yaml.safe_load_all((ROOT / "examples" / "cluster-ha.yaml").read_text()))
    docs[0]["metadata"]["name"] = "second"
    for pool in docs[1:]:
        pool["spec"]["clusterName"] = "second"
    second = HOME / "second.yaml"
    second.write_text(yaml.safe_dump_all(docs))
    result = cli(local_runtime, "apply", "-f", str(second))
    assert result.exit_code == 0, result.output
    deadline = time.monotonic() + 30  # until the workflow has written its record
    while time.monotonic() < deadline:
        listed = json.loads(cli(local_runtime, "get", "clusters", "-o", "json").output)
        if [c for c in listed if c["metadata"]["name"] == "second"]:
            break
        time.sleep(0.2)

    down = kubestep("local", "down", timeout=120)
    assert down.returncode == 0, down.stderr
    assert "its state is saved (clusters: prod, second)" in down.stdout
    up = _up()
    assert up.returncode == 0, up.stderr
    assert re.search(r"Restored:\s+the emulator's state saved at \S+ \(clusters: prod, second\)", up.stdout)
    assert re.search(r"ended ABORTED: create-\w+-1", up.stdout)
    local_runtime["endpoint"] = _endpoint(up.stdout)

    result = cli(local_runtime, "get", "clusters", "-o", "json")
    phases = {c["metadata"]["name"]: c["status"]["phase"] for c in json.loads(result.output)}
    assert phases["prod"] == "RUNNING"
    deadline = time.monotonic() + 60
    while phases["second"] != "ERROR" and time.monotonic() < deadline:
        time.sleep(0.5)
        phases = {
            c["metadata"]["name"]: c["status"]["phase"]
            for c in json.loads(cli(local_runtime, "get", "clusters", "-o", "json").output)
        }
    assert phases["second"] == "ERROR"
    result = cli(local_runtime, "events", "second", "-o", "json")
    assert "ExecutionAborted" in [e["reason"] for e in json.loads(result.output)]
    found = inventory.cluster_resources(uid, clients(local_runtime["endpoint"]))
    assert len(found["autoScalingGroups"]) == 5, "the AWS resources came back with the records"

    # The lock was released: the aborted cluster can be deleted at once.
    result = cli(local_runtime, "delete", "cluster", "second", "--wait")
    assert result.exit_code == 0, result.output
    result = cli(local_runtime, "delete", "cluster", "prod", "--wait")
    assert result.exit_code == 0, result.output
    assert inventory.count(inventory.cluster_resources(uid, clients(local_runtime["endpoint"]))) == 0
    result = cli(local_runtime, "events", "prod", "-o", "json")
    assert result.exit_code == 0
    assert [e["reason"] for e in json.loads(result.output)][-1] == "Deleted"


def test_cancel_mid_create_ends_aborted_and_releases_the_lock(local_runtime, tmp_path):
    manifest = tmp_path / "cancelled.yaml"
    manifest.write_text((ROOT / "examples" / "cluster-ha.yaml").read_text().replace("prod", "cancelled"))
    result = cli(local_runtime, "apply", "-f", str(manifest), "-o", "json")
    assert result.exit_code == 0, result.output
    operation_id = json.loads(result.stdout)[0]["operation"]["id"]
    # Mid-way: once the load balancer exists (the replicas come next).
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        steps = json.loads(cli(local_runtime, "describe", "operation", operation_id, "-o", "json").stdout)["steps"]
        if any(s["step"] == "EnsureLoadBalancer" and s["type"] == "done" for s in steps):
            break
        time.sleep(0.5)
    result = cli(local_runtime, "operations", "cancel", operation_id, "--wait", "--timeout", "2m")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"operation/{operation_id} ABORTED"
    assert json.loads(cli(local_runtime, "get", "operation", operation_id, "-o", "json").stdout)["status"] == "ABORTED"
    # What it created is gone with the cluster's record: the name is free at once.
    assert cli(local_runtime, "get", "cluster", "cancelled").exit_code == 1
    result = cli(local_runtime, "apply", "-f", str(manifest), "--wait")
    assert result.exit_code == 0, result.output
    result = cli(local_runtime, "delete", "cluster", "cancelled", "--wait")
    assert result.exit_code == 0, result.output
    # --wait shows live progress, step by step, with the time since the execution started.
    assert "local runtime at time scale 0.02" in result.stderr
    assert re.search(r"^  \[\s*[\d.]+s\] done  DeleteLoadBalancer \([\d.]+s\)$", result.stderr, re.M), result.stderr
    assert result.stdout.splitlines()[-1].startswith("awscluster/cancelled deleted: operation delete-")
    listed = cli(local_runtime, "get", "operations", "-c", "cancelled", "-o", "json")
    assert sorted(o["status"] for o in json.loads(listed.stdout)) == ["ABORTED", "SUCCEEDED", "SUCCEEDED"]


def test_errors_are_one_line_with_documented_exit_codes(local_runtime, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: kubestep.io/v1\nkind: AWSCluster\nmetadata: {name: Bad}\nspec: {controlPlane: {version: '1.2'}}\n"
    )
    result = cli(local_runtime, "apply", "-f", str(bad))
    assert result.exit_code == 2
    assert "metadata.name" in result.output and "controlPlane.version" in result.output
    result = cli(local_runtime, "describe", "cluster", "nope")
    assert result.exit_code == 1 and "nope" in result.output
    result = cli(local_runtime, "delete", "cluster", "nope")
    assert result.exit_code == 1


def _wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} never held")


def test_local_tick_takes_due_backups_and_local_fault_makes_auto_repair_replace_a_node(local_runtime):
    """A user's view of the local runtime's clocks and faults: `local tick --at` a day on takes the
    cluster's due etcd backup (`get backups` lists it); `local fault node-heartbeat` silences one
    node, which auto-repair then replaces (an AutoRepair operation); bad names are refused naming
    the field, and nothing changes."""
    docs = list(yaml.safe_load_all((ROOT / "examples" / "cluster-ha.yaml").read_text()))
    cluster, pool = docs[0], docs[1]
    cluster["metadata"]["name"] = pool["spec"]["clusterName"] = "watched"
    cluster["spec"]["controlPlane"]["availabilityZones"] = ["us-east-1a"]
    pool["spec"].update(minNodeCount=2, maxNodeCount=2, version="1.35.4")
    pool["spec"]["management"] = {"autoRepair": {"enabled": True, "unhealthyAfter": "3m", "maxUnhealthy": 1}}
    manifest = HOME / "watched.yaml"
    manifest.write_text(yaml.safe_dump_all([cluster, pool]))
    result = cli(local_runtime, "apply", "-f", str(manifest), "--wait")
    assert result.exit_code == 0, result.output

    # local tick: the first backup exists (taken at once); a day on, the next is due and taken.
    def backups() -> list[dict]:
        return json.loads(cli(local_runtime, "get", "backups", "watched", "-o", "json").stdout)

    first = _wait_for(backups, 120, "a backup")
    tomorrow = (datetime.now(UTC) + timedelta(days=1, minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ticked = kubestep("local", "tick", "--at", tomorrow, "-o", "json")
    assert ticked.returncode == 0, ticked.stderr
    [taken] = [b for b in json.loads(ticked.stdout)["backups"] if b["cluster"] == "watched"]
    assert taken["outcome"] == "taken" and taken["backupId"] not in [b["backupId"] for b in first], taken
    listed = backups()
    assert listed[0]["backupId"] == taken["backupId"] and len(listed) == len(first) + 1

    # Bad names are refused before anything is asked, naming the field.
    bad = kubestep("local", "fault", "node-heartbeat", "Watched", "i-0123456789abcdef0")
    assert bad.returncode == 2 and "is not a cluster name" in bad.stderr, bad.stderr
    bad = kubestep("local", "fault", "node-heartbeat", "watched", "node-1")
    assert bad.returncode == 2 and "NODE:" in bad.stderr and "instance id" in bad.stderr, bad.stderr
    unknown = kubestep("local", "fault", "node-heartbeat", "watched", "i-00000000000000000")
    assert unknown.returncode == 2 and "NODE: cluster watched has no running node" in unknown.stderr, unknown.stderr
    missing = kubestep("local", "fault", "replica-fails", "watched", "4")
    assert missing.returncode == 2 and "INDEX: cluster watched has no running replica 4" in missing.stderr
    assert "its running replicas: 0" in missing.stderr, missing.stderr

    # One node's heartbeat stops: auto-repair replaces it (AutoRepair, SetInstanceHealth, the drain).
    autoscaling = clients(local_runtime["endpoint"])("autoscaling")
    uid = json.loads(cli(local_runtime, "get", "cluster", "watched", "-o", "json").stdout)["status"]["uid"]
    group_name = naming.node_pool(uid, "general")
    [group] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])["AutoScalingGroups"]
    node = sorted(i["InstanceId"] for i in group["Instances"])[0]
    silenced = kubestep("local", "fault", "node-heartbeat", "watched", node)
    assert silenced.returncode == 0 and f"node {node} of cluster watched: heartbeat stopped" in silenced.stdout

    def repaired():
        ops = json.loads(cli(local_runtime, "get", "operations", "-c", "watched", "-o", "json").stdout)
        return [o for o in ops if o["kind"] == "AutoRepair" and o["status"] == "SUCCEEDED"]

    _wait_for(repaired, 300, "an AutoRepair operation that succeeded")
    current = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[group_name])
    assert node not in [i["InstanceId"] for i in current["AutoScalingGroups"][0]["Instances"]]
    # A healthy replica fails (its API server stops answering); the control plane's auto-repair
    # is off by default, so it stays until cleared.
    failing = kubestep("local", "fault", "replica-fails", "watched", "0")
    assert failing.returncode == 0 and "replica 0 of cluster watched (i-" in failing.stdout, failing.stderr

    cleared = kubestep("local", "fault", "clear")
    assert cleared.returncode == 0 and "cleared" in cleared.stdout, cleared.stderr

    result = cli(local_runtime, "delete", "cluster", "watched", "--wait")
    assert result.exit_code == 0, result.output
