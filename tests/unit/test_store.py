"""The store: locks taken by operation id (the API's reservation and the execution are one
lock), taken over only from a dead or expired holder; uids owned by one record; operations
written once; events that aggregate and outlive their cluster, each naming its incarnation;
parallel etcd members."""

from __future__ import annotations

from datetime import timedelta

import pytest

from kubestep.errors import AlreadyExists, LockHeld, NotFound, Throttled
from kubestep.models import AWSCluster
from kubestep.store import ClusterRecord, EtcdConfig, EtcdMember, Operation, Resource, keys, locks
from kubestep.store import table as table_module
from kubestep.store.records import NodePoolRecord, VersionClaim

CLUSTER = AWSCluster.model_validate({"metadata": {"name": "c"}, "spec": {"controlPlane": {"version": "1.35.1"}}})


def record(name: str = "c", uid: str = "uid00001") -> ClusterRecord:
    spec = CLUSTER.model_copy(update={"metadata": CLUSTER.metadata.model_copy(update={"name": name})})
    return ClusterRecord(name=name, uid=uid, spec=spec, version="1.35.1")


def test_same_operation_reacquires_and_another_is_refused(store):
    store.locks.acquire("a", "op-1", "arn:exec:1", lambda arn: True)
    store.locks.acquire("a", "op-1", "arn:exec:1", lambda arn: True)
    with pytest.raises(LockHeld) as info:
        store.locks.acquire("a", "op-2", "arn:exec:2", lambda arn: True)
    assert "op-1" in str(info.value)


def test_takeover_from_a_stopped_execution(store):
    store.locks.acquire("a", "op-1", "arn:exec:1", lambda arn: True)
    lock = store.locks.acquire("a", "op-2", "arn:exec:2", lambda arn: arn != "arn:exec:1")
    assert lock.took_over_from == "op-1"
    assert store.locks.get("a").operation_id == "op-2"


def test_reservation_without_execution_is_respected_during_grace(store, monkeypatch):
    store.locks.acquire("a", "op-1", "arn:exec:1", lambda arn: None)
    with pytest.raises(LockHeld):
        store.locks.acquire("a", "op-2", "arn:exec:2", lambda arn: None)
    monkeypatch.setattr(locks, "LOCK_START_GRACE", timedelta(seconds=-1))
    assert store.locks.acquire("a", "op-2", "arn:exec:2", lambda arn: None).took_over_from == "op-1"


def test_expired_lease_is_taken_over(store, monkeypatch):
    monkeypatch.setattr(locks, "LOCK_TTL", timedelta(seconds=-1))
    store.locks.acquire("a", "op-1", "arn:exec:1", lambda arn: True)
    assert store.locks.acquire("a", "op-2", "arn:exec:2", lambda arn: True).took_over_from == "op-1"


def test_release_only_by_the_holder(store):
    store.locks.acquire("a", "op-1", None, lambda arn: True)
    assert store.locks.release("a", "op-2") is False
    assert store.locks.release("a", "op-1") is True
    assert store.locks.get("a") is None


def test_network_and_cluster_locks_are_separate(store):
    store.locks.acquire(keys.ServiceTarget.NETWORK, "op-n", None, lambda arn: True)
    store.locks.acquire("network-like-cluster", "op-c", None, lambda arn: True)
    assert store.locks.get(keys.ServiceTarget.NETWORK).operation_id == "op-n"


def test_a_uid_belongs_to_one_record_only(store):
    store.clusters.create(record("c", "uid00001"), [])
    with pytest.raises(AlreadyExists, match="uid uid00001 already belongs to cluster 'c'"):
        store.clusters.create(record("d", "uid00001"), [])
    assert store.clusters.get("d") is None
    assert store.clusters.owner_of_uid("uid00001") == "c"
    store.clusters.delete_everything("c", "uid00001")
    assert store.clusters.owner_of_uid("uid00001") is None


def test_an_operation_is_written_once(store):
    first, created = store.operations.create(
        Operation(operation_id="op-1", kind="CreateCluster", target="c", execution_arn="arn:1", uid="u1")
    )
    assert created
    again, created = store.operations.create(
        Operation(operation_id="op-1", kind="DeleteCluster", target="x", execution_arn="arn:2", uid="u2")
    )
    assert not created and (again.kind, again.target, again.execution_arn, again.uid) == (
        "CreateCluster",
        "c",
        "arn:1",
        "u1",
    )
    assert store.operations.finish("op-1", "SUCCEEDED")
    assert not store.operations.finish("op-1", "FAILED", "X", "later")
    assert store.operations.get("op-1").status == "SUCCEEDED"


def test_operations_list_newest_first_with_pages(store):
    for i in range(5):
        store.operations.create(
            Operation(
                operation_id=f"op-{i}", kind="CreateCluster", target="c", started_at=f"2026-01-0{i + 1}T00:00:00Z"
            )
        )
    page, token = store.operations.for_target("c", limit=3)
    assert [o.operation_id for o in page] == ["op-4", "op-3", "op-2"]
    rest, token = store.operations.for_target("c", limit=3, start=token)
    assert [o.operation_id for o in rest] == ["op-1", "op-0"] and token is None
    everything, _ = store.operations.all(limit=10)
    assert [o.operation_id for o in everything] == ["op-4", "op-3", "op-2", "op-1", "op-0"]


def test_events_aggregate_and_outlive_the_cluster(store):
    store.clusters.create(record(), [])
    for _ in range(3):
        store.events.record("c", "Warning", "Pending", "waiting", "AWSCluster/c", "op")
    store.events.record("c", "Normal", "Other", "hello", "AWSCluster/c")
    store.clusters.delete_everything("c", "uid00001")
    events = store.events.list("c")
    assert [(e.reason, e.count) for e in events] == [("Pending", 3), ("Other", 1)]
    assert store.clusters.get("c") is None


def test_events_name_their_incarnation_and_never_aggregate_across_incarnations(store):
    """A cluster deleted and created again under its name: the same event of each incarnation is
    its own item, with the uid of its operation (kept after the record is gone) or record."""
    store.clusters.create(record("c", "uid00001"), [])
    store.operations.create(Operation(operation_id="op-old", kind="CreateCluster", target="c", uid="uid00001"))
    store.events.record("c", "Normal", "ClusterRunning", "cluster c is RUNNING", "AWSCluster/c", "op-old")
    store.events.record("c", "Warning", "VersionEndOfLife", "1.34 is past its end of life", "AWSCluster/c")
    store.clusters.delete_everything("c", "uid00001")
    store.events.record("c", "Normal", "ClusterDeleted", "cluster c is deleted", "AWSCluster/c", "op-old")
    store.clusters.create(record("c", "uid00002"), [])
    store.operations.create(Operation(operation_id="op-new", kind="CreateCluster", target="c", uid="uid00002"))
    store.events.record("c", "Normal", "ClusterRunning", "cluster c is RUNNING", "AWSCluster/c", "op-new")
    # An operation of another target names no uid of this one: the record's is taken.
    store.events.record("c", "Normal", "Other", "hello", "AWSCluster/c", "op-of-another-cluster")
    events = {(e.reason, e.uid): e.count for e in store.events.list("c")}
    assert events == {
        ("ClusterRunning", "uid00001"): 1,
        ("VersionEndOfLife", "uid00001"): 1,
        ("ClusterDeleted", "uid00001"): 1,
        ("ClusterRunning", "uid00002"): 1,
        ("Other", "uid00002"): 1,
    }


def test_parallel_members_do_not_overwrite_each_other(store):
    store.clusters.create(record(), [])
    for i in range(3):
        store.etcd.plan_member("c", EtcdMember(index=i, zone=f"z{i}", subnet_id="s", name=f"m{i}", peer_name=f"p{i}"))
        store.etcd.record_resource("c", i, Resource.ETCD_VOLUME, f"vol-{i}", "op")
    # Re-planning keeps what was recorded.
    store.etcd.plan_member("c", EtcdMember(index=1, zone="other", subnet_id="s", name="m1", peer_name="p1"))
    members = store.etcd.members("c")
    assert [(m.zone, m.resources[Resource.ETCD_VOLUME].id) for m in members] == [
        ("z0", "vol-0"),
        ("z1", "vol-1"),
        ("z2", "vol-2"),
    ]


def test_init_is_claimed_once(store):
    assert store.reports.claim_init("u1", "i-1", 0) is True
    assert store.reports.claim_init("u1", "i-2", 0) is False
    assert store.reports.init_claim("u1").instance_id == "i-1"
    assert not store.reports.initialized("u1")
    store.reports.mark_initialized("u1")
    assert store.reports.initialized("u1")
    node_arn = "arn:aws:ec2:us-east-1:123456789012:instance/i-9"
    store.reports.write("u1", status="ok", instance_id="i-1", replica=0)
    store.reports.write("u1", status="failed:kubeadm-join", instance_id="i-9", instance_arn=node_arn)
    assert list(store.reports.replicas("u1")) == [0] and store.reports.replicas("u1")[0].ok
    assert store.reports.nodes("u1", {"i-9": node_arn})["i-9"].failed_phase == "kubeadm-join"
    assert store.reports.nodes("u1", {"i-8": node_arn.replace("i-9", "i-8")}) == {}
    # A node's report needs its instance ARN: it may write its own partition only.
    with pytest.raises(ValueError, match="instance ARN"):
        store.reports.write("u1", status="ok", instance_id="i-7")
    assert store.reports.delete_all("u1", {"i-9": node_arn}) == 3
    assert store.reports.init_claim("u1") is None and store.reports.nodes("u1", {"i-9": node_arn}) == {}


def test_version_claims_are_read_from_their_own_partition_and_deleted_with_the_rest(store):
    """What a replica writes for an upgrade (the instances write these items, the store reads
    them): `UPGRADE#<v>` and `ADDONS#<v>` under the version claims' partition, apart from the
    replicas' reports and the init claim."""
    for sk, status in ((keys.upgrade_claim_sk("1.37.1"), "upgraded"), (keys.addons_claim_sk("1.37.1"), "applied")):
        claim = VersionClaim(instance_id="i-1", replica=2, status=status, claimed_at="t0", done_at="t1")
        store.table.put({"pk": keys.version_claim_pk("u1"), "sk": sk, **claim.to_item()})
    assert store.reports.upgrade_claim("u1", "1.37.1").status == "upgraded"
    addons = store.reports.addons_claim("u1", "1.37.1")
    assert (addons.status, addons.replica, addons.done_at) == ("applied", 2, "t1")
    assert store.reports.addons_claim("u1", "1.36.5") is None
    store.reports.write("u1", status="ok", instance_id="i-1", replica=0, source="timer", certificates={"ca": "t"})
    report = store.reports.replica("u1", 0)
    assert (report.source, report.certificates) == ("timer", {"ca": "t"})
    assert list(store.reports.replicas("u1")) == [0]
    assert store.reports.delete_all("u1") == 3
    assert store.reports.upgrade_claim("u1", "1.37.1") is None and store.reports.addons_claim("u1", "1.37.1") is None


def test_a_conditional_update_keeps_its_own_values(store):
    # boto3's condition builder names its own placeholders (#n0, :v0); ours must not collide.
    store.clusters.create(record().model_copy(update={"current_operation": "op-1"}), [])
    updated = store.clusters.update_if_operation("c", "op-1", phase="ERROR", current_operation=None)
    assert (updated.phase, updated.current_operation) == ("ERROR", None)
    assert store.clusters.update_if_operation("c", "op-1", phase="RUNNING") is None
    assert store.clusters.get("c").phase == "ERROR"


def test_a_step_reads_its_cluster_and_its_operation_in_one_batch(store):
    store.clusters.create(record("c", "uid00001"), [])
    operation = Operation(operation_id="op-1", kind="UpdateCluster", target="c", execution_arn="a", uid="u")
    store.operations.create(operation)
    calls: list[str] = []
    store.table.client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    cluster, operation, _network = store.clusters.require_with_operation_and_network("c", "op-1")
    assert calls == ["BatchGetItem"]
    assert (cluster.uid, operation.operation_id, operation.kind) == ("uid00001", "op-1", "UpdateCluster")
    # An operation that is gone reads as None; a cluster that is gone is NotFound, as require says.
    assert store.clusters.require_with_operation_and_network("c", "op-gone")[1] is None
    with pytest.raises(NotFound, match="cluster 'gone' does not exist"):
        store.clusters.require_with_operation_and_network("gone", "op-1")


def test_a_cluster_step_reads_the_network_in_the_same_batch(store):
    store.clusters.create(record("c", "uid00001"), [])
    store.operations.create(Operation(operation_id="op-1", kind="CreateCluster", target="c", execution_arn="a"))
    calls: list[str] = []
    store.table.client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    cluster, operation, network = store.clusters.require_with_operation_and_network("c", "op-1")
    assert (cluster.uid, operation.operation_id, network) == ("uid00001", "op-1", None)  # no network yet
    store.network.update(status="READY", vpc_id="vpc-1")
    _, operation, network = store.clusters.require_with_operation_and_network("c", "")
    assert (operation, network.status, network.vpc_id) == (None, "READY", "vpc-1")
    assert calls == ["BatchGetItem", "UpdateItem", "BatchGetItem"]


def test_node_reports_are_read_in_one_batch_and_a_shared_partition_report_still_counts(store):
    """A health gate's poll reads every node's report in one BatchGetItem: its own partition and,
    for a node booted while nodes shared the replicas' partition (still writing there until it
    is replaced), that older key; where both exist the node's own partition wins."""
    arn = "arn:aws:ec2:us-east-1:123456789012:instance/{}".format
    store.reports.write("u1", status="ok", instance_id="i-1", instance_arn=arn("i-1"))
    shared = {"pk": keys.bootstrap_pk("u1"), "status": "failed:kubeadm-join", "reportedAt": table_module.iso()}
    store.table.put({**shared, "sk": keys.node_report_sk("i-2"), "instanceId": "i-2"})
    store.table.put({**shared, "sk": keys.node_report_sk("i-1"), "instanceId": "i-1"})
    calls: list[str] = []
    store.table.client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    found = store.reports.nodes("u1", {i: arn(i) for i in ("i-1", "i-2", "i-3")})
    assert calls == ["BatchGetItem"]
    assert (found["i-1"].ok, found["i-2"].failed_phase, "i-3" in found) == (True, "kubeadm-join", False)
    assert store.reports.node("u1", "i-2", arn("i-2")).failed_phase == "kubeadm-join"


def test_a_batch_read_of_more_than_a_hundred_items_is_split(store):
    """BatchGetItem takes at most 100 keys (DynamoDB API reference, BatchGetItem)."""
    for i in range(130):
        store.table.put({"pk": "P", "sk": f"S{i:03}", "n": i})
    asked: list[int] = []
    store.table.client.meta.events.register(
        "before-parameter-build.dynamodb.BatchGetItem",
        lambda params, **_: asked.append(len(params["RequestItems"][store.table.name]["Keys"])),
    )
    items = store.table.get_many([("P", f"S{i:03}") for i in range(131)])
    assert asked == [100, 31]
    assert [item["n"] for item in items[:130]] == list(range(130)) and items[130] is None


def test_a_write_whose_answer_is_not_read_asks_for_none(store):
    """Recording a resource reads nothing back: DynamoDB is asked for no attributes (UpdateItem's
    ReturnValues NONE, DynamoDB API reference), and the record has the reference; an update whose
    answer is used still gets the whole new item."""
    store.clusters.create(record(), [])
    asked: list[str] = []
    store.table.client.meta.events.register(
        "before-parameter-build.dynamodb.UpdateItem", lambda params, **_: asked.append(params["ReturnValues"])
    )
    store.clusters.record_resource("c", Resource.NLB, "arn:nlb", "op-1")
    updated = store.clusters.update("c", drift={"nlb": "gone"})
    assert asked == ["NONE", "ALL_NEW"]
    assert updated.resources[Resource.NLB.value].id == "arn:nlb" and updated.drift == {"nlb": "gone"}


def test_a_resource_and_the_fields_that_go_with_it_are_recorded_in_one_write(store):
    """A step that made a resource records its id and its fields (the member's or pool's) in one
    UpdateItem, and a role's and its profile's ids on the cluster record together."""
    spec = {"clusterName": "c", "version": "1.35.1", "minNodeCount": 1, "maxNodeCount": 2}
    pool = NodePoolRecord.model_validate(
        {"name": "p", "cluster": "c", "version": "1.35.1", "spec": {"metadata": {"name": "p"}, "spec": spec}}
    )
    store.clusters.create(record(), [pool])
    store.etcd.plan_member("c", EtcdMember(index=0, zone="z0", subnet_id="s", name="m0", peer_name="p0"))
    calls: list[str] = []
    store.table.client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    store.etcd.record_resource("c", 0, Resource.ASG, "asg-0", "op-1", asg_name="asg-0")
    store.node_pools.record_resource("c", "p", Resource.ASG, "asg-p", "op-1", asg_name="asg-p", zone="z1")
    store.clusters.record_resources("c", {Resource.NLB: "arn:nlb", Resource.LISTENER: "arn:listener"}, "op-1")
    assert calls == ["UpdateItem"] * 3
    member = store.etcd.require_member("c", 0)
    assert (member.asg_name, member.resources[Resource.ASG.value].created_by) == ("asg-0", "op-1")
    recorded = store.node_pools.get("c", "p")
    assert (recorded.asg_name, recorded.zone, recorded.resources[Resource.ASG.value].id) == ("asg-p", "z1", "asg-p")
    resources = store.clusters.get("c").resources
    assert (resources[Resource.NLB.value].id, resources[Resource.LISTENER.value].id) == ("arn:nlb", "arn:listener")
    # The member or pool must exist, as update_member and update say; nothing is written then.
    with pytest.raises(NotFound, match="replica 5 of cluster 'c' was never planned"):
        store.etcd.record_resource("c", 5, Resource.ASG, "asg-5", "op-1", asg_name="asg-5")
    with pytest.raises(NotFound, match="node pool 'q' of cluster 'c' does not exist"):
        store.node_pools.record_resource("c", "q", Resource.ASG, "asg-q", "op-1", asg_name="asg-q")
    assert store.etcd.get_member("c", 5) is None and store.node_pools.get("c", "q") is None


def test_a_batch_read_of_some_attributes_answers_only_those_and_the_key(store):
    """BatchGetItem's ProjectionExpression (DynamoDB API reference, BatchGetItem): each item
    answers only the attributes asked for, with its key (the reads are matched to their keys);
    an item without one of them answers without it, a missing item is None."""
    store.clusters.create(record(), [])
    store.etcd.put_config("c", EtcdConfig(initial_cluster_token="t", data_dir="/var/lib/etcd", members=3))
    config, cluster, missing = store.table.get_many(
        [
            (keys.cluster_pk("c"), keys.ETCD_CONFIG_SK),
            (keys.cluster_pk("c"), keys.CLUSTER_SK),
            (keys.cluster_pk("x"), keys.CLUSTER_SK),
        ],
        attributes=("members", "uid", "clusterCaCertificate"),
    )
    assert config == {"pk": keys.cluster_pk("c"), "sk": keys.ETCD_CONFIG_SK, "members": 3}
    assert cluster == {"pk": keys.cluster_pk("c"), "sk": keys.CLUSTER_SK, "uid": "uid00001"}
    assert missing is None


def test_a_replica_gate_reads_its_member_config_and_report_in_one_batch(store):
    store.clusters.create(record("c", "uid00001"), [])
    store.etcd.plan_member("c", EtcdMember(index=1, zone="z1", subnet_id="s", name="m1", peer_name="p1"))
    store.etcd.put_config("c", EtcdConfig(initial_cluster_token="t", data_dir="/var/lib/etcd", members=3))
    store.reports.write("uid00001", status="ok", instance_id="i-1", replica=1, checks={"etcdMembers": 2})
    calls: list[str] = []
    store.table.client.meta.events.register("before-call.dynamodb", lambda model, **_: calls.append(model.name))
    member, config, report = store.replica_with_report("c", "uid00001", 1)
    assert calls == ["BatchGetItem"]
    assert (member.zone, config.members, report.instance_id, report.checks) == ("z1", 3, "i-1", {"etcdMembers": 2})
    # No report yet reads as None; a replica never planned is NotFound, as require_member says.
    store.etcd.plan_member("c", EtcdMember(index=0, zone="z0", subnet_id="s", name="m0", peer_name="p0"))
    assert store.replica_with_report("c", "uid00001", 0)[2] is None
    with pytest.raises(NotFound, match="replica 2 of cluster 'c' was never planned"):
        store.replica_with_report("c", "uid00001", 2)


def test_unprocessed_keys_are_asked_again(store, monkeypatch):
    """BatchGetItem may answer part of a request and return the rest as UnprocessedKeys (DynamoDB
    API reference, BatchGetItem): those are asked again, and a table that never answers them is
    Throttled, never read as absent."""
    store.clusters.create(record("c", "uid00001"), [])
    answers: list[dict] = []
    real = store.table.client.batch_get_item

    def partial(**kwargs):
        request = kwargs["RequestItems"][store.table.name]
        keys_asked = request["Keys"]
        if len(keys_asked) > 1:  # answer the first key, leave the rest unprocessed
            first = real(RequestItems={store.table.name: {**request, "Keys": keys_asked[:1]}})
            first["UnprocessedKeys"] = {store.table.name: {**request, "Keys": keys_asked[1:]}}
            answers.append(first)
            return first
        answers.append(real(**kwargs))
        return answers[-1]

    monkeypatch.setattr(store.table.client, "batch_get_item", partial)
    monkeypatch.setattr(table_module.time, "sleep", lambda seconds: None)
    items = store.table.get_many([(keys.cluster_pk("c"), keys.CLUSTER_SK), (keys.cluster_pk("x"), keys.CLUSTER_SK)])
    assert items[0]["name"] == "c" and items[1] is None and len(answers) == 2

    monkeypatch.setattr(
        store.table.client,
        "batch_get_item",
        lambda **kwargs: {"Responses": {}, "UnprocessedKeys": kwargs["RequestItems"]},
    )
    with pytest.raises(Throttled, match="unprocessed"):
        store.table.get_many([(keys.cluster_pk("c"), keys.CLUSTER_SK)])
