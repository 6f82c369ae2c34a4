"""The real rendered bootstrap script for a node-pool instance, in the sandbox."""

from __future__ import annotations

import json

import yaml

from kubestep.store import keys
from tests.bootstrap.conftest import ACCOUNT, CA_HASH, JOIN_TOKEN, SECRETS, node
from tests.bootstrap.harness import Sandbox
from tests.bootstrap.test_script_control_plane import report


def test_node_joins_pinned_by_the_ca_hash_with_its_pool_settings(tmp_path):
    box = Sandbox(tmp_path, node(), {"secrets": SECRETS})
    run = box.run()
    assert run.returncode == 0, run.stderr
    (join,) = run.kubeadm("join")
    assert join["args"] == ["join", "--config", str(box.file("/etc/kubestep/kubeadm/join.yaml"))]
    document = yaml.safe_load(join["config"])
    assert document["discovery"]["bootstrapToken"]["caCertHashes"] == [CA_HASH]
    assert document["discovery"]["bootstrapToken"]["token"] == JOIN_TOKEN
    assert "controlPlane" not in document and "skipPhases" not in document
    registration = document["nodeRegistration"]
    args = {a["name"]: a["value"] for a in registration["kubeletExtraArgs"]}
    assert args == {
        "cloud-provider": "external",
        "node-ip": "10.0.1.10",
        "node-labels": "node.kubernetes.io/pool=batch,workload=batch",
    }
    assert registration["taints"] == [{"key": "dedicated", "value": "batch", "effect": "NoSchedule"}]
    kubelet = json.loads(join["patches"]["kubeletconfiguration+merge.json"])
    assert kubelet["kind"] == "KubeletConfiguration" and kubelet["maxPods"] == 58
    assert kubelet["kubeReserved"] == {"cpu": "100m", "memory": "256Mi"}
    assert kubelet["providerID"] == "aws:///us-east-1a/i-0aaaaaaaaaaaaaaa1"
    assert "etcd+json.json" not in join["patches"]
    # Nodes never touch etcd, DNS, the control-plane secret or the init claim.
    assert not run.commands("etcdctl") and not run.aws("route53", "change-resource-record-sets")
    assert not run.aws("ec2", "attach-volume") and not run.applied()
    assert [a[a.index("--secret-id") + 1] for a in run.aws("secretsmanager", "get-secret-value")] == [
        node().node_secret_arn
    ]
    containerd = box.read("/etc/containerd/config.toml")
    assert "SystemdCgroup = true" in containerd and "registry.k8s.io/pause:3.10" in containerd
    item = report(run)
    assert item["sk"]["S"] == keys.node_report_sk("i-0aaaaaaaaaaaaaaa1") and item["status"]["S"] == "ok"
    assert item["checks"]["M"] == {
        "nodeReady": {"BOOL": True},
        "nodeInitialized": {"BOOL": True},
        "providerID": {"S": "aws:///us-east-1a/i-0aaaaaaaaaaaaaaa1"},
    }
    assert item["version"]["S"] == "1.34.8" and item["source"]["S"] == "boot"
    assert ["enable", "--now", "kubestep-report.timer"] in run.commands("systemctl")


def test_node_join_is_retried_after_a_reset(tmp_path):
    box = Sandbox(tmp_path, node(), {"secrets": SECRETS, "fail": ["^kubeadm join"]})
    run = box.run(KUBESTEP_NODE_JOIN_ATTEMPTS="3")
    assert run.returncode != 0
    assert len(run.kubeadm("join")) == 3 and len(run.kubeadm("reset", "-f")) == 3
    assert report(run)["status"]["S"] == "failed:kubeadm-join"


def test_a_node_that_never_becomes_ready_reports_it(tmp_path):
    box = Sandbox(tmp_path, node(), {"secrets": SECRETS, "node_ready": "False"})
    run = box.run()
    item = report(run)
    assert item["status"]["S"] == "failed:health" and item["checks"]["M"]["nodeReady"] == {"BOOL": False}


def test_a_ready_node_the_cloud_controller_manager_never_initialised_fails_its_health_check(tmp_path):
    # Ready, but still tainted uninitialized: a broken cloud controller manager must not pass.
    taint = {"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true", "effect": "NoSchedule"}
    box = Sandbox(tmp_path, node(), {"secrets": SECRETS, "node_taints": [taint]})
    run = box.run()
    item = report(run)
    assert item["status"]["S"] == "failed:health"
    assert item["checks"]["M"]["nodeReady"] == {"BOOL": True}
    assert item["checks"]["M"]["nodeInitialized"] == {"BOOL": False}


def test_the_report_timer_writes_live_state_after_a_successful_boot(tmp_path):
    box = Sandbox(tmp_path, node(), {"secrets": SECRETS})
    assert box.run().returncode == 0
    timer = box.run("/usr/local/sbin/kubestep-bootstrap", "report")
    assert timer.returncode == 0, timer.stderr
    item = report(timer)
    assert item["status"]["S"] == "ok" and item["source"]["S"] == "timer"
    # In its own partition, named by its instance ARN, like its boot report: all its role may write.
    arn = f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0aaaaaaaaaaaaaaa1"
    assert item["pk"]["S"] == keys.node_report_pk(node().uid, arn)
    assert item["sk"]["S"] == keys.node_report_sk("i-0aaaaaaaaaaaaaaa1")
    assert item["checks"]["M"]["nodeInitialized"] == {"BOOL": True}
    # Nothing but the report: no join, no package, no reboot handling.
    assert {c["cmd"] for c in timer.calls} <= {"curl", "kubelet", "kubectl", "openssl", "aws"}
    assert timer.calls[-1]["cmd"] == "aws"  # a node's report is not paced: only a replica's


def test_a_malformed_join_token_fails_the_secrets_phase(tmp_path):
    secrets = dict(SECRETS, **{node().node_secret_arn: json.dumps({"token": "not-a-token"})})
    run = Sandbox(tmp_path, node(), {"secrets": secrets}).run()
    assert report(run)["status"]["S"] == "failed:secrets" and not run.kubeadm("join")
