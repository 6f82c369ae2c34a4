"""The management side of credential expiry: the join token rotated with an overlap (new value
in the node secret, earlier ones kept until they expire, expired ones dropped), idempotent and
never outside Secrets Manager; certificate expiries read from the replicas' reports, warned
about 30 days ahead."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import yaml

from kubestep import certificates, join_tokens
from kubestep.models import AWSCluster
from kubestep.store import BootstrapReport, ClusterRecord, Resource, Store, iso

from .conftest import EXAMPLES

UID = "tok3n4me"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def cluster_record(store: Store, secret_arn: str, phase: str = "RUNNING") -> ClusterRecord:
    spec = AWSCluster.model_validate(list(yaml.safe_load_all((EXAMPLES / "cluster-ha.yaml").read_text()))[0])
    record = ClusterRecord(name="prod", uid=UID, spec=spec, version="1.35.4", phase=phase)
    store.clusters.create(record, [])
    store.clusters.record_resource("prod", Resource.NODE_SECRET, secret_arn, "create-op")
    return store.clusters.require("prod")


def node_secret(value: dict, uid: str = UID) -> str:
    return boto3.client("secretsmanager").create_secret(
        Name=f"gke-{uid}-node",
        SecretString=json.dumps(value),
        Tags=[{"Key": "gke:cluster-uid", "Value": uid}],
    )["ARN"]


def secret_of(arn: str) -> dict:
    return json.loads(boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"])


def test_a_token_a_day_old_is_rotated_and_the_old_value_stays_accepted(store: Store):
    first = join_tokens.new_token(NOW - timedelta(hours=25))
    arn = node_secret(join_tokens.secret_value([first]))
    record = cluster_record(store, arn)
    sm = boto3.client("secretsmanager")

    outcome = join_tokens.rotate(sm, store, record, NOW)

    assert outcome is not None and first.value not in outcome  # no value in what is logged or returned
    value = secret_of(arn)
    assert value["token"] != first.value and value["token"] == value["tokens"][0]["token"]
    assert [t["token"] for t in value["tokens"]] == [value["token"], first.value]  # the overlap
    assert value["tokens"][0]["expiresAt"] == iso(NOW + join_tokens.LIFETIME)
    info = store.clusters.require("prod").join_token
    assert info is not None and (info.created_at, info.accepted) == (iso(NOW), 2)
    # Not due again for a day: nothing changes, however often the planner fires.
    assert join_tokens.rotate(sm, store, store.clusters.require("prod"), NOW + timedelta(hours=23)) is None
    assert secret_of(arn) == value


def test_expired_values_are_dropped_and_the_list_stays_short(store: Store):
    tokens = [join_tokens.new_token(NOW - timedelta(days=d)) for d in (1, 2, 4)]
    arn = node_secret(join_tokens.secret_value(tokens))
    join_tokens.rotate(boto3.client("secretsmanager"), store, cluster_record(store, arn), NOW)
    listed = [t["token"] for t in secret_of(arn)["tokens"]]
    # The 4-day-old value expired (3-day lifetime); the 1- and 2-day-old ones overlap.
    assert len(listed) == 3 and tokens[2].value not in listed and tokens[0].value in listed


def test_a_rotation_retried_or_run_twice_at_once_adds_one_value(store: Store):
    first = join_tokens.new_token(NOW - timedelta(days=2))
    arn = node_secret(join_tokens.secret_value([first]))
    record = cluster_record(store, arn)
    sm = boto3.client("secretsmanager")
    # Two planner runs read the same secret; the first to write wins.
    assert join_tokens.rotate(sm, store, record, NOW) is not None
    won = secret_of(arn)

    class StaleRead:
        """The second run's read happened before the first run's write."""

        def __getattr__(self, name):
            return getattr(sm, name)

        def get_secret_value(self, **kwargs):
            if not hasattr(self, "served"):
                self.served = True
                answer = sm.get_secret_value(SecretId=arn, VersionStage="AWSPREVIOUS")
                return answer
            return sm.get_secret_value(**kwargs)

    assert join_tokens.rotate(StaleRead(), store, record, NOW + timedelta(minutes=1)) is None
    assert secret_of(arn) == won
    versions = sm.list_secret_version_ids(SecretId=arn)["Versions"]
    assert len(versions) == 2  # the create and one rotation


def test_a_secret_written_before_rotation_existed_is_rotated(store: Store):
    arn = node_secret({"token": "abcdef.0123456789abcdef"})
    record = cluster_record(store, arn)
    # Its only value counts from when the secret was written (now, in the emulator): not due yet.
    sm = boto3.client("secretsmanager")
    assert join_tokens.rotate(sm, store, record, datetime.now(UTC)) is None
    assert store.clusters.require("prod").join_token is not None
    later = datetime.now(UTC) + join_tokens.ROTATE_AFTER + timedelta(minutes=1)
    assert join_tokens.rotate(sm, store, store.clusters.require("prod"), later) is not None
    assert [t["token"] for t in secret_of(arn)["tokens"]][1] == "abcdef.0123456789abcdef"


def test_only_the_secret_of_this_incarnation_is_touched(store: Store):
    other = node_secret(join_tokens.secret_value([join_tokens.new_token(NOW - timedelta(days=2))]), uid="0therinc")
    before = secret_of(other)
    record = cluster_record(store, other)  # a record naming a secret tagged with another uid
    assert join_tokens.rotate(boto3.client("secretsmanager"), store, record, NOW) is None
    assert secret_of(other) == before


# ---------------------------------------------------------------- certificates


def report(certs: dict[str, str]) -> BootstrapReport:
    """A replica's report: its certificates' expiries beside its checks (docs/contracts.md)."""
    return BootstrapReport(status="ok", checks={"etcdMembers": 3}, certificates=certs)


def test_the_first_copy_to_expire_is_shown_and_warned_about_30_days_ahead():
    reports = {
        0: report({"apiserver": "2027-06-01T00:00:00Z", "ca": "2036-01-01T00:00:00Z"}),
        1: report({"apiserver": "2027-05-01T00:00:00Z", "etcd-server": "not a time"}),
    }
    found = certificates.earliest(reports)
    assert [(e.certificate, e.replica) for e in found] == [("apiserver", 1), ("ca", 0)]
    assert certificates.expiring(found, datetime(2027, 3, 1, tzinfo=UTC)) == []
    [due] = certificates.expiring(found, datetime(2027, 4, 2, tzinfo=UTC))
    assert due.certificate == "apiserver" and due.replica == 1
    # The message does not change between hourly checks, so the Warning events aggregate.
    assert certificates.warning(due) == certificates.warning(certificates.earliest(reports)[0])
    assert "2027-05-01T00:00:00.000Z" in certificates.warning(due) and "replica 1" in certificates.warning(due)


@pytest.mark.parametrize("stamp", ["2027-05-01T00:00:00", "yesterday"])
def test_expiries_that_are_not_aware_iso_times_are_skipped(stamp):
    assert certificates.earliest({0: report({"apiserver": stamp})}) == []
