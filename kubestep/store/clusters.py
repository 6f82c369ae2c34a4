"""Cluster records, and the uid each cluster incarnation owns.

A uid is minted once per incarnation and claimed with a `UID#<uid>` item in the same
transaction that creates the record: no two records can ever share a uid, whatever an
execution's input says (anyone allowed to start one may type any JSON)."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from kubestep.errors import AlreadyExists, NotFound
from kubestep.store import keys
from kubestep.store.records import ClusterRecord, NetworkRecord, NodePoolRecord, Operation, Resource, ResourceRef
from kubestep.store.table import ConditionFailed, Table, iso

NEW_ITEM = "attribute_not_exists(pk)"


class ClusterRepository:
    def __init__(self, table: Table):
        self._table = table

    def get(self, name: str) -> ClusterRecord | None:
        return ClusterRecord.from_item(self._table.get(keys.cluster_pk(name), keys.CLUSTER_SK))

    def require(self, name: str) -> ClusterRecord:
        cluster = self.get(name)
        if cluster is None:
            raise NotFound(f"cluster {name!r} does not exist")
        return cluster

    def require_with_operation_and_network(
        self, name: str, operation_id: str
    ) -> tuple[ClusterRecord, Operation | None, NetworkRecord | None]:
        """The record, the running operation's item (None without an operation id, or when it
        is gone) and the management service's network item (None: none) in one consistent
        BatchGetItem: every cluster step reads the first two as it starts (the operation to stop
        at a cancel), half of them the network too; apart, they were a third of a create's
        DynamoDB reads."""
        item_keys = [(keys.cluster_pk(name), keys.CLUSTER_SK), (keys.NETWORK_PK, keys.NETWORK_SK)]
        if operation_id:
            item_keys.append((keys.operation_pk(operation_id), keys.OPERATION_SK))
        cluster, network, *operation = self._table.get_many(item_keys)
        record = ClusterRecord.from_item(cluster)
        if record is None:
            raise NotFound(f"cluster {name!r} does not exist")
        return record, Operation.from_item(operation[0]) if operation else None, NetworkRecord.from_item(network)

    def owner_of_uid(self, uid: str) -> str | None:
        """The cluster name that owns `uid`, if any (the uid claim outlives nothing: it is
        deleted with the record)."""
        item = self._table.get(keys.uid_pk(uid), keys.UID_SK)
        return item["cluster"] if item else None

    def create(self, record: ClusterRecord, node_pools: list[NodePoolRecord]) -> ClusterRecord:
        """The record, its uid claim and its node pools, all or nothing."""
        stamp = iso()
        record = record.model_copy(update={"created_at": stamp, "updated_at": stamp})
        item = {
            "pk": keys.cluster_pk(record.name),
            "sk": keys.CLUSTER_SK,
            "gsi1pk": keys.CLUSTERS_INDEX,
            "gsi1sk": record.name,
            **record.to_item(),
        }
        uid_claim = {"pk": keys.uid_pk(record.uid), "sk": keys.UID_SK, "cluster": record.name, "createdAt": stamp}
        puts: list[tuple[dict, Any]] = [(item, NEW_ITEM), (uid_claim, NEW_ITEM)]
        for pool in node_pools:
            puts.append((node_pool_item(pool.model_copy(update={"created_at": stamp, "updated_at": stamp})), None))
        try:
            self._table.transact_put(puts)
        except ConditionFailed:
            owner = self.owner_of_uid(record.uid)
            if owner and owner != record.name:
                raise AlreadyExists(f"uid {record.uid} already belongs to cluster {owner!r}") from None
            raise AlreadyExists(f"cluster {record.name!r} already exists") from None
        return record

    def update(self, name: str, **fields: Any) -> ClusterRecord:
        """Set fields (Python names); None removes the attribute. NotFound if the record is gone."""
        values = {ClusterRecord.attribute(k): stored_form(v) for k, v in fields.items()}
        values.setdefault("updatedAt", iso())
        try:
            item = self._table.update(keys.cluster_pk(name), keys.CLUSTER_SK, values, Attr("pk").exists())
        except ConditionFailed:
            raise NotFound(f"cluster {name!r} does not exist") from None
        return ClusterRecord.from_item(item)  # type: ignore[return-value]

    def update_if_operation(self, name: str, operation_id: str, **fields: Any) -> ClusterRecord | None:
        """Update only while `operation_id` is the cluster's current operation."""
        values = {ClusterRecord.attribute(k): stored_form(v) for k, v in fields.items()}
        values.setdefault("updatedAt", iso())
        try:
            item = self._table.update(
                keys.cluster_pk(name), keys.CLUSTER_SK, values, Attr("currentOperation").eq(operation_id)
            )
        except ConditionFailed:
            return None
        return ClusterRecord.from_item(item)

    def record_resource(self, name: str, logical: Resource, resource_id: str, operation_id: str) -> None:
        """Remember a new AWS id right after creating it, with the operation that created it
        (compensation deletes only what its own operation created)."""
        self.record_resources(name, {logical: resource_id}, operation_id)

    def record_resources(self, name: str, resource_ids: dict[Resource, str], operation_id: str) -> None:
        """``record_resource`` of each, in one write."""
        values = {
            f"resources.{logical.value}": ResourceRef(id=resource_id, created_by=operation_id).to_item()
            for logical, resource_id in resource_ids.items()
        }
        self._table.update(keys.cluster_pk(name), keys.CLUSTER_SK, values, new_item=False)

    def record_image(self, name: str, arch: str, image_id: str) -> ClusterRecord:
        """Pin the image of an architecture; the first writer wins (parallel branches agree)."""
        self._table.update(
            keys.cluster_pk(name), keys.CLUSTER_SK, {"images": {}}, if_not_exists=("images",), new_item=False
        )
        item = self._table.update(
            keys.cluster_pk(name), keys.CLUSTER_SK, {f"images.{arch}": image_id}, if_not_exists=(f"images.{arch}",)
        )
        return ClusterRecord.from_item(item)  # type: ignore[return-value]

    def set_drift(self, name: str, drift: dict[str, str]) -> None:
        self._table.update(keys.cluster_pk(name), keys.CLUSTER_SK, {"drift": drift}, new_item=False)

    def list(self, limit: int = 100, start: str | None = None) -> tuple[list[ClusterRecord], str | None]:
        kwargs: dict[str, Any] = {
            "IndexName": "gsi1",
            "KeyConditionExpression": Key("gsi1pk").eq(keys.CLUSTERS_INDEX),
            "Limit": limit,
        }
        if start:
            kwargs["ExclusiveStartKey"] = {
                "gsi1pk": keys.CLUSTERS_INDEX,
                "gsi1sk": start,
                "pk": keys.cluster_pk(start),
                "sk": keys.CLUSTER_SK,
            }
        items, last = self._table.query_page(**kwargs)
        records = [ClusterRecord.from_item(i) for i in items]
        return [r for r in records if r is not None], (last["gsi1sk"] if last else None)

    def all(self) -> list[ClusterRecord]:
        items = self._table.query_all(IndexName="gsi1", KeyConditionExpression=Key("gsi1pk").eq(keys.CLUSTERS_INDEX))
        return [r for r in (ClusterRecord.from_item(i) for i in items) if r is not None]

    def delete_everything(self, name: str, uid: str) -> int:
        """Everything under the cluster's key (record, node pools, etcd items, lock), its uid
        claim and its administrators item; events live under their own key and stay readable.
        The cluster record goes last: a delete that fails half-way keeps it, so a re-run finds
        the cluster and finishes."""
        if self.owner_of_uid(uid) in (name, None):
            self._table.delete(keys.cluster_access_pk(uid), keys.ADMINS_SK)
        self._table.delete(keys.uid_pk(uid), keys.UID_SK, Attr("cluster").eq(name))
        items = self._table.query_all(KeyConditionExpression=Key("pk").eq(keys.cluster_pk(name)), ConsistentRead=True)
        record = [i for i in items if i["sk"] == keys.CLUSTER_SK]
        count = self._table.delete_all([i for i in items if i["sk"] != keys.CLUSTER_SK])
        return count + self._table.delete_all(record)


def node_pool_item(pool: NodePoolRecord) -> dict:
    return {"pk": keys.cluster_pk(pool.cluster), "sk": keys.node_pool_sk(pool.name), **pool.to_item()}


def stored_form(value: Any) -> Any:
    """Records and models as their stored form."""
    if hasattr(value, "to_item"):
        return value.to_item()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, dict):
        return {k: stored_form(v) for k, v in value.items()}
    return value
