"""The control-plane join, proven against real etcd: three replicas run the real rendered
bootstrap script with the cluster harness (cluster_harness.py), whose kubeadm stand-in follows
kubeadm's join workflow (cmd/kubeadm/app/cmd/join.go: preflight with discovery through the load
balancer, control-plane-prepare, kubelet-start, etcd-join, kubelet-wait-bootstrap,
control-plane-join, wait-control-plane) and whose API servers serve only while their own etcd
member answers linearizable reads.

kubeadm adds a joining member as a learner after kubelet-start and promotes it once it caught up
(cmd/kubeadm/app/phases/etcd/local.go CreateStackedEtcdStaticPodManifestFile: AddMemberAsLearner,
then MemberPromote); kubestep does the same on the replica's stable name. Adding a *voting*
member before it runs (kubestep's earlier order) turns a one-member cluster into a two-member
one without quorum: discovery cannot read the cluster's configuration, the join times out, and
the next add is refused for want of started members (etcd's documentation, "Runtime
reconfiguration": a cluster of two needs both to make progress).
"""

from __future__ import annotations

import json

import pytest

from kubestep.store import keys
from tests.bootstrap.cluster_harness import ClusterHarness

VERSION = "1.36.5"


def names(harness: ClusterHarness) -> list[str]:
    return harness.names


def member_ids(harness: ClusterHarness) -> dict[str, int]:
    return {m["name"]: m["ID"] for m in harness.members()}


def current(harness: ClusterHarness, index: int) -> dict:
    return next(i for i in harness.instances().values() if i.get("replica") == index and i["alive"])


def assert_settled(harness: ClusterHarness) -> None:
    """Three voting members on the replicas' stable names, no learner, no violation."""
    members = harness.members()
    assert sorted(m["name"] for m in members) == harness.names
    assert all(m["peerURLs"] == [f"https://{m['name']}:2380"] for m in members)
    assert not any(m.get("isLearner") for m in members)
    assert harness.violations() == []


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    harness = ClusterHarness(tmp_path_factory.mktemp("join"))
    try:
        first, booted = harness.boot(harness.replica(0, VERSION))
        assert booted.ok, booted.stderr
        # The other two boot together, as an Auto Scaling group per replica launches them.
        joiners = [harness.start(harness.replica(i, VERSION)) for i in (1, 2)]
        for joiner in joiners:
            booted = harness.wait(joiner)
            assert booted.ok, booted.stderr
        yield harness
    finally:
        harness.close()


def test_replicas_join_as_learners_after_the_kubelet_starts_and_are_promoted_before_it_bootstraps(cluster):
    assert_settled(cluster)
    for index in (1, 2):
        instance = current(cluster, index)
        events = [e for e in cluster.events() if e["instance"] == instance["id"]]

        def at(predicate, events=events):
            return next(i for i, e in enumerate(events) if predicate(e))

        kubelet_started = at(lambda e: e["event"] == "kubelet-started")
        added = at(lambda e: e["event"] == "etcdctl" and e["args"][:2] == ["member", "add"] and e["returncode"] == 0)
        etcd_started = at(lambda e: e["event"] == "etcd-started")
        promoted = at(
            lambda e: e["event"] == "etcdctl" and e["args"][:2] == ["member", "promote"] and e["returncode"] == 0
        )
        registered = at(lambda e: e["event"] == "node-registered")
        assert kubelet_started < added < etcd_started < promoted < registered
        assert "--learner" in events[added]["args"]
    # Discovery never failed: the cluster stayed readable through both joins.
    assert cluster.events("discovery-failed") == []


def test_each_member_was_added_once_as_a_learner_and_the_cluster_never_lost_quorum(cluster):
    added = [e for e in cluster.events("etcdctl") if e["args"][:2] == ["member", "add"] and e["returncode"] == 0]
    assert len(added) == 2 and all("--learner" in e["args"] for e in added)
    # Whatever a joiner was refused (a second pending learner), it was never for want of quorum.
    refusals = [
        e["stderr"] for e in cluster.events("etcdctl") if e["args"][:2] == ["member", "add"] and e["returncode"]
    ]
    lost_quorum = ("not enough started members", "deadline exceeded", "request timed out")
    assert not [r for r in refusals if any(sign in r for sign in lost_quorum)]


def test_every_replica_reports_a_settled_control_plane(cluster):
    for index in range(3):
        assert cluster.run(current(cluster, index), "/usr/local/sbin/kubestep-bootstrap", "report").returncode == 0
        item = cluster.report(current(cluster, index))
        assert item["status"]["S"] == "ok" and item["source"]["S"] == "timer"
        checks = item["checks"]["M"]
        assert checks["etcdMembers"] == {"N": "3"} and checks["etcdLearners"] == {"N": "0"}
        assert checks["etcdHealthy"] == {"BOOL": True} and checks["apiserverReady"] == {"BOOL": True}
        assert checks["clusterVersion"] == {"S": VERSION} and checks["addonsVersion"] == {"S": VERSION}


def test_add_ons_were_applied_once_by_the_replica_that_initialised(cluster):
    claims = cluster.version_claims()
    assert list(claims) == [keys.addons_claim_sk(VERSION)]
    assert claims[keys.addons_claim_sk(VERSION)]["replica"] == {"N": "0"}
    assert claims[keys.addons_claim_sk(VERSION)]["status"] == {"S": "applied"}
    appliers = {e["instance"] for e in cluster.events("applied")}
    assert len(appliers) == 1
    assert cluster.get("configmaps", "kube-system", "kubestep-addons")["data"] == {"version": VERSION}


def test_a_replacement_with_an_empty_volume_rejoins_under_its_stable_name(cluster):
    before = member_ids(cluster)
    lost = current(cluster, 1)
    cluster.terminate(lost)
    cluster.lose_volume(1)
    cluster.etcdctl("put", "/registry/kubestep/probe", "written-with-a-replica-down")  # 2 of 3: quorum
    instance, booted = cluster.boot(cluster.replica(1, VERSION))
    assert booted.ok, booted.stderr
    assert_settled(cluster)
    after = member_ids(cluster)
    name = cluster.names[1]
    assert after[name] != before[name]  # a new member under the same identity
    assert {n: i for n, i in after.items() if n != name} == {n: i for n, i in before.items() if n != name}
    # Its stale member was removed first, then it joined as a learner.
    removed = [
        e
        for e in cluster.events("etcdctl")
        if e["instance"] == instance["id"] and e["args"][:2] == ["member", "remove"]
    ]
    assert [e["args"][2] for e in removed] == [format(before[name], "x")]
    # The data it replicated, and the predecessor's Node gone with it.
    got = cluster.etcdctl(
        "get", "/registry/kubestep/probe", "--print-value-only", endpoints=cluster.live_addresses()[1:2]
    )
    assert got.stdout.strip() == "written-with-a-replica-down"
    nodes = {n["metadata"]["name"] for n in cluster.list("nodes")}
    assert instance["hostname"] in nodes and lost["hostname"] not in nodes


def test_a_replacement_with_its_volume_restarts_the_same_member_with_a_rotating_kubelet_certificate(cluster):
    before = member_ids(cluster)
    cluster.terminate(current(cluster, 2))
    instance, booted = cluster.boot(cluster.replica(2, VERSION))
    assert booted.ok, booted.stderr
    assert_settled(cluster)
    assert member_ids(cluster) == before
    ours = [e for e in cluster.events("etcdctl") if e["instance"] == instance["id"] and e["args"][:1] == ["member"]]
    assert not [e for e in ours if e["args"][1] in ("add", "remove", "promote")]
    # kubelet.conf points at the kubelet's own rotating certificate, not a year-long embedded one.
    kubeconfig = (cluster.base / "instances" / instance["id"] / "root/etc/kubernetes/kubelet.conf").read_text()
    assert "client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem" in kubeconfig
    assert "client-certificate-data" not in kubeconfig
    assert "kubelet-client" in cluster.report(instance)["certificates"]["M"]


def test_the_harness_reports_a_second_kubeadm_init_as_a_split_brain(tmp_path):
    harness = ClusterHarness(tmp_path)
    try:
        _, booted = harness.boot(harness.replica(0, VERSION))
        assert booted.ok, booted.stderr
        # Were the init claim lost, the next replica would initialise a second cluster.
        harness._update("dynamodb.json", lambda items: items.pop(harness.init_claim_key()))
        harness.boot(harness.replica(1, VERSION))
        (violation,) = harness.violations()
        assert violation["kind"] == "split-brain"
    finally:
        harness.close()


def test_the_report_item_is_the_documented_one(cluster):
    item = cluster.report(current(cluster, 0))
    assert set(item) == {
        "pk",
        "sk",
        "status",
        "instanceId",
        "reportedAt",
        "source",
        "version",
        "checks",
        "certificates",
    }
    names = set(item["certificates"]["M"])
    assert names >= {
        "ca",
        "etcd-ca",
        "front-proxy-ca",
        "apiserver",
        "apiserver-kubelet-client",
        "apiserver-etcd-client",
        "front-proxy-client",
        "etcd-server",
        "etcd-peer",
        "etcd-healthcheck-client",
        "admin.conf",
        "controller-manager.conf",
        "scheduler.conf",
        "kubelet-client",
    }
    json.dumps(item)  # plain DynamoDB JSON
