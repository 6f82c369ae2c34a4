"""The bootstrap report an instance writes when its boot ends (docs/contracts.md); the health
gate reads it. The instance's script writes the same item with the AWS CLI; the local instance
simulator writes it with `record_report`.

Item: pk `BOOTSTRAP#<uid>`, sk `REPLICA#<index>` (control plane) or `NODE#<instance-id>`;
`status` `ok` | `failed:<phase>`, `instanceId`, `reportedAt` (ISO 8601 UTC), `version` (the
Kubernetes version installed, once known), `checks` (control plane: `etcdMembers`,
`etcdHealthy`, `apiserverReady`; nodes: `nodeReady`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3

CONTROL_PLANE_CHECKS = ("etcdMembers", "etcdHealthy", "apiserverReady")
NODE_CHECKS = ("nodeReady",)


def report_key(role: str, replica: int | None = None, instance_id: str | None = None) -> str:
    return f"REPLICA#{replica}" if role == "control-plane" else f"NODE#{instance_id}"


def _attribute(value: bool | int) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    return {"N": str(value)}


def report_item(
    uid: str,
    key: str,
    status: str,
    instance_id: str,
    *,
    reported_at: str | None = None,
    version: str | None = None,
    checks: dict[str, bool | int] | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": f"BOOTSTRAP#{uid}"},
        "sk": {"S": key},
        "status": {"S": status},
        "instanceId": {"S": instance_id},
        "reportedAt": {"S": reported_at or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")},
    }
    if version:
        item["version"] = {"S": version}
    if checks is not None:
        item["checks"] = {"M": {name: _attribute(value) for name, value in checks.items()}}
    return item


def record_report(
    table_name: str,
    uid: str,
    role: str,
    key: str,
    status: str,
    instance_id: str,
    *,
    dynamodb: Any = None,
    version: str | None = None,
    checks: dict[str, bool | int] | None = None,
) -> None:
    client = dynamodb or boto3.client("dynamodb")
    item = report_item(uid, key, status, instance_id, version=version, checks=checks)
    client.put_item(TableName=table_name, Item=item)
