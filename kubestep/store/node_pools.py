"""Node-pool records, one item per pool under the cluster's partition."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from kubestep.errors import NotFound
from kubestep.store import keys
from kubestep.store.clusters import node_pool_item, stored_form
from kubestep.store.records import NodePoolRecord, Resource, ResourceRef
from kubestep.store.table import ConditionFailed, Table, iso


class NodePoolRepository:
    def __init__(self, table: Table):
        self._table = table

    def add(self, pool: NodePoolRecord) -> bool:
        """Record a node pool unless one of that name exists; True if it was added."""
        stamp = iso()
        return self._table.put_new(node_pool_item(pool.model_copy(update={"created_at": stamp, "updated_at": stamp})))

    def get(self, cluster: str, pool: str) -> NodePoolRecord | None:
        return NodePoolRecord.from_item(self._table.get(keys.cluster_pk(cluster), keys.node_pool_sk(pool)))

    def require(self, cluster: str, pool: str) -> NodePoolRecord:
        record = self.get(cluster, pool)
        if record is None:
            raise NotFound(f"node pool {pool!r} of cluster {cluster!r} does not exist")
        return record

    def list(self, cluster: str) -> list[NodePoolRecord]:
        items = self._table.query_all(
            KeyConditionExpression=Key("pk").eq(keys.cluster_pk(cluster))
            & Key("sk").begins_with(keys.NODE_POOL_PREFIX),
            ConsistentRead=True,
        )
        return [r for r in (NodePoolRecord.from_item(i) for i in items) if r is not None]

    def update(self, cluster: str, pool: str, **fields: Any) -> NodePoolRecord:
        values = {NodePoolRecord.attribute(k): stored_form(v) for k, v in fields.items()}
        values.setdefault("updatedAt", iso())
        try:
            item = self._table.update(keys.cluster_pk(cluster), keys.node_pool_sk(pool), values, Attr("pk").exists())
        except ConditionFailed:
            raise NotFound(f"node pool {pool!r} of cluster {cluster!r} does not exist") from None
        return NodePoolRecord.from_item(item)  # type: ignore[return-value]

    def record_resource(
        self, cluster: str, pool: str, logical: Resource, resource_id: str, operation_id: str, **fields: Any
    ) -> None:
        """Remember a new AWS id of the pool's, with the operation that created it; ``fields``:
        the pool's fields that go with it, set in the same write (``update``'s)."""
        ref = ResourceRef(id=resource_id, created_by=operation_id).to_item()
        values = {f"resources.{logical.value}": ref}
        if not fields:
            self._table.update(keys.cluster_pk(cluster), keys.node_pool_sk(pool), values, new_item=False)
            return
        values |= {NodePoolRecord.attribute(k): stored_form(v) for k, v in fields.items()}
        values.setdefault("updatedAt", iso())
        try:
            self._table.update(
                keys.cluster_pk(cluster), keys.node_pool_sk(pool), values, Attr("pk").exists(), new_item=False
            )
        except ConditionFailed:
            raise NotFound(f"node pool {pool!r} of cluster {cluster!r} does not exist") from None

    def delete(self, cluster: str, pool: str) -> bool:
        return self._table.delete(keys.cluster_pk(cluster), keys.node_pool_sk(pool))
