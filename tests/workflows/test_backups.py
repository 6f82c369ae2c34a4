"""etcd backups in the emulator: once the cluster runs, its etcd leader (the instance
simulator's lowest running replica, on its report timer) uploads a snapshot to the service's
backup bucket under the cluster's own prefix, with its retention tag, and records it; `kubestep
backup cluster` asks for one now; `kubestep get backups` lists them; a new interval and retention
change in place (no replica replaced); backups and their records outlive the cluster, listed under
its name, and go with it only on `delete cluster --delete-backups`. The
module's teardown checks every call the instances made against their roles' policies
(runtime_checks.py), the S3 uploads and record writes included."""

from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timedelta

from click.testing import CliRunner

from kubestep import backups
from kubestep.api.client import ApiClient
from kubestep.cli.main import main

from .conftest import ha_request

# Most of this module's wall time is modelled waiting (boots, report periods, the leader's timer);
# the waits here are the runtime's scale of modelled time: at 0.01 it takes about 40% less.
RUNTIME_TIME_SCALE = 0.01


def until(condition, timeout: float = 90.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} never held")


def small(name: str) -> dict:
    request = ha_request(name)
    request["cluster"]["spec"]["controlPlane"]["availabilityZones"] = ["us-east-1a"]
    request["cluster"]["spec"]["backup"] = {"interval": "24h", "retention": "14d"}
    request["nodePools"] = []
    return request


def cli(runtime, tmp_path, *args: str):
    env = {
        "KUBESTEP_API_URL": runtime.api_url,
        "KUBESTEP_CONTEXT": "",
        "KUBESTEP_HOME": str(tmp_path),
        "AWS_REGION": runtime.region,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    return CliRunner().invoke(main, list(args), env=env, prog_name="kubestep")


def test_the_leader_backs_up_on_schedule_and_on_request_into_its_own_prefix(runtime, store, tmp_path):
    api = ApiClient(runtime.api_url, sign=False)
    created = api.wait_operation(api.create_cluster(small("keep"))["id"], timeout=600, poll=0.5)
    assert created["status"] == "SUCCEEDED", created
    uid = store.clusters.get("keep").uid
    policy = store.backups.policy(uid)
    assert (policy.interval_minutes, policy.retention_days, policy.prefix) == (24 * 60, 14, f"backups/{uid}/")

    # The first backup: none exists, so the leader's next report takes one.
    first = until(lambda: store.backups.list(uid), what="the first backup")[0]
    s3 = runtime.boto3_client("s3")
    body = s3.get_object(Bucket=policy.bucket, Key=first.object_key)["Body"].read()
    assert first.object_key == backups.object_key(uid, first.backup_id)
    assert (first.size, first.sha256) == (len(body), hashlib.sha256(body).hexdigest())
    tags = s3.get_object_tagging(Bucket=policy.bucket, Key=first.object_key)["TagSet"]
    assert tags == [{"Key": backups.RETENTION_TAG, "Value": "14"}]
    assert first.kubernetes_version == store.clusters.get("keep").version
    # Only the leader: one backup, not one per replica, and none again within the interval.
    time.sleep(runtime.time_scale.seconds(3 * 60))  # three report periods of every replica
    assert [b.backup_id for b in store.backups.list(uid)] == [first.backup_id]

    # Asked for now: the next report takes another, a newer revision.
    time.sleep(1.1)  # ids are to the second
    asked = cli(runtime, tmp_path, "backup", "cluster", "keep")
    assert asked.exit_code == 0 and "backup requested" in asked.output, asked.output
    second = until(lambda: len(found := store.backups.list(uid)) == 2 and found[0], what="the requested backup")
    assert second.revision > first.revision and second.taken_at > first.taken_at

    listed = cli(runtime, tmp_path, "get", "backups", "keep", "-o", "json")
    assert listed.exit_code == 0, listed.output
    assert [b["backupId"] for b in json.loads(listed.output)] == [second.backup_id, first.backup_id]
    table = cli(runtime, tmp_path, "get", "backups", "keep")
    assert "BACKUP" in table.output and second.backup_id in table.output
    view = api.request("GET", "clusters/keep/backups")
    assert view["late"] is False and (view["interval"], view["retention"]) == ("24h", "14d")
    assert view["items"][0]["location"] == f"s3://{policy.bucket}/{second.object_key}"

    # A new interval and retention change in place: the policy item, no instance replaced.
    change = {"backup": {"interval": "1h", "retention": "30d"}}
    assert api.update_cluster("keep", change, dry_run=True)["rolls"] is False
    updated = api.wait_operation(api.update_cluster("keep", change)["id"], timeout=600, poll=0.5)
    assert updated["status"] == "SUCCEEDED", updated
    policy = store.backups.policy(uid)
    assert (policy.interval_minutes, policy.retention_days) == (60, 30)
    assert "BackupPolicyPublished" in [e.reason for e in store.events.list("keep")]

    # The backups outlive the cluster: its objects and records stay.
    deleted = api.wait_operation(api.delete_cluster("keep")["id"], timeout=600, poll=0.5)
    assert deleted["status"] == "SUCCEEDED", deleted
    assert [b.backup_id for b in store.backups.list(uid)][-2:] == [second.backup_id, first.backup_id]
    s3.head_object(Bucket=policy.bucket, Key=first.object_key)


def test_backups_outlive_their_cluster_and_go_with_it_only_when_asked(runtime, store, tmp_path):
    """Deleted without --delete-backups, a cluster's backups stay listed under its name with the
    deleted incarnation's uid; a new cluster of the name lists its own, the earlier ones only with
    --all-incarnations, and cannot restore them; deleted with --delete-backups, every version of
    its objects and its records go, and only its own prefix's."""
    api = ApiClient(runtime.api_url, sign=False)
    s3 = runtime.boto3_client("s3")
    created = api.wait_operation(api.create_cluster(small("twice"))["id"], timeout=600, poll=0.5)
    assert created["status"] == "SUCCEEDED", created
    old_uid = store.clusters.get("twice").uid
    old = until(lambda: store.backups.list(old_uid), what="the first incarnation's backup")[0]
    bucket = store.backups.policy(old_uid).bucket

    dry = cli(runtime, tmp_path, "delete", "cluster", "twice", "--dry-run")
    assert dry.exit_code == 0 and "1 etcd backups would be kept" in dry.output, dry.output
    deleted = api.wait_operation(api.delete_cluster("twice")["id"], timeout=600, poll=0.5)
    assert deleted["status"] == "SUCCEEDED", deleted
    listed = cli(runtime, tmp_path, "get", "backups", "twice", "-o", "json")
    assert listed.exit_code == 0, listed.output
    [kept] = json.loads(listed.stdout)
    assert (kept["backupId"], kept["uid"], kept["clusterDeleted"]) == (old.backup_id, old_uid, True)
    assert kept["clusterDeletedAt"] and kept["location"] == f"s3://{bucket}/{old.object_key}"
    table = cli(runtime, tmp_path, "get", "backups", "twice")
    assert "deleted " in table.output and old.backup_id in table.output, table.output
    named = cli(runtime, tmp_path, "get", "backups", "twice", "-o", "name")
    assert named.stdout.strip() == f"backup/{old_uid}/{old.backup_id}", named.output

    # A new incarnation lists its own; the earlier one's only on request, each naming its uid.
    created = api.wait_operation(api.create_cluster(small("twice"))["id"], timeout=600, poll=0.5)
    assert created["status"] == "SUCCEEDED", created
    new_uid = store.clusters.get("twice").uid
    new = until(lambda: store.backups.list(new_uid), what="the second incarnation's backup")[0]
    own = cli(runtime, tmp_path, "get", "backups", "twice", "-o", "json")
    assert [(b["uid"], b["clusterDeleted"]) for b in json.loads(own.stdout)] == [(new_uid, False)], own.output
    assert "--all-incarnations" in own.stderr, own.output
    every = cli(runtime, tmp_path, "get", "backups", "twice", "--all-incarnations", "-o", "json")
    assert [(b["uid"], b["backupId"], b["clusterDeleted"]) for b in json.loads(every.stdout)] == [
        (new_uid, new.backup_id, False),
        (old_uid, old.backup_id, True),
    ], every.output
    view = api.request("GET", "clusters/twice/backups")
    assert view["uid"] == new_uid and [i["uid"] for i in view["earlierIncarnations"]] == [old_uid]
    assert view["earlierIncarnations"][0]["listed"] is False and view["earlierIncarnations"][0]["backups"] == 1
    wrong = cli(runtime, tmp_path, "get", "clusters", "--all-incarnations")
    assert wrong.exit_code == 2 and "only backups" in wrong.output, wrong.output
    refused = cli(runtime, tmp_path, "restore", "cluster", "twice", "--from", f"{old_uid}/{old.backup_id}")
    assert refused.exit_code != 0 and "another cluster incarnation" in refused.output, refused.output

    # Deleted with its backups: every version of the new incarnation's objects and its records
    # go (an overwritten version too); the earlier incarnation's prefix is untouched.
    new_key = backups.object_key(new_uid, new.backup_id)
    s3.put_object(Bucket=bucket, Key=new_key, Body=b"an older version")
    s3.put_object(Bucket=bucket, Key=new_key, Body=b"the current version")
    assert len(s3.list_object_versions(Bucket=bucket, Prefix=new_key)["Versions"]) >= 3
    gone = cli(runtime, tmp_path, "delete", "cluster", "twice", "--delete-backups", "--wait", "--timeout", "10m")
    assert gone.exit_code == 0 and "SUCCEEDED" in gone.output, gone.output
    left = s3.list_object_versions(Bucket=bucket, Prefix=backups.cluster_prefix(new_uid))
    assert not left.get("Versions") and not left.get("DeleteMarkers"), left
    assert store.backups.list(new_uid) == [] and store.backups.latest(new_uid) is None
    assert store.backups.policy(new_uid) is None
    assert "BackupsDeleted" in [e.reason for e in store.events.list("twice")]
    s3.head_object(Bucket=bucket, Key=old.object_key)
    after = cli(runtime, tmp_path, "get", "backups", "twice", "-o", "json")
    assert [(b["uid"], b["backupId"]) for b in json.loads(after.stdout)] == [(old_uid, old.backup_id)], after.output


def test_a_backup_asked_for_a_cluster_that_does_not_exist_is_refused(runtime, tmp_path):
    refused = cli(runtime, tmp_path, "backup", "cluster", "absent")
    assert refused.exit_code != 0 and "does not exist" in refused.output, refused.output
    bad = cli(runtime, tmp_path, "get", "backups", "Not_A_Name")
    assert bad.exit_code != 0 and "cluster" in bad.output, bad.output
    never = cli(runtime, tmp_path, "get", "backups", "never-made")
    assert never.exit_code != 0 and "does not exist" in never.output, never.output


def test_a_local_tick_takes_the_backups_due_by_its_moment(runtime, store):
    """`kubestep local tick --at TIME` (runtime.tick with backups): a cluster whose newest backup
    is an interval old as of TIME gets a new one from its etcd leader, listed by `get backups`;
    one that is not due is left alone, and the tick says until when."""
    api = ApiClient(runtime.api_url, sign=False)
    created = api.wait_operation(api.create_cluster(small("ticked"))["id"], timeout=600, poll=0.5)
    assert created["status"] == "SUCCEEDED", created
    uid = store.clusters.get("ticked").uid
    first = until(lambda: store.backups.list(uid), what="the first backup")[0]
    taken_at = datetime.fromisoformat(first.taken_at)

    early = runtime.tick(taken_at + timedelta(hours=23), backups=True)
    [mine] = [b for b in early.backups if b.cluster == "ticked"]
    assert (mine.outcome, mine.uid) == ("not due", uid) and "next due at" in mine.detail, mine
    assert [b.backup_id for b in store.backups.list(uid)] == [first.backup_id]

    time.sleep(1.1)  # ids are to the second
    due = runtime.tick(taken_at + timedelta(hours=24, minutes=1), backups=True)
    [mine] = [b for b in due.backups if b.cluster == "ticked"]
    assert mine.outcome == "taken", mine
    listed = [b["backupId"] for b in api.list_backups("ticked")]
    assert listed == [mine.backup_id, first.backup_id]
    assert store.backups.get(uid, mine.backup_id).revision > first.revision


def test_a_deleted_clusters_backups_are_deleted_one_or_all_on_request(runtime, store, tmp_path):
    """`kubestep delete backup UID/ID -c NAME` deletes one backup a deleted cluster incarnation
    left (every version of its object, then its record), `delete backups UID -c NAME` every one
    (then the name lists none); the existing cluster's backups are refused (they go with it),
    and so is a reference without its cluster or not naming one incarnation."""
    api = ApiClient(runtime.api_url, sign=False)
    s3 = runtime.boto3_client("s3")
    created = api.wait_operation(api.create_cluster(small("spent"))["id"], timeout=600, poll=0.5)
    assert created["status"] == "SUCCEEDED", created
    uid = store.clusters.get("spent").uid
    first = until(lambda: store.backups.list(uid), what="the first backup")[0]
    time.sleep(1.1)  # ids are to the second
    api.backup_cluster("spent")
    second = until(lambda: len(found := store.backups.list(uid)) == 2 and found[0], what="a second backup")
    bucket = store.backups.policy(uid).bucket

    existing = cli(runtime, tmp_path, "delete", "backup", f"{uid}/{first.backup_id}", "-c", "spent")
    assert existing.exit_code == 2 and "incarnation:" in existing.output, existing.output
    assert "--delete-backups" in existing.output, existing.output
    no_cluster = cli(runtime, tmp_path, "delete", "backup", f"{uid}/{first.backup_id}")
    assert no_cluster.exit_code == 2 and "-c CLUSTER" in no_cluster.output, no_cluster.output
    malformed = cli(runtime, tmp_path, "delete", "backup", "spent/latest", "-c", "spent")
    assert malformed.exit_code == 2 and "is not a backup reference" in malformed.output, malformed.output

    deleted = api.wait_operation(api.delete_cluster("spent")["id"], timeout=600, poll=0.5)
    assert deleted["status"] == "SUCCEEDED", deleted
    unknown = cli(runtime, tmp_path, "delete", "backup", f"zz{uid}/{first.backup_id}", "-c", "spent")
    assert unknown.exit_code == 1 and "incarnation: no deleted cluster 'spent'" in unknown.output, unknown.output

    # One backup: every version of its object (an overwritten one too), then its record.
    s3.put_object(Bucket=bucket, Key=first.object_key, Body=b"an overwritten version")
    one = cli(runtime, tmp_path, "delete", "backup", f"{uid}/{first.backup_id}", "-c", "spent", "--wait")
    assert one.exit_code == 0 and "SUCCEEDED" in one.output, one.output
    found = s3.list_object_versions(Bucket=bucket, Prefix=first.object_key)
    assert not found.get("Versions") and not found.get("DeleteMarkers"), found
    s3.head_object(Bucket=bucket, Key=second.object_key)
    listed = cli(runtime, tmp_path, "get", "backups", "spent", "-o", "json")
    assert [(b["uid"], b["backupId"]) for b in json.loads(listed.stdout)] == [(uid, second.backup_id)]

    # Every one it left: the prefix is empty and the name lists nothing any more.
    every = cli(runtime, tmp_path, "delete", "backups", uid, "-c", "spent", "--wait")
    assert every.exit_code == 0 and "SUCCEEDED" in every.output, every.output
    found = s3.list_object_versions(Bucket=bucket, Prefix=backups.cluster_prefix(uid))
    assert not found.get("Versions") and not found.get("DeleteMarkers"), found
    assert store.backups.list(uid) == [] and store.backups.deleted_incarnations("spent") == []
    gone = cli(runtime, tmp_path, "get", "backups", "spent")
    assert gone.exit_code != 0 and "does not exist" in gone.output, gone.output
    kinds = [o["kind"] for o in api.list_operations("spent")]
    assert kinds.count("DeleteBackups") == 2, kinds
