"""The API representation of clusters, node pools and events (what `-o json` prints)."""

from __future__ import annotations

from typing import Any

from kubestep.registry import Registry


def _ids(resources: dict | None) -> dict[str, str]:
    return {k: v["id"] for k, v in (resources or {}).items() if isinstance(v, dict) and "id" in v}


def node_pool_view(pool: dict) -> dict[str, Any]:
    return {
        "apiVersion": "kubestep.io/v1",
        "kind": "AWSNodePool",
        "metadata": {"name": pool["name"], "createdAt": pool.get("createdAt")},
        "spec": pool["spec"]["spec"],
        "status": {
            "phase": pool.get("phase"),
            "version": pool.get("version"),
            "autoScalingGroup": pool.get("asgName"),
            "launchTemplateId": pool.get("launchTemplateId"),
            "zone": pool.get("zone"),
            "subnetId": pool.get("subnetId"),
            "readyNodes": pool.get("readyNodes"),
        },
    }


def replica_view(member: dict, reports: dict[str, dict]) -> dict[str, Any]:
    report = reports.get(f"REPLICA#{member['index']}") or {}
    return {
        "index": member["index"],
        "zone": member.get("zone"),
        "subnetId": member.get("subnetId"),
        "autoScalingGroup": member.get("asgName"),
        "launchTemplateId": member.get("launchTemplateId"),
        "instanceId": member.get("instanceId") or report.get("instanceId"),
        "etcdVolumeId": member.get("volumeId"),
        "bootstrap": report.get("status"),
    }


def cluster_view(registry: Registry, record: dict, *, detail: bool = True) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": record.get("phase"),
        "endpoint": record.get("endpoint"),
        "version": record.get("version"),
        "uid": record.get("uid"),
        "generation": record.get("generation"),
        "currentOperation": record.get("currentOperation"),
        "lastError": record.get("lastError"),
        "resources": _ids(record.get("resources")),
    }
    # The list shows replicas and node pools too (the CLI's REPLICAS column, `get -o json`):
    # three queries per cluster; only the etcd configuration is left to the detail view.
    reports = registry.bootstrap_reports(record["uid"]) if record.get("uid") else {}
    control_plane: dict[str, Any] = {
        "replicas": [replica_view(m, reports) for m in registry.list_etcd_members(record["name"])]
    }
    if detail:
        control_plane["etcd"] = registry.get_etcd_config(record["name"])
    status["controlPlane"] = control_plane
    status["nodePools"] = [node_pool_view(p) for p in registry.list_node_pools(record["name"])]
    return {
        "apiVersion": "kubestep.io/v1",
        "kind": "AWSCluster",
        "metadata": {"name": record["name"], "uid": record.get("uid"), "createdAt": record.get("createdAt")},
        "spec": record["spec"]["spec"],
        "status": status,
    }


def event_view(event: dict) -> dict[str, Any]:
    return {
        "type": event.get("type"),
        "reason": event.get("reason"),
        "message": event.get("message"),
        "involvedObject": event.get("involvedObject"),
        "count": event.get("count", 1),
        "firstTimestamp": event.get("firstTimestamp"),
        "lastTimestamp": event.get("lastTimestamp"),
        "operationId": event.get("operationId"),
    }
