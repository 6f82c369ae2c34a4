"""Every AWS resource a cluster incarnation owns, kind by kind (`kubestep.resources.kinds`):
what the demo prints, what `diagnose` collects, what a create's rollback checks is gone, and
what the tests use to prove a delete or a rollback left nothing behind."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubestep.resources import kinds
from kubestep.resources.kind import Scope

if TYPE_CHECKING:
    from kubestep.store import Store


def cluster_resources(
    uid: str, clients: Any, store: Store | None = None, bucket: str | None = None
) -> dict[str, list[dict]]:
    """`clients(service)` returns a boto3 client. Terminated instances don't count; the pending
    schedules, which only the store's records name, only with `store`; the bootstrap bundles
    only with the service's `bucket`."""
    found = kinds.find(Scope(clients, store=store, bucket=bucket), uid)
    return {kind: [resource.view() for resource in resources] for kind, resources in found.items()}


def count(resources: dict[str, list[dict]]) -> int:
    return sum(len(v) for v in resources.values())
