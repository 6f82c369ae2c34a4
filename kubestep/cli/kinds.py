"""The resource kinds the CLI gets, describes, watches and deletes, kubectl-style: singular,
plural and short names; cluster-scoped kinds are addressed as `CLUSTER/NAME` or `NAME -c
CLUSTER` (lists take `-c CLUSTER`, or show every cluster's). A new kind (versions and
schedules were the last) is one more entry in KINDS."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import click

from kubestep.api.client import ApiClient
from kubestep.cli import end_of_life
from kubestep.cli.errors import InputError
from kubestep.cli.output import Column, age, duration_text, parse_time
from kubestep.names import NAME_PATTERN
from kubestep.suggest import close_matches, did_you_mean


@dataclass(frozen=True)
class Ref:
    """What a command line names: a kind, maybe a cluster, maybe a name."""

    cluster: str | None
    name: str | None


@dataclass
class Kind:
    singular: str
    plural: str
    aliases: tuple[str, ...]
    columns: list[Column]
    name_of: Callable[[dict], str]  # `-o name`
    key_of: Callable[[dict], str]  # identity of a row while watching
    list_items: Callable[[ApiClient, str | None], list[dict]]
    get_item: Callable[[ApiClient, Ref], dict] | None = None
    scoped: bool = False  # belongs to a cluster
    needs_cluster_to_list: bool = False
    # Lines worth a `warning:` on stderr after a listing (e.g. end-of-life versions).
    warnings: Callable[[ApiClient], list[str]] | None = None
    # Kinds whose names pick a part of a list rather than one object (a node pool's events).
    list_named: Callable[[ApiClient, Ref], list[dict]] | None = None
    names: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.names = (self.singular, self.plural, *self.aliases)


# ---------------------------------------------------------------- clusters


def _replicas(cluster: dict) -> str:
    replicas = ((cluster.get("status") or {}).get("controlPlane") or {}).get("replicas")
    if not replicas:
        return "-"
    ready = sum(1 for r in replicas if replica_health(r) == "ok")
    return f"{ready}/{len(replicas)}"


def replica_health(replica: dict) -> str | None:
    """What a replica's own report says (`ok`, `failed:<phase>`), unless its resources are being
    deleted (its create rolls back): then that, whatever it said."""
    return "deleting (rollback)" if replica.get("deleting") else replica.get("bootstrap")


def _pools(cluster: dict) -> str:
    pools = (cluster.get("status") or {}).get("nodePools")
    return "-" if pools is None else str(len(pools))


CLUSTER_COLUMNS = [
    Column("NAME", lambda c: c["metadata"]["name"]),
    Column("PHASE", lambda c: c["status"].get("phase")),
    Column("VERSION", lambda c: c["status"].get("version") or c["spec"]["controlPlane"].get("version")),
    Column("REPLICAS", _replicas),
    Column("NODEPOOLS", _pools),
    Column("AGE", lambda c: age(c["metadata"].get("createdAt"))),
    Column("ENDPOINT", lambda c: c["status"].get("endpoint"), wide_only=True),
    Column("UID", lambda c: c["status"].get("uid"), wide_only=True),
    Column("OPERATION", lambda c: c["status"].get("currentOperation"), wide_only=True),
]


# ---------------------------------------------------------------- node pools


def _pool_cluster(pool: dict) -> str:
    return str((pool.get("spec") or {}).get("clusterName") or "")


NODE_POOL_COLUMNS = [
    Column("CLUSTER", _pool_cluster),
    Column("NAME", lambda p: p["metadata"]["name"]),
    Column("PHASE", lambda p: p["status"].get("phase")),
    Column("VERSION", lambda p: p["status"].get("version") or p["spec"].get("version")),
    Column("MIN", lambda p: p["spec"].get("minNodeCount")),
    Column("MAX", lambda p: p["spec"].get("maxNodeCount")),
    Column("AGE", lambda p: age(p["metadata"].get("createdAt"))),
    Column("INSTANCE-TYPE", lambda p: p["spec"].get("instanceType"), wide_only=True),
    Column("ZONE", lambda p: p["status"].get("zone"), wide_only=True),
    Column("ASG", lambda p: p["status"].get("autoScalingGroup"), wide_only=True),
]


def _list_pools(client: ApiClient, cluster: str | None) -> list[dict]:
    if cluster:
        return client.list_node_pools(cluster)
    # Every cluster's: the list view carries them, so one request per page of clusters.
    return [pool for c in client.list_clusters() for pool in (c["status"].get("nodePools") or [])]


# ---------------------------------------------------------------- operations


def _took(operation: dict) -> str:
    start = parse_time(operation.get("startedAt"))
    if start is None:
        return "-"
    end = parse_time(operation.get("endedAt")) or datetime.now(UTC)
    return duration_text((end - start).total_seconds())


def operation_target(operation: dict) -> str | None:
    """`prod`, or `prod/gpu` for a node pool's operation."""
    target, pool = operation.get("target"), operation.get("nodePool")
    return f"{target}/{pool}" if target and pool else target


OPERATION_COLUMNS = [
    Column("ID", lambda o: o["id"]),
    Column("KIND", lambda o: o.get("kind")),
    Column("TARGET", operation_target),
    Column("STATUS", lambda o: o.get("status")),
    Column("AGE", lambda o: age(o.get("startedAt"))),
    Column("DURATION", _took),
    Column("ERROR", lambda o: o.get("error"), wide_only=True),
    Column("EXECUTION", lambda o: o.get("executionArn"), wide_only=True),
]


# ---------------------------------------------------------------- events


NODE_POOL_OBJECT = "AWSNodePool/"


def involved_object(event: dict) -> str | None:
    """What an event is about, with its cluster: `AWSCluster/prod`, `AWSNodePool/prod/gpu`."""
    found, cluster = event.get("involvedObject"), event.get("cluster")
    if found and cluster and found.startswith(NODE_POOL_OBJECT) and found.count("/") == 1:
        return f"{NODE_POOL_OBJECT}{cluster}/{found.removeprefix(NODE_POOL_OBJECT)}"
    return found


def node_pool_events(client: ApiClient, ref: Ref) -> list[dict]:
    """A node pool's events (its cluster's, about it)."""
    return [e for e in client.events(ref.cluster or "") if e.get("involvedObject") == f"{NODE_POOL_OBJECT}{ref.name}"]


EVENT_COLUMNS = [
    Column("LAST SEEN", lambda e: age(e.get("lastTimestamp"))),
    Column("TYPE", lambda e: e.get("type")),
    Column("REASON", lambda e: e.get("reason")),
    Column("OBJECT", involved_object),
    Column("COUNT", lambda e: e.get("count", 1)),
    Column("MESSAGE", lambda e: e.get("message")),
    Column("FIRST SEEN", lambda e: age(e.get("firstTimestamp")), wide_only=True),
    Column("OPERATION", lambda e: e.get("operationId"), wide_only=True),
]


def _event_key(event: dict) -> str:
    return f"{involved_object(event)}|{event.get('reason')}|{event.get('message')}"


# ---------------------------------------------------------------- versions and schedules


def _versions(client: ApiClient) -> list[dict]:
    """One row per installable version (GET /v1/serverconfig), newest first."""
    config = client.server_config()
    defaults: dict[str, list[str]] = {}
    for channel in config.get("channels") or []:
        defaults.setdefault(channel["defaultVersion"], []).append(channel["channel"])
    end_of_life = {m["minor"]: m.get("endOfLife") for m in config.get("minors") or []}
    supported = {m["minor"]: m.get("supported", True) for m in config.get("minors") or []}
    rows = []
    for version in config.get("validVersions") or []:
        minor = ".".join(version.split(".")[:2])
        rows.append(
            {
                "version": version,
                "minor": minor,
                "channels": sorted(defaults.get(version, [])),
                "endOfLife": end_of_life.get(minor),
                "supported": supported.get(minor, True),
            }
        )
    return rows


VERSION_COLUMNS = [
    Column("VERSION", lambda v: v["version"]),
    Column("MINOR", lambda v: v["minor"]),
    Column("DEFAULT-FOR", lambda v: ",".join(v["channels"]) or "-"),
    Column("END-OF-LIFE", lambda v: v.get("endOfLife") or "-"),
    Column("STATUS", lambda v: "supported" if v.get("supported", True) else "end of life: upgrade only"),
]

SCHEDULE_COLUMNS = [
    Column("ID", lambda s: s["id"]),
    Column("CLUSTER", lambda s: s.get("cluster")),
    Column("VERSION", lambda s: s.get("version")),
    Column("AT", lambda s: s.get("at")),
    Column("STATE", lambda s: s.get("state")),
    Column("OUTCOME", lambda s: s.get("outcome")),
    Column(
        "NODEPOOLS",
        lambda s: s.get("nodePools") if isinstance(s.get("nodePools"), str) else ",".join(s.get("nodePools") or []),
        wide_only=True,
    ),
    Column("OPERATION", lambda s: s.get("operationId"), wide_only=True),
]


# ---------------------------------------------------------------- the table of kinds


def _incarnation(backup: dict) -> str:
    """Which cluster incarnation a backup is of: the existing cluster's, or a deleted one's."""
    deleted = backup.get("clusterDeletedAt")
    return f"deleted {deleted[:10]}" if backup.get("clusterDeleted") and deleted else "current"


BACKUP_COLUMNS = [
    Column("BACKUP", lambda b: b["backupId"]),
    Column("CLUSTER", _incarnation),
    Column("AGE", lambda b: age(b.get("takenAt"))),
    Column("REVISION", lambda b: b.get("revision")),
    Column("SIZE", lambda b: b.get("size")),
    Column("VERSION", lambda b: b.get("kubernetesVersion") or "-"),
    Column("SHA256", lambda b: b.get("sha256"), wide_only=True),
    Column("UID", lambda b: b.get("uid"), wide_only=True),
    Column("LOCATION", lambda b: b.get("location"), wide_only=True),
]


def _backup_name(backup: dict) -> str:
    """`-o name`: a deleted incarnation's backup as `UID/ID` (what `restore --from` reads)."""
    if backup.get("clusterDeleted"):
        return f"backup/{backup['uid']}/{backup['backupId']}"
    return f"backup/{backup['backupId']}"


def cluster_backups(client: ApiClient, ref: Ref, *, all_incarnations: bool = False) -> list[dict]:
    """`get backups CLUSTER`: the name is the cluster's. Once it is deleted, the deleted
    incarnations' backups; while it exists, its own (and, with `all_incarnations`, theirs after)."""
    listing = client.backup_listing(check_name("cluster", ref.name or ""), all_incarnations=all_incarnations)
    hidden = [i for i in listing.get("earlierIncarnations") or [] if not i.get("listed")]
    if hidden:
        count = sum(i.get("backups", 0) for i in hidden)
        click.echo(
            f"note: {len(hidden)} deleted cluster(s) named {ref.name} left {count} backup(s): "
            f"kubestep get backups {ref.name} --all-incarnations",
            err=True,
        )
    return listing["items"]


def with_all_incarnations(kind: Kind) -> Kind:
    """The backups kind listing every incarnation's (`get backups CLUSTER --all-incarnations`)."""
    return replace(
        kind,
        list_items=lambda client, cluster: cluster_backups(client, Ref(None, cluster), all_incarnations=True),
        list_named=lambda client, ref: cluster_backups(client, ref, all_incarnations=True),
    )


KINDS: list[Kind] = [
    Kind(
        "cluster",
        "clusters",
        ("cl", "awscluster", "awsclusters"),
        CLUSTER_COLUMNS,
        name_of=lambda c: f"awscluster/{c['metadata']['name']}",
        key_of=lambda c: c["metadata"]["name"],
        list_items=lambda client, _cluster: client.list_clusters(),
        get_item=lambda client, ref: client.get_cluster(ref.name or ""),
    ),
    Kind(
        "nodepool",
        "nodepools",
        ("np", "awsnodepool", "awsnodepools"),
        NODE_POOL_COLUMNS,
        name_of=lambda p: f"awsnodepool/{_pool_cluster(p)}/{p['metadata']['name']}",
        key_of=lambda p: f"{_pool_cluster(p)}/{p['metadata']['name']}",
        list_items=_list_pools,
        get_item=lambda client, ref: client.get_node_pool(ref.cluster or "", ref.name or ""),
        scoped=True,
    ),
    Kind(
        "operation",
        "operations",
        ("op", "ops"),
        OPERATION_COLUMNS,
        name_of=lambda o: f"operation/{o['id']}",
        key_of=lambda o: o["id"],
        list_items=lambda client, cluster: client.list_operations(cluster),
        get_item=lambda client, ref: client.operation(ref.name or ""),
    ),
    Kind(
        "event",
        "events",
        ("ev",),
        EVENT_COLUMNS,
        name_of=lambda e: f"event/{e.get('reason')}",
        key_of=_event_key,
        list_items=lambda client, cluster: client.events(cluster or ""),
        scoped=True,
        needs_cluster_to_list=True,
        list_named=node_pool_events,
    ),
    Kind(
        "backup",
        "backups",
        ("bk",),
        BACKUP_COLUMNS,
        name_of=lambda b: (
            f"backup/{b['uid']}/{b['backupId']}" if b.get("clusterDeleted") else f"backup/{b['backupId']}"
        ),
        key_of=lambda b: f"{b['uid']}/{b['backupId']}",
        list_items=lambda client, cluster: cluster_backups(client, Ref(None, cluster)),
        needs_cluster_to_list=True,
        list_named=cluster_backups,
    ),
    Kind(
        "version",
        "versions",
        ("serverconfig",),
        VERSION_COLUMNS,
        name_of=lambda v: f"version/{v['version']}",
        key_of=lambda v: v["version"],
        list_items=lambda client, _cluster: _versions(client),
        warnings=lambda client: end_of_life.warnings(client.server_config()),
    ),
    Kind(
        "schedule",
        "schedules",
        ("sched",),
        SCHEDULE_COLUMNS,
        name_of=lambda s: f"schedule/{s['id']}",
        key_of=lambda s: s["id"],
        list_items=lambda client, cluster: client.list_schedules(cluster),
        get_item=lambda client, ref: client.get_schedule(ref.name or ""),
    ),
]
BY_NAME: dict[str, Kind] = {name: kind for kind in KINDS for name in kind.names}


def kind_named(name: str) -> Kind:
    kind = BY_NAME.get(name.lower())
    if kind is None:
        known = ", ".join(k.plural for k in KINDS)
        near = {BY_NAME[n].singular for n in close_matches(name, BY_NAME)}
        hint = did_you_mean(name, near) if near else ""
        raise InputError(f"unknown resource type {name[:40]!r}{hint} (known: {known})")
    return kind


MAX_NAME_LENGTH = 40


def check_name(what: str, name: str) -> str:
    """A cluster's or node pool's name, or InputError saying the rule (before any request)."""
    if len(name) <= MAX_NAME_LENGTH and re.fullmatch(NAME_PATTERN, name):
        return name
    from kubestep.validation import pattern_rule  # the domain's models: only for the error's words

    hint = "; a node pool is named CLUSTER/POOL" if what == "cluster" and "/" in name else ""
    raise InputError(
        f"{name[:80]!r} is not a {what} name: {pattern_rule(NAME_PATTERN)}, at most {MAX_NAME_LENGTH} characters{hint}"
    )


def refs(kind: Kind, names: tuple[str, ...], cluster: str | None) -> list[Ref]:
    """`prod/general` or `general -c prod` for cluster-scoped kinds (node pools, and events, whose
    names are node pools'); plain names otherwise."""
    if cluster:
        check_name("cluster", cluster)
    if not kind.scoped:
        if cluster and kind.singular == "cluster":
            raise InputError("-c/--cluster selects the cluster of node pools, events and operations, not of clusters")
        if kind.singular == "cluster":
            for name in names:
                check_name("cluster", name)
        return [Ref(cluster, name) for name in names]
    found = []
    for name in names:
        if "/" in name:
            owner, _, short = name.partition("/")
            if not owner or not short or "/" in short:
                raise InputError(f"{name[:80]!r}: name a {kind.singular} as CLUSTER/NAME")
            if cluster and cluster != owner:
                raise InputError(f"{name[:80]!r} is in cluster {owner!r}, but -c says {cluster!r}")
            found.append(Ref(check_name("cluster", owner), check_name("node pool", short)))
        elif cluster:
            found.append(Ref(cluster, check_name("node pool", name)))
        else:
            raise InputError(f"{name[:80]!r}: name the cluster too: CLUSTER/{name[:40]} or -c CLUSTER")
    return found


def completions(ctx: click.Context, kind: Kind, cluster: str | None, incomplete: str) -> list[str]:
    """Names for shell completion (best effort: nothing when the API is out of reach)."""
    from kubestep.cli.target import client

    api = client(ctx)
    if kind.scoped and kind.singular == "nodepool":
        return [kind.key_of(p) for p in _list_pools(api, cluster) if kind.key_of(p).startswith(incomplete)]
    if kind.needs_cluster_to_list and not cluster:
        return []
    return [kind.key_of(item) for item in kind.list_items(api, cluster) if kind.key_of(item).startswith(incomplete)]


def cluster_names(ctx: click.Context, incomplete: str) -> list[str]:
    from kubestep.cli.target import client

    return [c["metadata"]["name"] for c in client(ctx).list_clusters() if c["metadata"]["name"].startswith(incomplete)]
