"""`kubestep diagnose snapshot` of a cluster whose create failed (a bootstrap failure injected on
replica 1, no rollback so its resources and secrets stay): the tarball holds the failing step's
event and execution history, the records, the etcd configuration, the AWS inventory, and a
summary naming what went wrong — and no secret material: no PEM block, token or key, and none
of the values of the cluster's secrets in Secrets Manager."""

from __future__ import annotations

import json
import re
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from kubestep import naming
from kubestep.api.client import ApiClient
from kubestep.cli.main import main

from .conftest import ha_request

CLUSTER = "diag"


@pytest.fixture(scope="module")
def failed(runtime, store) -> Iterator[dict[str, Any]]:
    api = ApiClient(runtime.api_url, sign=False)
    runtime.simulator.fail_bootstrap(CLUSTER, replica=1, phase="kubeadm-join")
    try:
        operation = api.create_cluster(ha_request(CLUSTER, rollbackOnFailure=False))
        ended = api.wait_operation(operation["id"], timeout=300, poll=0.5)
    finally:
        runtime.simulator.clear_failures()
    assert ended["status"] == "FAILED", ended
    # The operation is recorded FAILED in the execution's last task; its Fail state comes after.
    runtime.wait_execution(ended["executionArn"], timeout=60)
    yield ended
    deletion = api.delete_cluster(CLUSTER)
    assert api.wait_operation(deletion["id"], timeout=300, poll=0.5)["status"] == "SUCCEEDED"


@pytest.fixture(scope="module")
def snapshot(runtime, failed, tmp_path_factory) -> dict[str, Any]:
    """The CLI's own run, against the runtime's API, with the emulator as its AWS access."""
    home = tmp_path_factory.mktemp("diagnose-home")
    output = home / "snapshot.tar.gz"
    result = CliRunner().invoke(
        main,
        ["diagnose", "snapshot", CLUSTER, "--output", str(output), "--endpoint", runtime.api_url],
        env={
            "KUBESTEP_HOME": str(home),
            "KUBESTEP_CONTEXT": "",
            "AWS_ENDPOINT_URL": runtime.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": runtime.region,
            "AWS_PROFILE": None,
        },
        catch_exceptions=False,
        prog_name="kubestep",
    )
    assert result.exit_code == 0, result.output
    files: dict[str, bytes] = {}
    with tarfile.open(output) as tar:
        for member in tar.getmembers():
            assert member.isfile() and member.mode == 0o600
            files[member.name.split("/", 1)[1]] = tar.extractfile(member).read()
    return {"output": result.output, "files": files, "path": output}


def _json(snapshot: dict[str, Any], name: str) -> Any:
    return json.loads(snapshot["files"][name])


def test_snapshot_holds_records_events_operations_histories_and_inventory(snapshot, failed) -> None:
    op = failed["id"]
    for name in (
        "summary.md",
        "summary.json",
        "cluster.json",
        "nodepools.json",
        "etcd.json",
        "events.json",
        "operations.json",
        f"operations/{op}/steps.json",
        f"operations/{op}/history.json",
        "inventory.json",
        "version.json",
    ):
        assert name in snapshot["files"], name
    assert _json(snapshot, "cluster.json")["status"]["phase"] == "ERROR"
    assert {p["metadata"]["name"] for p in _json(snapshot, "nodepools.json")} == {"general", "batch"}
    etcd = _json(snapshot, "etcd.json")
    assert etcd["configuration"]["members"] == 3 and len(etcd["members"]) == 3
    # The failing step's event and its execution history.
    warnings = [e for e in _json(snapshot, "events.json") if e["type"] == "Warning"]
    assert any("replica 1" in e["message"] and "kubeadm-join" in e["message"] for e in warnings), warnings
    steps = _json(snapshot, f"operations/{op}/steps.json")["items"]
    failing = next(s for s in steps if s["type"] == "error" and s["step"])
    assert failing["step"] == "CheckReplicaHealth" and failing["item"] == "replica 1"
    history = _json(snapshot, f"operations/{op}/history.json")
    # (moto appends the events of Map iterations still running when a sibling failed as they come)
    assert history[0]["type"] == "ExecutionStarted" and "ExecutionFailed" in {e["type"] for e in history}
    assert any(e["type"] == "TaskFailed" and "BootstrapFailed" in json.dumps(e) for e in history)
    # No rollback: the cluster's resources are still there, found by their tags.
    resources = _json(snapshot, "inventory.json")["resources"]
    assert len([g for g in resources["autoScalingGroups"] if g["role"] == "control-plane"]) == 3
    assert len(resources["secrets"]) == 2


def test_summary_names_the_failure(snapshot, failed) -> None:
    summary = _json(snapshot, "summary.json")
    assert summary["phase"] == "ERROR"
    titles = [(f["severity"], f["title"]) for f in summary["findings"]]
    assert titles[0] == ("error", "cluster phase is ERROR")
    where = "at step CheckReplicaHealth (WaitForControlPlane, replica 1)"
    expected = f"operation {failed['id']} (CreateCluster) FAILED {where}"
    assert ("error", expected) in titles
    assert any(s == "error" and t.startswith("replica 1 ") and t.endswith("is unhealthy") for s, t in titles)
    assert any(s == "warning" and t.startswith("Warning event") for s, t in titles)
    # Nothing was rolled back or deleted: every recorded resource is found by its tags.
    assert [t for _, t in titles if t.startswith("drift")] == []
    markdown = snapshot["files"]["summary.md"].decode()
    assert f"**ERROR** {expected}" in markdown
    assert expected in snapshot["output"] and snapshot["output"].startswith(f"wrote {snapshot['path']}")


def test_no_secret_material_in_the_tarball(snapshot, runtime, store) -> None:
    uid = store.clusters.get(CLUSTER).uid
    secrets = runtime.boto3_client("secretsmanager")
    values: list[str] = []
    for name in (naming.control_plane_secret(uid), naming.node_secret(uid)):
        secret = json.loads(secrets.get_secret_value(SecretId=name)["SecretString"])
        values += [v for v in secret.values() if isinstance(v, str)]
        values += [t["token"] for t in secret.get("tokens", [])]  # every join token still accepted
    assert len(values) >= 10, "the cluster's PKI and join token exist in the emulator"
    pieces = {piece for value in values for piece in _distinctive(value)}
    cluster = store.clusters.get(CLUSTER)
    assert cluster.cluster_ca_certificate, "the record holds the (public) CA certificate ..."
    for name, data in snapshot["files"].items():
        text = data.decode()
        assert "-----BEGIN" not in text and "PRIVATE KEY" not in text, name  # ... the snapshot holds none
        assert "k8s-aws-v1." not in text, name
        assert not re.search(r"(?i)aws_secret_access_key|secretaccesskey", text), name
        assert not re.search(r"(?<![a-z0-9.])[a-z0-9]{6}\.[a-z0-9]{16}(?![a-z0-9])", text), name
        leaked = [piece[:12] for piece in pieces if piece in text]
        assert leaked == [], (name, leaked)
    assert _json(snapshot, "cluster.json")["status"]["clusterCaCertHash"] == cluster.ca_cert_hash


def _distinctive(value: str) -> list[str]:
    """The parts of a secret value that could only come from it: a PEM's body lines, else the
    whole value."""
    lines = [line for line in value.splitlines() if len(line) >= 16 and "-----" not in line]
    return lines or [value]
