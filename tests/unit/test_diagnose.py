"""The diagnose snapshot's pieces: scrubbing secret material, what the summary calls wrong, the
tarball. (The snapshot of a real failed create, through the API and the emulator, is in
tests/workflows/test_diagnose.py.)"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from kubestep import diagnose, pki
from kubestep.files import UnsafeTarget


def test_scrub_removes_a_real_control_plane_secret_whole() -> None:
    """The control-plane secret's JSON (what `kubestep.pki` generates), were it ever to reach a
    snapshot, under its own keys or pasted into a message."""
    material = pki.generate().material
    text = json.dumps(diagnose.scrub({"secret": material, "message": f"leaked: {json.dumps(material)}"}))
    for key, value in material.items():
        pieces = [line for line in value.splitlines() if len(line) > 20 and "-----" not in line] or [value]
        assert all(piece not in text for piece in pieces), key
    assert "BEGIN" not in text


def test_scrub_removes_pem_blocks_tokens_and_keys_wherever_they_are() -> None:
    certificate = pki.generate().ca_certificate
    private_key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n"
    value = {
        "message": f"boot failed; kubeadm said: {private_key} and join token abcdef.0123456789abcdef",
        "nested": [{"note": "token k8s-aws-v1.aHR0cHM6Ly9zdHMuYW1hem9uYXdzLmNvbS8_QWN0aW9u was refused"}],
        "ca": certificate,
        "env": "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY aws_session_token: FQoGZXIvYXdzEXAMPLE",
        "id": "AKIAIOSFODNN7EXAMPLE",
        "sa.key": "anything",
        "encryptionKey": "c2VjcmV0",
        "privateKey": "x",
        "dbPassword": "hunter2",
        # Not secret: kept.
        "initialClusterToken": "gke-abc12345-etcd",
        "nextToken": "b3BhcXVl",
        "secrets": [{"name": "gke-abc12345-node"}],
        "endpoint": "gke-abc12345-cp.us-east-1.elb.amazonaws.com",
    }
    scrubber = diagnose.Scrubber()
    text = json.dumps(scrubber(value))
    for secret in (
        "BEGIN",
        "MIIEowIBAAKCAQEA",
        "abcdef.0123456789abcdef",
        "k8s-aws-v1.",
        "wJalrXUtnFEMI",
        "FQoGZXIvYXdzEXAMPLE",
        "AKIAIOSFODNN7EXAMPLE",
        "anything",
        "c2VjcmV0",
        "hunter2",
    ):
        assert secret not in text, secret
    for kept in ("gke-abc12345-etcd", "b3BhcXVl", "gke-abc12345-node", "gke-abc12345-cp.us-east-1.elb.amazonaws.com"):
        assert kept in text, kept
    assert scrubber.redactions >= 10


def _cluster(phase: str = "RUNNING", **status: object) -> dict:
    return {
        "metadata": {"name": "prod", "uid": "abc12345"},
        "status": {
            "phase": phase,
            "resources": {
                "sg-lb": "sg-0a",
                "target-group": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/gke-abc12345-cp-6443/ff",
                "nlb": "arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/net/gke-abc12345-cp/ee",
                "node-secret": "arn:aws:secretsmanager:us-east-1:1:secret:gke-abc12345-node-AbCdEf",
                "node-role": "arn:aws:iam::1:role/kubestep/demo/gke-abc12345-node",
            },
            "controlPlane": {
                "replicas": [
                    {"index": 0, "zone": "us-east-1a", "autoScalingGroup": "gke-abc12345-cp-0", "bootstrap": "ok",
                     "instanceId": "i-0", "etcdVolumeId": "vol-0"},
                    {"index": 1, "zone": "us-east-1b", "autoScalingGroup": "gke-abc12345-cp-1",
                     "bootstrap": "failed:kubeadm-join", "instanceId": "i-1", "etcdVolumeId": "vol-1"},
                ]
            },
            "nodePools": [
                {"metadata": {"name": "general"}, "spec": {"minNodeCount": 2},
                 "status": {"phase": "RUNNING", "readyNodes": 1, "autoScalingGroup": "gke-abc12345-np-general"}}
            ],
            **status,
        },
    }  # fmt: skip


def test_findings_name_phase_failed_steps_unhealthy_replicas_warnings_and_drift() -> None:
    inventory = {
        "autoScalingGroups": [{"name": "gke-abc12345-cp-0"}, {"name": "gke-abc12345-cp-1"}],
        "instances": [{"id": "i-0"}, {"id": "i-1"}],
        "volumes": [{"id": "vol-0"}],  # vol-1 gone
        "securityGroups": [{"id": "sg-0a"}],
        "loadBalancers": [{"name": "gke-abc12345-cp"}],
        "targetGroups": [],  # deleted by hand
        "secrets": [{"name": "gke-abc12345-node"}],
    }
    files = {
        "cluster.json": _cluster(
            "DEGRADED",
            lastError={"error": "GateFailed", "message": "replica 1: etcd unhealthy"},
            drift={"listener": "deleted"},
        ),
        "operations.json": [
            {"id": "upgrade-abc12345-2", "kind": "UpgradeCluster", "status": "FAILED", "error": "GateFailed"},
            {"id": "create-abc12345-1", "kind": "CreateCluster", "status": "SUCCEEDED"},
        ],
        "operations/upgrade-abc12345-2/steps.json": {
            "items": [
                {"type": "done", "step": "ReplaceReplica", "message": "ReplaceReplica (3.0s)"},
                {"type": "error", "step": "GateReplica", "map": "RollReplicas", "item": "replica 1",
                 "message": "GateFailed: replica 1 etcd unhealthy"},
                {"type": "error", "step": None, "message": "GateFailed"},
            ]
        },
        "events.json": [
            {"type": "Normal", "reason": "Upgrading", "involvedObject": "AWSCluster/prod", "message": "m"},
            {"type": "Warning", "reason": "ReplicaGateFailed", "involvedObject": "AWSCluster/prod",
             "message": "replica 1: etcd unhealthy", "count": 2, "lastTimestamp": "2026-11-30T00:00:00Z"},
        ],
        "inventory.json": {"uid": "abc12345", "resources": inventory},
    }  # fmt: skip
    found = diagnose.findings(files)
    titles = [(f.severity, f.title) for f in found]
    assert titles[0] == ("error", "cluster phase is DEGRADED")
    assert found[0].detail == "GateFailed: replica 1: etcd unhealthy"
    assert (
        "error",
        "operation upgrade-abc12345-2 (UpgradeCluster) FAILED at step GateReplica (RollReplicas, replica 1)",
    ) in titles
    assert ("error", "replica 1 (us-east-1b, gke-abc12345-cp-1) is unhealthy") in titles
    assert ("warning", "Warning event ReplicaGateFailed on AWSCluster/prod (2 times)") in titles
    assert ("warning", "node pool general has 1 ready nodes, fewer than its minimum 2") in titles
    assert ("warning", "drift: listener") in titles
    drift = sorted(t for s, t in titles if t.startswith("drift: ") and "recorded" in t)
    assert drift == [
        "drift: node pool general autoScalingGroup gke-abc12345-np-general is recorded but not found by its tags",
        "drift: replica 1 etcdVolumeId vol-1 is recorded but not found by its tags",
        "drift: resource node-role arn:aws:iam::1:role/kubestep/demo/gke-abc12345-node is recorded but not found by "
        "its tags",
        "drift: resource target-group arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/gke-abc12345-cp-6443/ff "
        "is recorded but not found by its tags",
    ]  # the inventory has every kind (kubestep.resources.kinds): a role it does not list is called missing
    assert [f.severity for f in found] == sorted((f.severity for f in found), key=lambda s: s != "error")


def test_a_healthy_cluster_has_no_findings() -> None:
    cluster = _cluster()
    cluster["status"]["controlPlane"]["replicas"][1]["bootstrap"] = "ok"
    cluster["status"]["nodePools"][0]["status"]["readyNodes"] = 2
    assert diagnose.findings({"cluster.json": cluster, "events.json": [], "operations.json": []}) == []


def test_tarball_holds_the_files_and_the_summaries_and_is_never_overwritten(tmp_path: Path) -> None:
    snapshot = diagnose.Snapshot(cluster="prod", generated_at="2026-11-30T05:10:00Z")
    snapshot.files = {"cluster.json": _cluster("ERROR"), "events.json": []}
    snapshot.findings = diagnose.findings(snapshot.files)
    snapshot.problems = ["AWS inventory and raw execution histories: skipped (no direct AWS access)"]
    path = tmp_path / "snap.tar.gz"
    names = diagnose.write_tarball(snapshot, path)
    assert names == ["cluster.json", "events.json", "summary.json", "summary.md"]
    assert path.stat().st_mode & 0o777 == 0o600
    with tarfile.open(path) as tar:
        members = tar.getnames()
        assert members[0].startswith("kubestep-diagnose-prod-20261130T051000Z/")
        summary = json.load(tar.extractfile(next(m for m in members if m.endswith("summary.json"))))
        markdown = tar.extractfile(next(m for m in members if m.endswith("summary.md"))).read().decode()
    assert summary["phase"] == "ERROR" and summary["findings"][0]["title"] == "cluster phase is ERROR"
    assert "**ERROR** cluster phase is ERROR" in markdown and "## Not collected" in markdown
    with pytest.raises(UnsafeTarget, match="exists: it is never overwritten"):
        diagnose.write_tarball(snapshot, path)
