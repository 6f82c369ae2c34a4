"""etcd backups' own rules: when the leader takes one, when they are late, the manifest's
`spec.backup` (its errors name the field and the rule; a change is in place), and the table's
items (a requested backup keeps the rest of the policy; records newest first; a policy is only
requested once it exists)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from kubestep import backups, lifecycle
from kubestep.models import AWSCluster, dump
from kubestep.store.backups import BackupPolicy, BackupRecord
from kubestep.store.table import ConditionFailed
from tests.unit.conftest import ROOT

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
HALF_HOUR = timedelta(minutes=30)


def cluster(backup: dict | None = None) -> AWSCluster:
    doc = next(
        d for d in yaml.safe_load_all((ROOT / "examples" / "cluster-ha.yaml").read_text()) if d["kind"] == "AWSCluster"
    )
    doc = copy.deepcopy(doc)
    if backup is not None:
        doc["spec"]["backup"] = backup
    return AWSCluster.model_validate(doc)


def test_a_backup_is_due_when_none_exists_an_interval_passed_or_one_was_asked_for_since():
    assert backups.is_due(HALF_HOUR, None, None, NOW)
    assert not backups.is_due(HALF_HOUR, NOW - timedelta(minutes=29), None, NOW)
    assert backups.is_due(HALF_HOUR, NOW - HALF_HOUR, None, NOW)
    taken = NOW - timedelta(minutes=5)
    assert backups.is_due(HALF_HOUR, taken, taken + timedelta(seconds=1), NOW)
    assert not backups.is_due(HALF_HOUR, taken, taken - timedelta(seconds=1), NOW)


def test_backups_are_late_past_twice_the_interval_counted_from_creation_while_there_is_none():
    assert not backups.is_stale(HALF_HOUR, NOW - timedelta(minutes=60), NOW - timedelta(days=1), NOW)
    assert backups.is_stale(HALF_HOUR, NOW - timedelta(minutes=61), NOW - timedelta(days=1), NOW)
    assert not backups.is_stale(HALF_HOUR, None, NOW - timedelta(minutes=59), NOW)
    assert backups.is_stale(HALF_HOUR, None, NOW - timedelta(minutes=61), NOW)


def test_ids_and_keys_sort_by_time_under_the_incarnations_prefix():
    assert backups.backup_id(NOW) == "20261205T100000Z"
    assert backups.object_key("abcd1234", "20261205T100000Z") == "backups/abcd1234/20261205T100000Z.db"
    assert backups.backup_id(NOW) < backups.backup_id(NOW + timedelta(seconds=1))


def test_the_manifest_defaults_and_round_trips_its_backup_policy():
    default = cluster()
    assert (default.spec.backup.interval_minutes, default.spec.backup.retention_days) == (30, 7)
    chosen = cluster({"interval": "1h30m", "retention": "90d"})
    assert dump(chosen)["spec"]["backup"] == {"interval": "1h30m", "retention": "90d"}
    assert AWSCluster.model_validate(dump(chosen)) == chosen
    assert cluster({"retention": 14}).spec.backup.retention_days == 14


@pytest.mark.parametrize(
    ("backup", "field", "rule"),
    [
        ({"retention": "8d"}, "spec.backup.retention", "one of 1d, 3d, 7d, 14d, 30d, 90d, 365d"),
        ({"retention": True}, "spec.backup.retention", "one of 1d"),
        ({"interval": "1m"}, "spec.backup.interval", "5m to 24h"),
        ({"interval": "25h"}, "spec.backup.interval", "5m to 24h"),
        ({"interval": "soon"}, "spec.backup.interval", "duration like"),
        ({"every": "1h"}, "spec.backup.every", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_backup_policy_names_the_field_and_the_rule(backup, field, rule):
    with pytest.raises(ValueError) as raised:
        cluster(backup)
    text = str(raised.value)
    assert field in text and rule in text, text


def test_a_changed_backup_policy_is_an_in_place_update():
    stored = cluster()
    wanted = cluster({"interval": "1h", "retention": "30d"})
    request, fixed = lifecycle.cluster_manifest_changes(stored, wanted)
    assert fixed == [] and request is not None
    assert dump(request)["backup"] == {"interval": "1h", "retention": "30d"}
    assert request.control_plane.model_dump(exclude_none=True) == {}


def _record(backup_id: str, revision: int) -> BackupRecord:
    return BackupRecord(
        backup_id=backup_id,
        taken_at=backup_id,
        revision=revision,
        size=10,
        sha256="0" * 64,
        object_key=backups.object_key("uid00001", backup_id),
    )


def test_the_policy_keeps_a_pending_request_and_records_list_newest_first(store):
    uid = "uid00001"
    with pytest.raises(ConditionFailed):
        store.backups.request(uid, "2026-12-05T10:00:00Z")  # no policy yet: the cluster is being created
    policy = BackupPolicy(bucket="b", prefix=backups.cluster_prefix(uid), interval_minutes=30, retention_days=7)
    assert store.backups.publish_policy(uid, policy) is True
    assert store.backups.publish_policy(uid, policy) is False  # the same again writes nothing
    assert store.backups.request(uid, "2026-12-05T10:00:00Z").requested_at == "2026-12-05T10:00:00Z"
    assert store.backups.publish_policy(uid, policy.model_copy(update={"retention_days": 30})) is True
    current = store.backups.policy(uid)
    assert (current.retention_days, current.requested_at) == (30, "2026-12-05T10:00:00Z")

    for i, backup_id in enumerate(("20261205T100000Z", "20261205T110000Z", "20261205T103000Z")):
        store.backups.put(uid, _record(backup_id, i))
    assert [b.backup_id for b in store.backups.list(uid)] == [
        "20261205T110000Z",
        "20261205T103000Z",
        "20261205T100000Z",
    ]
    assert store.backups.latest(uid).backup_id == "20261205T103000Z"  # the last one written
    assert store.backups.list("uid00002") == []
    assert store.backups.delete_all(uid) == 3
    assert store.backups.list(uid) == [] and store.backups.policy(uid) is None and store.backups.latest(uid) is None
