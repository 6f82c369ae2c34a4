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
        main, list(args), env={"KUBESTEP_HOME": str(HOME), "KUBESTEP_API_URL": ""}, catch_exceptions=False
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

    result = cli(local_runtime, "get", "nodepools", "prod", "-o", "yaml")
    assert result.exit_code == 0 and "general" in result.output and "batch" in result.output

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
