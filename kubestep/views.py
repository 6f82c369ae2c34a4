"""The API representation of clusters, node pools and events (what `-o json` prints)."""

from __future__ import annotations

from typing import Any

from kubestep import certificates, join_tokens, versions
from kubestep.models import dump
from kubestep.store import BootstrapReport, ClusterRecord, EtcdMember, Event, NodePoolRecord, Store, iso, now, parse_iso

# What the API sets and a manifest never says: `kubestep get cluster prod -o yaml | kubestep apply
# -f -` ignores these, as kubectl ignores status and the server's metadata on apply. (A uid, when
# given, is still checked: it names the incarnation the file was read from.)
SERVER_SET_FIELDS: tuple[tuple[str, ...], ...] = (("status",), ("metadata", "uid"), ("metadata", "createdAt"))


def _ids(resources: dict) -> dict[str, str]:
    return {k: v.id for k, v in resources.items()}


def node_pool_view(pool: NodePoolRecord) -> dict[str, Any]:
    return {
        "apiVersion": "kubestep.io/v1",
        "kind": "AWSNodePool",
        "metadata": {"name": pool.name, "createdAt": pool.created_at},
        "spec": dump(pool.spec)["spec"],
        "status": {
            "phase": pool.phase,
            "version": pool.version,
            "autoScalingGroup": pool.asg_name,
            "launchTemplateId": pool.launch_template_id,
            "zone": pool.zone,
            "subnetId": pool.subnet_id,
            "readyNodes": pool.ready_nodes,
            "targetVersion": pool.target_spec.spec.version if pool.target_spec else None,
            "warnings": _version_warnings(pool.version),
        },
    }


def _version_warnings(version: str | None) -> list[str]:
    warning = versions.end_of_life_warning(version) if version else None
    return [warning] if warning else []


def replica_view(member: EtcdMember, report: BootstrapReport | None, *, deleting: bool = False) -> dict[str, Any]:
    expiries = certificates.earliest({member.index: report}) if report else []
    return {
        "index": member.index,
        "zone": member.zone,
        "subnetId": member.subnet_id,
        "autoScalingGroup": member.asg_name,
        "launchTemplateId": member.launch_template_id,
        "instanceId": member.instance_id or (report.instance_id if report else None),
        "etcdVolumeId": member.volume_id,
        "bootstrap": report.status if report else None,
        # What the instance itself says it installed (its bootstrap report).
        "version": report.version if report else None,
        "launchTemplateVersion": member.launch_template_version,
        # It passed the health gate on an older spec than its template now launches: an update
        # is replacing the replica, or will (its old instance's report still reads `ok`).
        "updatePending": bool(member.healthy_spec and member.launch_spec != member.healthy_spec),
        # Its create is rolling back: the replica's resources are being deleted, whatever its
        # last report said.
        "deleting": deleting,
        "reportedAt": report.reported_at if report else None,
        "adminsGeneration": report.checks.get("adminsGeneration") if report else None,
        "adminsError": report.checks.get("adminsError") if report else None,
        "certificatesExpireAt": iso(expiries[0].expires_at) if expiries else None,
    }


def _network_vpc(store: Store) -> str | None:
    network = store.network.get()
    return network.vpc_id if network else None


def admins_view(store: Store, record: ClusterRecord, reports: dict[int, BootstrapReport], detail: bool) -> dict:
    """Who is cluster-admin; in detail, the published generation and how many replicas serve it."""
    view: dict[str, Any] = {
        "identityARNs": list(record.spec.spec.authentication.aws_iam.admin_identity_arns),
        "creator": record.creator,
    }
    if detail:
        published = store.admins.get(record.uid)
        generation = published.generation if published else None
        served = [r.checks.get("adminsGeneration") or 0 for r in reports.values()]
        view["generation"] = generation
        view["appliedBy"] = len([g for g in served if generation is not None and g >= generation])
    return view


def join_token_view(record: ClusterRecord) -> dict[str, Any] | None:
    token = record.join_token
    if token is None:
        return None
    return {
        "createdAt": token.created_at,
        "expiresAt": token.expires_at,
        "accepted": token.accepted,
        "rotatesAfter": iso(parse_iso(token.created_at) + join_tokens.ROTATE_AFTER),
    }


def _rolling_back(store: Store, record: ClusterRecord) -> bool:
    """The cluster's current operation failed (or was cancelled) and is deleting what it created."""
    if not record.current_operation:
        return False
    operation = store.operations.get(record.current_operation)
    return bool(operation and operation.status == "RUNNING" and operation.compensating)


def cluster_view(store: Store, record: ClusterRecord, *, detail: bool = True) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": record.phase,
        "endpoint": record.endpoint,
        "version": record.version,
        "targetVersion": record.target_spec.spec.control_plane.version if record.target_spec else None,
        "uid": record.uid,
        # Public: kubeconfig's certificate-authority-data; nodes pin its hash when they join.
        "clusterCaCertificate": record.cluster_ca_certificate,
        "generation": record.generation,
        "currentOperation": record.current_operation,
        "lastError": record.last_error.to_item() if record.last_error else None,
        "resources": _ids(record.resources),
        "drift": dict(record.drift),
        "warnings": _version_warnings(record.version),
    }
    # The list shows replicas and node pools too (the CLI's REPLICAS column, `get -o json`):
    # three queries per cluster; the etcd configuration and the administrators item are left to
    # the detail view.
    reports = store.reports.replicas(record.uid)
    rolling_back = _rolling_back(store, record)
    status["rollingBack"] = rolling_back
    status["admins"] = admins_view(store, record, reports, detail)
    status["joinToken"] = join_token_view(record)
    status["certificates"] = [e.view(now()) for e in certificates.earliest(reports)]
    control_plane: dict[str, Any] = {
        "replicas": [
            replica_view(m, reports.get(m.index), deleting=rolling_back) for m in store.etcd.members(record.name)
        ]
    }
    if detail:
        config = store.etcd.config(record.name)
        control_plane["etcd"] = config.to_item() if config else None
        status["vpcId"] = record.spec.spec.networking.vpc_id or _network_vpc(store)
    status["controlPlane"] = control_plane
    status["nodePools"] = [node_pool_view(p) for p in store.node_pools.list(record.name)]
    return {
        "apiVersion": "kubestep.io/v1",
        "kind": "AWSCluster",
        "metadata": {"name": record.name, "uid": record.uid, "createdAt": record.created_at},
        "spec": dump(record.spec)["spec"],
        "status": status,
    }


def event_view(event: Event, cluster: str | None = None) -> dict[str, Any]:
    return {
        "cluster": cluster,
        "type": event.type,
        "reason": event.reason,
        "message": event.message,
        "involvedObject": event.involved_object,
        "count": event.count,
        "firstTimestamp": event.first_timestamp,
        "lastTimestamp": event.last_timestamp,
        "operationId": event.operation_id,
        "uid": event.uid,
    }
