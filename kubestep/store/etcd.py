"""The etcd configuration of each cluster: one item per member (parallel replica branches never
overwrite each other) and one cluster-level item."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from kubestep.errors import NotFound
from kubestep.store import keys
from kubestep.store.clusters import stored_form
from kubestep.store.records import EtcdConfig, EtcdMember, Resource, ResourceRef
from kubestep.store.table import ConditionFailed, Table


class EtcdRepository:
    def __init__(self, table: Table):
        self._table = table

    def plan_member(self, cluster: str, member: EtcdMember) -> EtcdMember:
        """Record a member unless it exists; re-planning keeps what an earlier run recorded."""
        self._table.put_new(
            {"pk": keys.cluster_pk(cluster), "sk": keys.etcd_member_sk(member.index), **member.to_item()}
        )
        return self.require_member(cluster, member.index)

    def get_member(self, cluster: str, index: int) -> EtcdMember | None:
        return EtcdMember.from_item(self._table.get(keys.cluster_pk(cluster), keys.etcd_member_sk(index)))

    def require_member(self, cluster: str, index: int) -> EtcdMember:
        member = self.get_member(cluster, index)
        if member is None:
            raise NotFound(f"replica {index} of cluster {cluster!r} was never planned")
        return member

    def members(self, cluster: str) -> list[EtcdMember]:
        items = self._table.query_all(
            KeyConditionExpression=Key("pk").eq(keys.cluster_pk(cluster))
            & Key("sk").begins_with(keys.ETCD_MEMBER_PREFIX),
            ConsistentRead=True,
        )
        return sorted((m for m in (EtcdMember.from_item(i) for i in items) if m is not None), key=lambda m: m.index)

    def update_member(self, cluster: str, index: int, **fields: Any) -> None:
        """Set the member's fields (its new item is not sent back: no caller reads it)."""
        values = {EtcdMember.attribute(k): stored_form(v) for k, v in fields.items()}
        try:
            self._table.update(
                keys.cluster_pk(cluster), keys.etcd_member_sk(index), values, Attr("pk").exists(), new_item=False
            )
        except ConditionFailed:
            raise NotFound(f"replica {index} of cluster {cluster!r} was never planned") from None

    def record_resource(
        self, cluster: str, index: int, logical: Resource, resource_id: str, operation_id: str, **fields: Any
    ) -> None:
        """Remember a new AWS id of the member's, with the operation that created it; ``fields``:
        the member's fields that go with it, set in the same write (``update_member``'s)."""
        ref = ResourceRef(id=resource_id, created_by=operation_id).to_item()
        values = {f"resources.{logical.value}": ref}
        if not fields:
            self._table.update(keys.cluster_pk(cluster), keys.etcd_member_sk(index), values, new_item=False)
            return
        values |= {EtcdMember.attribute(k): stored_form(v) for k, v in fields.items()}
        try:
            self._table.update(
                keys.cluster_pk(cluster), keys.etcd_member_sk(index), values, Attr("pk").exists(), new_item=False
            )
        except ConditionFailed:
            raise NotFound(f"replica {index} of cluster {cluster!r} was never planned") from None

    def put_config(self, cluster: str, config: EtcdConfig) -> EtcdConfig:
        self._table.put_new({"pk": keys.cluster_pk(cluster), "sk": keys.ETCD_CONFIG_SK, **config.to_item()})
        return self.config(cluster) or config

    def config(self, cluster: str) -> EtcdConfig | None:
        return EtcdConfig.from_item(self._table.get(keys.cluster_pk(cluster), keys.ETCD_CONFIG_SK))

    def set_cluster_token(self, cluster: str, token: str) -> None:
        """The token the members formed their cluster with last (a restore mints a new one)."""
        self._table.update(
            keys.cluster_pk(cluster),
            keys.ETCD_CONFIG_SK,
            {EtcdConfig.attribute("initial_cluster_token"): token},
            Attr("pk").exists(),
            new_item=False,
        )
