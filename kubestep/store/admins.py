"""The cluster's administrators as its control plane reads them (docs/contracts.md, "Cluster
administrators"): one item per cluster incarnation under `ACCESS#<uid>`, written only by the
management service, read by the control-plane replicas, which turn it into aws-iam-authenticator's
mapping. A change bumps its `generation`; the replicas report the generation they serve."""

from __future__ import annotations

from boto3.dynamodb.conditions import Attr

from kubestep.cluster_admins import Mapping
from kubestep.store import keys
from kubestep.store.records import ClusterAdmins
from kubestep.store.table import ConditionFailed, Table, iso

ATTEMPTS = 5


class ClusterAdminsRepository:
    def __init__(self, table: Table):
        self._table = table

    def get(self, uid: str) -> ClusterAdmins | None:
        return ClusterAdmins.from_item(self._table.get(keys.cluster_access_pk(uid), keys.ADMINS_SK))

    def publish(self, uid: str, mapping: Mapping) -> tuple[ClusterAdmins, bool]:
        """Make the item say `mapping`; (the item, whether it changed). The same mapping again
        writes nothing, so a re-run keeps its generation."""
        for _ in range(ATTEMPTS):
            current = self.get(uid)
            wanted = (list(mapping.role_arns), list(mapping.user_arns))
            if current is not None and (current.role_arns, current.user_arns) == wanted:
                return current, False
            generation = (current.generation if current else 0) + 1
            item = ClusterAdmins(generation=generation, role_arns=wanted[0], user_arns=wanted[1], updated_at=iso())
            condition = Attr("pk").not_exists() if current is None else Attr("generation").eq(current.generation)
            try:
                self._table.put({"pk": keys.cluster_access_pk(uid), "sk": keys.ADMINS_SK, **item.to_item()}, condition)
            except ConditionFailed:
                continue  # another writer moved it: look again
            return item, True
        raise ConditionFailed(f"the administrators item of {uid} kept changing")

    def delete(self, uid: str) -> None:
        self._table.delete(keys.cluster_access_pk(uid), keys.ADMINS_SK)
