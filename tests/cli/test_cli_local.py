"""The CLI end to end against `kubestep local up --detach` (a separate runtime process):
apply, get, describe, delete, events; boto3 at the printed endpoint sees the cluster's AWS
resources while it exists and none after delete."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner

from kubestep import inventory
from kubestep.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
SHARED_HOME = Path(os.environ.get("KUBESTEP_TEST_HOME", ROOT / ".build" / "test-home"))
# Its own $KUBESTEP_HOME (state file, logs) per session; the synthesized assembly is reused.
HOME = SHARED_HOME / f"cli-{os.getpid()}"


@pytest.fixture(scope="module")
def local_runtime():
    env = {**os.environ, "KUBESTEP_HOME": str(HOME)}
    shutil.rmtree(HOME, ignore_errors=True)
    if (SHARED_HOME / "local" / "cdk.out").is_dir():
        shutil.copytree(SHARED_HOME / "local" / "cdk.out", HOME / "local" / "cdk.out")
    HOME.mkdir(parents=True, exist_ok=True)
    up = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubestep.cli.main",
            "local",
            "up",
            "--detach",
            "--port",
            "0",
            "--api-port",
            "0",
            "--time-scale",
            "0.02",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert up.returncode == 0, up.stderr + up.stdout
    endpoint = re.search(r"AWS endpoint:\s+(\S+)", up.stdout).group(1)
    try:
        yield {"env": env, "endpoint": endpoint, "stdout": up.stdout}
    finally:
        down = subprocess.run(
            [sys.executable, "-m", "kubestep.cli.main", "local", "down"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
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


def test_apply_get_describe_delete(local_runtime):
    result = cli(local_runtime, "apply", "-f", str(ROOT / "examples" / "cluster-ha.yaml"), "--wait")
    assert result.exit_code == 0, result.output
    # Live progress, step by step, with the time since the execution started (and the time scale).
    assert "local runtime at time scale 0.02" in result.stderr
    assert re.search(r"^  \[\s*[\d.]+s\] done  EnsureLoadBalancer \([\d.]+s\)$", result.stderr, re.M), result.stderr
    assert re.search(r"^  \[\s*[\d.]+s\] done  MarkRunning", result.stderr, re.M)
    assert "awscluster/prod created: operation create-" in result.stdout
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
    assert re.search(r"^prod\s+RUNNING\s+1\.32\.4\s+3/3\s+2\s+\d+[smh]$", result.stdout, re.M), result.stdout

    found = inventory.cluster_resources(uid, clients(local_runtime["endpoint"]))
    assert len(found["loadBalancers"]) == 1
    assert len(found["autoScalingGroups"]) == 5
    assert len([v for v in found["volumes"] if v["role"] == "etcd"]) == 3

    # Applying again changes nothing.
    result = cli(local_runtime, "apply", "-f", str(ROOT / "examples" / "cluster-ha.yaml"))
    assert result.exit_code == 0 and "unchanged" in result.output

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
    # The lock is released: the next operation on the name is accepted at once.
    result = cli(local_runtime, "delete", "cluster", "cancelled", "--wait")
    assert result.exit_code == 0, result.output
    listed = cli(local_runtime, "get", "operations", "-c", "cancelled", "-o", "json")
    assert {o["status"] for o in json.loads(listed.stdout)} == {"ABORTED", "SUCCEEDED"}


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
