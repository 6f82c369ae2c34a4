"""What kubestep knows about one kind of AWS resource it makes for a cluster, as one value: how to
find every one (a cluster incarnation's, or all this service made), the steps that delete a
cluster's (and wait until they are gone), what they must outlive, and how to tell what was
deleted or changed by hand. The kinds, in delete order, are listed once in
`kubestep.resources.kinds`; the delete chain, its compensation, the orphan sweep, drift and the
inventory are read from there.

Cluster API AWS keeps one service per kind the same way (`pkg/cloud/services/<kind>`), and kOps
one lister and deleter per kind (`pkg/resources/aws/<kind>.go`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kubestep import naming
from kubestep.aws.errors import Kind, is_not_found

if TYPE_CHECKING:
    from kubestep.resources.context import ClusterContext
    from kubestep.store import Store

MISSING = "missing"
# The arguments a delete step may take, as the delete chain names them.
SCOPE, KEEP_ETCD_VOLUMES = "scope", "keepEtcdVolumes"


@dataclass(frozen=True)
class Found:
    """One resource: the cluster incarnation it was made for (from its tags or, where AWS keeps
    none, its name or its record), its tags, its creation time if AWS gives one, and what the
    inventory shows of it."""

    uid: str
    id: str
    tags: dict[str, str] = field(default_factory=dict)
    created: datetime | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    # False where AWS keeps no tags (DNS records, schedules): the identity comes from elsewhere.
    tagged: bool = True

    def view(self) -> dict[str, Any]:
        return {"id": self.id, **self.detail}


@dataclass(frozen=True)
class Scope:
    """Where a listing looks: `clients(service)` gives a boto3 client; `service` narrows it to one
    management service's resources (its `gke:management-service` tag); `store` reads what AWS
    keeps no tags for (the schedules' records, the hosted zone); `bucket` is the service's
    bucket (the bootstrap bundles)."""

    clients: Callable[[str], Any]
    service: str | None = None
    store: Store | None = None
    role_path: str | None = None
    bucket: str | None = None

    def ec2_filters(self, uid: str | None) -> list[dict]:
        """EC2 and Auto Scaling tag filters for this service's (one incarnation's) resources."""
        filters = [{"Name": f"tag:{naming.TAG_SERVICE}", "Values": [self.service]}] if self.service else []
        if uid:
            filters.append({"Name": f"tag:{naming.TAG_CLUSTER_UID}", "Values": [uid]})
        return filters

    def found(
        self, uid: str | None, resource_id: str, tags: dict[str, str], created: Any = None, **detail: Any
    ) -> Found | None:
        """The resource if its tags say this service made it for a cluster (`uid`'s, if given)."""
        owner = tags.get(naming.TAG_CLUSTER_UID)
        if not owner or (uid and owner != uid) or (self.service and tags.get(naming.TAG_SERVICE) != self.service):
            return None
        return Found(owner, resource_id, tags, parse_time(created), detail)


@dataclass(frozen=True)
class DeleteStep:
    """A step of the delete chain: the step function, the chain's arguments it takes (`scope`,
    `keepEtcdVolumes`), and whether only a whole cluster's delete runs it (what a cluster makes
    once it ran: a create's compensation has none of it)."""

    fn: Callable[..., dict]
    args: tuple[str, ...] = (SCOPE,)
    whole_cluster_only: bool = False
    name: str = ""


@dataclass(frozen=True)
class ResourceKind:
    """A kind of resource a cluster owns. `find(scope, uid)` lists this service's (one
    incarnation's when `uid` is given); `ensure` the create chain's steps that make it (by
    name: they run after those of what it needs); `delete` the steps that delete a cluster's; `needs`
    the kinds that must outlive it (they come later in the delete order); `drift(ctx, found)`
    says what differs from the records (`found`: what the kinds before it found); drift of a
    kind with `blocks_updates` False is what an update's roll puts right itself."""

    name: str
    label: str = ""  # how the demo's table names one
    find: Callable[[Scope, str | None], Iterable[Found]] | None = None
    ensure: tuple[str, ...] = ()
    delete: tuple[DeleteStep, ...] = ()
    needs: tuple[str, ...] = ()
    drift: Callable[[ClusterContext, dict[str, str]], dict[str, str]] | None = None
    blocks_updates: bool = True


def exists(call: Callable[[], Any], kind: Kind) -> bool:
    """Does `call` find it (False on the kind's "not found")?"""
    try:
        call()
        return True
    except Exception as exc:
        if is_not_found(exc, kind):
            return False
        raise


def parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            return parse_time(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None
