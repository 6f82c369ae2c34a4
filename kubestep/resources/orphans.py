"""Orphans: AWS resources this management service tagged for a cluster (`gke:management-service`
and `gke:cluster-uid`) whose uid no cluster record owns any more (a record deleted by hand, a
delete that lost its record, a crashed tool). Left behind, they cost money and block VPC
deletion.

`find` lists them by uid with their newest creation time (or, for what AWS gives none, the time
a sweep first saw it); `SweepOrphans` deletes those older than a grace period with the very
steps `DeleteCluster` runs, through an `OrphanContext` (the cluster's identity from the
resources' own tags, no record). Etcd volumes a delete kept (`gke:retained-by`) are listed as
retained and never deleted."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kubestep import naming
from kubestep.aws import client
from kubestep.resources.context import ClusterContext
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

    def add(self, kind: str, resource_id: str, created: datetime | None, tags: dict[str, str]) -> None:
        self.cluster_name = self.cluster_name or tags.get(naming.TAG_CLUSTER)
        if naming.TAG_RETAINED_BY in tags:  # etcd volumes a delete kept for a restore
            self.retained.setdefault(kind, []).append(resource_id)
            return
        self.resources.setdefault(kind, []).append(resource_id)
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


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def tagged(settings: Settings) -> dict[str, Orphan]:
    """Everything this service tagged with a cluster uid, by uid (records not consulted)."""
    region, svc = settings.region, settings.service_name
    ec2, asg, elbv2 = client("ec2", region), client("autoscaling", region), client("elbv2", region)
    found: dict[str, Orphan] = {}

    def note(kind: str, resource_id: str, tags: dict[str, str], created: Any = None) -> None:
        uid = tags.get(naming.TAG_CLUSTER_UID)
        if uid and tags.get(naming.TAG_SERVICE) == svc:
            found.setdefault(uid, Orphan(uid, None)).add(kind, resource_id, _parse_time(created), tags)

    service = [{"Name": f"tag:{naming.TAG_SERVICE}", "Values": [svc]}]
    live = [{"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]
    for page in ec2.get_paginator("describe_instances").paginate(Filters=service + live):
        for reservation in page["Reservations"]:
            for i in reservation["Instances"]:
                note("instances", i["InstanceId"], naming.tags_dict(i.get("Tags")), i.get("LaunchTime"))
    for v in ec2.describe_volumes(Filters=service)["Volumes"]:
        note("volumes", v["VolumeId"], naming.tags_dict(v.get("Tags")), v.get("CreateTime"))
    for t in ec2.describe_launch_templates(Filters=service)["LaunchTemplates"]:
        note("launchTemplates", t["LaunchTemplateId"], naming.tags_dict(t.get("Tags")), t.get("CreateTime"))
    for g in ec2.describe_security_groups(Filters=service)["SecurityGroups"]:
        note("securityGroups", g["GroupId"], naming.tags_dict(g.get("Tags")))
    for page in asg.get_paginator("describe_auto_scaling_groups").paginate(
        Filters=[{"Name": f"tag:{naming.TAG_SERVICE}", "Values": [svc]}]
    ):
        for g in page["AutoScalingGroups"]:
            tags = {t["Key"]: t["Value"] for t in g.get("Tags", [])}
            note("autoScalingGroups", g["AutoScalingGroupName"], tags, g.get("CreatedTime"))
    balancers = {lb["LoadBalancerArn"]: lb for lb in elbv2.describe_load_balancers()["LoadBalancers"]}
    targets = [tg["TargetGroupArn"] for tg in elbv2.describe_target_groups()["TargetGroups"]]
    arns = list(balancers) + targets
    for start in range(0, len(arns), 20):
        for desc in elbv2.describe_tags(ResourceArns=arns[start : start + 20])["TagDescriptions"]:
            arn = desc["ResourceArn"]
            kind = "loadBalancers" if arn in balancers else "targetGroups"
            note(kind, arn, naming.tags_dict(desc.get("Tags")), balancers.get(arn, {}).get("CreatedTime"))
    secrets = client("secretsmanager", region)
    for page in secrets.get_paginator("list_secrets").paginate(
        Filters=[{"Key": "tag-key", "Values": [naming.TAG_CLUSTER_UID]}]
    ):
        for s in page["SecretList"]:
            if not s.get("DeletedDate"):
                note("secrets", s["Name"], naming.tags_dict(s.get("Tags")), s.get("CreatedDate"))
    iam = client("iam", region)
    for page in iam.get_paginator("list_roles").paginate(PathPrefix=settings.instance_role_path):
        # Only the per-cluster roles, directly on the path: the prefix also lists the service's
        # Scheduler role (under `scheduler/`), which the ClusterTasks role may not read.
        for role in page["Roles"]:
            if role.get("Path") != settings.instance_role_path:
                continue
            tags = naming.tags_dict(iam.list_role_tags(RoleName=role["RoleName"]).get("Tags"))
            note("instanceRoles", role["RoleName"], tags, role.get("CreateDate"))
    return found


def find(settings: Settings, store: Store, at: datetime | None = None) -> list[Orphan]:
    """Tagged resources whose uid no cluster record owns, by uid. What AWS gives no creation
    time is dated by when a sweep first saw it (recorded in the store, seen now if never)."""
    at = at or now()
    found = [o for uid, o in sorted(tagged(settings).items()) if store.clusters.owner_of_uid(uid) is None]
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


def delete_steps() -> list[tuple[Callable[..., dict], dict[str, Any]]]:
    """DeleteCluster's steps for a whole cluster, in its order (declared once, in
    `kubestep.workflows.fragments`), as (function, keyword arguments)."""
    from kubestep.flow.asl import Catch, Task
    from kubestep.workflows.fragments import delete_cluster_states

    out = []
    for state in delete_cluster_states(prefix="", scope="cluster", catch=Catch("-"), keep_etcd_volumes=False):
        assert isinstance(state, Task)
        _context, params = state.spec.signature
        out.append((state.spec.fn, {p.name: state.args[p.key] for p in params}))
    return out


def now() -> datetime:
    return datetime.now(UTC)
