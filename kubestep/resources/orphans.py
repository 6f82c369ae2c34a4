"""Orphans: AWS resources this management service tagged for a cluster (`gke:management-service`
and `gke:cluster-uid`) whose uid no cluster record owns any more (a record deleted by hand, a
delete that lost its record, a crashed tool). Left behind, they cost money and block VPC
deletion.

`find` lists them, every kind of `kubestep.resources.kinds`, by uid with their newest creation
time (or, for what AWS gives none, the time a sweep first saw it); `SweepOrphans` deletes those
older than a grace period with the very steps `DeleteCluster` runs (`kinds.delete_calls`),
through an `OrphanContext` (the cluster's identity from the resources' own tags, no record).
Etcd volumes a delete kept (`gke:retained-by`) are listed as retained and never deleted."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kubestep import naming
from kubestep.aws import client
from kubestep.resources import kinds
from kubestep.resources.context import ClusterContext
from kubestep.resources.kind import Scope
from kubestep.settings import Settings
from kubestep.store import Store

DEFAULT_GRACE = timedelta(hours=1)


@dataclass
class Orphan:
    """One uid's leftovers: what a sweep may delete (`resources`), what a delete kept on purpose
    (`retained`: never deleted, never aged), and when the newest deletable one came to be (its
    creation time, or when the sweeper first saw it if AWS gives none)."""

    uid: str
    cluster_name: str | None
    resources: dict[str, list[str]] = field(default_factory=dict)
    retained: dict[str, list[str]] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    undated: list[str] = field(default_factory=list)
    newest: datetime | None = None

    def add(
        self, kind: str, resource_id: str, created: datetime | None, tags: dict[str, str], tagged: bool = True
    ) -> None:
        self.cluster_name = self.cluster_name or tags.get(naming.TAG_CLUSTER)
        if naming.TAG_RETAINED_BY in tags:  # etcd volumes a delete kept for a restore
            self.retained.setdefault(kind, []).append(resource_id)
            return
        self.resources.setdefault(kind, []).append(resource_id)
        if tagged:  # what AWS keeps no tags for is selected by name or record, not by tags
            self.tags[resource_id] = tags
        if created is None:
            self.undated.append(resource_id)
        else:
            self.seen(created)

    def seen(self, created: datetime) -> None:
        created = created if created.tzinfo else created.replace(tzinfo=UTC)
        self.newest = created if self.newest is None else max(self.newest, created)

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.resources.values())

    def view(self, now: datetime, grace: timedelta) -> dict[str, Any]:
        age = (now - self.newest).total_seconds() if self.newest else None
        return {
            "uid": self.uid,
            "clusterName": self.cluster_name,
            "resources": {k: sorted(v) for k, v in sorted(self.resources.items())},
            "retained": {k: sorted(v) for k, v in sorted(self.retained.items())},
            "count": self.count,
            "ageSeconds": None if age is None else int(age),
            # Nothing deletable, or nothing dated yet, is never old.
            "old": self.count > 0 and age is not None and age >= grace.total_seconds(),
        }

    def incomplete_identity(self, service: str) -> dict[str, list[str]]:
        """Resource id -> the identity tags it lacks: DeleteCluster's steps select a cluster's
        resources by all of them, so one without them is never deleted by a sweep."""
        if not self.cluster_name:
            return {rid: ["gke:cluster"] for rid in self.tags}
        wanted = naming.cluster_tags(service, self.cluster_name, self.uid)
        missing = {rid: [k for k, v in wanted.items() if tags.get(k) != v] for rid, tags in self.tags.items()}
        return {rid: keys for rid, keys in missing.items() if keys}


def scope(settings: Settings, store: Store) -> Scope:
    """Where the sweep looks: this service's resources, of every cluster incarnation."""
    region = settings.region
    return Scope(
        lambda service: client(service, region),
        settings.service_name,
        store,
        settings.instance_role_path,
        settings.backup_bucket or None,
    )


def tagged(settings: Settings, store: Store) -> dict[str, Orphan]:
    """Everything this service made for a cluster incarnation, of every kind, by uid (the
    records not consulted: the kinds AWS keeps no tags for say theirs by name or record)."""
    found: dict[str, Orphan] = {}
    for kind, resources in kinds.find(scope(settings, store)).items():
        for resource in resources:
            orphan = found.setdefault(resource.uid, Orphan(resource.uid, None))
            orphan.add(kind, resource.id, resource.created, resource.tags, resource.tagged)
    return found


def find(settings: Settings, store: Store, at: datetime | None = None) -> list[Orphan]:
    """Tagged resources whose uid no cluster record owns, by uid. What AWS gives no creation
    time is dated by when a sweep first saw it (recorded in the store, seen now if never)."""
    at = at or now()
    found = [o for uid, o in sorted(tagged(settings, store).items()) if store.clusters.owner_of_uid(uid) is None]
    for orphan in found:
        for first_seen in store.sightings.first_seen(orphan.uid, orphan.undated, at).values():
            orphan.seen(first_seen)
    return found


class OrphanContext(ClusterContext):
    """A cluster context without a record: the delete steps select by uid, name and service
    tags, which the orphans carry."""

    def __init__(self, settings: Settings, store: Store, cluster_name: str, uid: str, operation_id: str):
        self.settings = settings
        self.store = store
        self.operation_id = operation_id
        self.run = None
        self.name = cluster_name
        self.uid = uid
        self.record = None  # type: ignore[assignment]

    def event(self, type_: str, reason: str, message: str, involved: str | None = None) -> None:
        # The events of the cluster the orphans belonged to (they outlive it).
        super().event(type_, reason, message, involved)


def now() -> datetime:
    return datetime.now(UTC)
