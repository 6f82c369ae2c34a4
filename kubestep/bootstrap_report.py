"""The bootstrap report an instance writes when its Kubernetes bootstrap ends
(docs/contracts.md). The health gate reads it; `ok` or `failed:<phase>`."""

from __future__ import annotations

from typing import Any

import boto3

from kubestep.registry import iso


def report_key(role: str, replica: int | None = None, instance_id: str | None = None) -> str:
    return f"REPLICA#{replica}" if role == "control-plane" else f"NODE#{instance_id}"


def record_report(
    table_name: str,
    uid: str,
    role: str,
    key: str,
    status: str,
    instance_id: str,
    *,
    dynamodb: Any = None,
) -> None:
    client = dynamodb or boto3.client("dynamodb")
    client.put_item(
        TableName=table_name,
        Item={
            "pk": {"S": f"BOOTSTRAP#{uid}"},
            "sk": {"S": key},
            "status": {"S": status},
            "instanceId": {"S": instance_id},
            "reportedAt": {"S": iso()},
        },
    )
