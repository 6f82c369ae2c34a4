"""An upgrade 1.36 -> 1.37 upgrades the cluster, not only its instances: proven with the cluster
harness (real etcd; kubeadm's upgrade contract modelled from cmd/kubeadm/app/cmd/phases/upgrade/:
`upgrade apply` enforces the version policy and ControlPlaneNodesReady, writes kubeadm-config
and kubelet-config, and upgrades kube-proxy and CoreDNS only once every kube-apiserver mirror Pod
runs the new version (addons.go shouldUpgradeAddons); `upgrade node` upgrades a node to the
cluster's version and takes the add-on step the same way).

The roll replaces one replica at a time, as UpdateCluster does: replica 1 first and with its
etcd volume lost (it joins the still-1.36 cluster, then runs `kubeadm upgrade apply`), then
replicas 0 and 2 with their volumes (the restart path, then `kubeadm upgrade node`); then the
node pool. Cluster API's KubeadmControlPlane reconciles the same end state: kubeadm-config's
kubernetesVersion, kubelet-config, kube-proxy and CoreDNS at the new version."""

from __future__ import annotations

import json

import pytest

from kubestep.bootstrap import components
from kubestep.store import keys
from tests.bootstrap.cluster_harness import ClusterHarness

OLD, NEW = "1.36.5", "1.37.1"
ROLL = ((1, True), (0, False), (2, False))  # replica, volume lost


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory):
    harness = ClusterHarness(tmp_path_factory.mktemp("upgrade"))
    try:
        replicas = {}
        for index in range(3):
            replicas[index], booted = harness.boot(harness.replica(index, OLD))
            assert booted.ok, booted.stderr
        old_node, booted = harness.boot(harness.node(OLD))
        assert booted.ok, booted.stderr
        harness.upgrade_started = harness.events()[-1]["at"]
        for index, volume_lost in ROLL:
            harness.terminate(replicas[index])
            if volume_lost:
                harness.lose_volume(index)
            replicas[index], booted = harness.boot(harness.replica(index, NEW))
            assert booted.ok, booted.stderr
        harness.control_plane_upgraded = harness.events()[-1]["at"]
        # The node pool rolls after the control plane; the old node's Node goes with it.
        harness.terminate(old_node)
        harness.etcdctl("del", f"/registry/nodes/_/{old_node['hostname']}")
        harness.new_node, booted = harness.boot(harness.node(NEW))
        assert booted.ok, booted.stderr
        yield harness
    finally:
        harness.close()


def test_kubeadm_config_and_kubelet_config_are_at_the_new_version(upgraded):
    cluster_configuration = upgraded.get("configmaps", "kube-system", "kubeadm-config")["data"]["ClusterConfiguration"]
    assert f"kubernetesVersion: v{NEW}" in cluster_configuration
    kubelet_config = upgraded.get("configmaps", "kube-system", "kubelet-config")
    assert kubelet_config["data"]["kubeadmVersion"] == f"v{NEW}"


def test_kubeadm_upgrade_apply_ran_once_on_the_first_replica_and_upgrade_node_on_the_others(upgraded):
    (applied,) = upgraded.events("kubeadm-upgrade-apply")
    assert applied["target"] == f"v{NEW}" and applied["previous"] == f"v{OLD}"
    first = upgraded.instances()[applied["instance"]]
    assert first["replica"] == 1 and first["version"] == NEW
    nodes = upgraded.events("kubeadm-upgrade-node")
    assert sorted(upgraded.instances()[e["instance"]]["replica"] for e in nodes) == [0, 2]
    claims = {sk: v["status"]["S"] for sk, v in upgraded.version_claims().items() if sk.endswith(NEW)}
    assert claims == {keys.upgrade_claim_sk(NEW): "upgraded", keys.addons_claim_sk(NEW): "applied"}


def test_kube_proxy_and_coredns_are_upgraded_only_once_every_api_server_runs_the_new_version(upgraded):
    proxy = upgraded.get("daemonsets", "kube-system", "kube-proxy")
    assert proxy["spec"]["template"]["spec"]["containers"][0]["image"] == f"registry.k8s.io/kube-proxy:v{NEW}"
    coredns = upgraded.get("deployments", "kube-system", "coredns")
    assert coredns["metadata"]["annotations"]["standin.kubestep.io/deployed-by-kubeadm"] == f"v{NEW}"
    skipped = upgraded.events("kubeadm-addons-skipped")
    (done,) = [e for e in upgraded.events("kubeadm-addons") if e["version"] == f"v{NEW}"]
    assert len(skipped) == 2 and all(s["at"] < done["at"] for s in skipped)
    assert upgraded.instances()[done["instance"]]["replica"] == 2  # the last replica of the roll


def test_every_kubestep_add_on_is_reapplied_at_the_new_version_after_the_control_plane(upgraded):
    applied = [e for e in upgraded.events("applied") if e["at"] > upgraded.upgrade_started]
    assert {upgraded.instances()[e["instance"]]["replica"] for e in applied} == {2}
    objects = {o for e in applied for o in e["objects"]}
    assert {
        "DaemonSet/calico-node",
        "DaemonSet/aws-cloud-controller-manager",
        "Deployment/aws-node-termination-handler",
        "ClusterRoleBinding/kubestep-cluster-admins",
        "Role/kubestep:bootstrap-token-manager",
        "ConfigMap/kubestep-addons",
    } <= objects
    ccm = upgraded.get("daemonsets", "kube-system", "aws-cloud-controller-manager")
    assert ccm["spec"]["template"]["spec"]["containers"][0]["image"] == components.cloud_controller_manager_image(37)
    for resource, name in [("daemonsets", "calico-node"), ("deployments", "aws-node-termination-handler")]:
        applier = json.loads(
            upgraded.get(resource, "kube-system", name)["metadata"]["annotations"]["standin.kubestep.io/applied-by"]
        )
        assert applier["version"] == NEW
    assert upgraded.get("configmaps", "kube-system", "kubestep-addons")["data"] == {"version": NEW}


def test_the_control_plane_stays_one_etcd_cluster_on_its_stable_names(upgraded):
    members = upgraded.members()
    assert sorted(m["name"] for m in members) == upgraded.names
    assert not any(m.get("isLearner") for m in members)
    assert upgraded.violations() == []
    for index in range(3):
        report = upgraded.report(
            next(i for i in upgraded.instances().values() if i.get("replica") == index and i["alive"])
        )
        assert report["status"]["S"] == "ok" and report["version"]["S"] == NEW
    last = upgraded.report(next(i for i in upgraded.instances().values() if i.get("replica") == 2 and i["alive"]))
    assert last["checks"]["M"]["clusterVersion"] == {"S": NEW} and last["checks"]["M"]["addonsVersion"] == {"S": NEW}


def test_nodes_run_the_new_version_ready_and_initialised_after_the_pool_roll(upgraded):
    live = {i["hostname"] for i in upgraded.instances().values() if i["alive"]}
    nodes = [n for n in upgraded.list("nodes") if n["metadata"]["name"] in live]
    assert len(nodes) == 4
    assert {n["status"]["nodeInfo"]["kubeletVersion"] for n in nodes} == {f"v{NEW}"}
    report = upgraded.report(upgraded.new_node)
    assert report["status"]["S"] == "ok" and report["version"]["S"] == NEW
    assert report["checks"]["M"]["nodeReady"] == {"BOOL": True}
    assert report["checks"]["M"]["nodeInitialized"] == {"BOOL": True}
    assert upgraded.report_key(upgraded.new_node) in upgraded.dynamodb()
