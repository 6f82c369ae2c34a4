"""What instances write about themselves with their instance role (docs/contracts.md):
bootstrap reports read by the health gate, and the claim that makes `kubeadm init` run once
per cluster. Items live under `BOOTSTRAP#<uid>`, the only partition an instance role may write
(`dynamodb:LeadingKeys`)."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key

from kubestep.store import keys
from kubestep.store.records import BootstrapReport, InitClaim
from kubestep.store.table import Table, iso


class ReportRepository:
    def __init__(self, table: Table):
        self._table = table

    def _report(self, item: dict | None) -> BootstrapReport | None:
        report = BootstrapReport.from_item(item)
        if report is not None and item is not None:
            report = report.model_copy(update={"key": item["sk"]})
        return report

    def all(self, uid: str) -> list[BootstrapReport]:
        items = self._table.query_all(KeyConditionExpression=Key("pk").eq(keys.bootstrap_pk(uid)), ConsistentRead=True)
        return [r for r in (self._report(i) for i in items if i["sk"] != keys.INIT_CLAIM_SK) if r is not None]

    def replica(self, uid: str, index: int) -> BootstrapReport | None:
        return self._report(self._table.get(keys.bootstrap_pk(uid), keys.replica_report_sk(index)))

    def node(self, uid: str, instance_id: str) -> BootstrapReport | None:
        return self._report(self._table.get(keys.bootstrap_pk(uid), keys.node_report_sk(instance_id)))

    def replicas(self, uid: str) -> dict[int, BootstrapReport]:
        """Control-plane reports by replica index."""
        return {
            int(r.key.removeprefix(keys.REPLICA_REPORT_PREFIX)): r
            for r in self.all(uid)
            if r.key and r.key.startswith(keys.REPLICA_REPORT_PREFIX)
        }

    def nodes(self, uid: str) -> dict[str, BootstrapReport]:
        """Node reports by instance id."""
        return {r.instance_id or "": r for r in self.all(uid) if r.key and r.key.startswith(keys.NODE_REPORT_PREFIX)}

    def write(
        self,
        uid: str,
        *,
        status: str,
        instance_id: str,
        replica: int | None = None,
        version: str | None = None,
        checks: dict[str, Any] | None = None,
    ) -> None:
        """What an instance writes (the local instance simulator plays that part)."""
        sk = keys.replica_report_sk(replica) if replica is not None else keys.node_report_sk(instance_id)
        report = BootstrapReport(
            status=status, instance_id=instance_id, reported_at=iso(), version=version, checks=checks or {}
        )
        item = report.to_item()
        item.pop("key", None)
        self._table.put({"pk": keys.bootstrap_pk(uid), "sk": sk, **item})

    def init_claim(self, uid: str) -> InitClaim | None:
        return InitClaim.from_item(self._table.get(keys.bootstrap_pk(uid), keys.INIT_CLAIM_SK))

    def claim_init(self, uid: str, instance_id: str, replica: int | None) -> bool:
        """True for exactly one caller per cluster: that one runs `kubeadm init`."""
        claim = InitClaim(instance_id=instance_id, replica=replica, claimed_at=iso())
        return self._table.put_new({"pk": keys.bootstrap_pk(uid), "sk": keys.INIT_CLAIM_SK, **claim.to_item()})

    def mark_initialized(self, uid: str) -> None:
        self._table.update(keys.bootstrap_pk(uid), keys.INIT_CLAIM_SK, {"status": "initialized"})

    def delete_all(self, uid: str) -> int:
        items = self._table.query_all(KeyConditionExpression=Key("pk").eq(keys.bootstrap_pk(uid)))
        return self._table.delete_all(items)


def report_key_prefixes() -> dict[str, str]:
    """The sort-key prefixes the instances' bootstrap script writes (rendered into user-data)."""
    return {"replica": keys.REPLICA_REPORT_PREFIX, "node": keys.NODE_REPORT_PREFIX, "init": keys.INIT_CLAIM_SK}
