"""What instances write about themselves with their instance role (docs/contracts.md):
bootstrap reports read by the health gate, the claim that makes `kubeadm init` run once per
cluster, and the claims that make each cluster-wide upgrade step run once per version. Each kind
has its own partition, because IAM can scope an instance role's items by partition key only
(`dynamodb:LeadingKeys`): the control-plane replicas' reports under `BOOTSTRAP#<uid>`, the init
claim under `BOOTSTRAP#<uid>#INIT`, the version claims under `BOOTSTRAP#<uid>#VERSION`, each
node's report under `BOOTSTRAP#<uid>#NODE#<its instance ARN>` (kubestep/iam_policies.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from boto3.dynamodb.conditions import Key

from kubestep.store import keys
from kubestep.store.records import BootstrapReport, InitClaim, VersionClaim
from kubestep.store.table import Table, iso

# Every attribute an instance writes (the instance roles may write no other: dynamodb:Attributes).
REPORT_ATTRIBUTES = ("pk", "sk", "status", "instanceId", "reportedAt", "source", "version", "checks", "certificates")
INIT_CLAIM_ATTRIBUTES = ("pk", "sk", "status", "replica", "instanceId", "claimedAt", "initializedAt")
# A VersionClaim item's (`UPGRADE#<version>`, `ADDONS#<version>`).
VERSION_CLAIM_ATTRIBUTES = ("pk", "sk", "status", "replica", "instanceId", "claimedAt", "doneAt")
INITIALIZED = "initialized"


class ReportRepository:
    def __init__(self, table: Table):
        self._table = table

    @staticmethod
    def report_of(item: dict | None) -> BootstrapReport | None:
        """The report an item read from the table holds (its `key` the item's sort key)."""
        report = BootstrapReport.from_item(item)
        if report is not None and item is not None:
            report = report.model_copy(update={"key": item["sk"]})
        return report

    def replica(self, uid: str, index: int) -> BootstrapReport | None:
        return self.report_of(self._table.get(keys.bootstrap_pk(uid), keys.replica_report_sk(index)))

    def replicas(self, uid: str) -> dict[int, BootstrapReport]:
        """Control-plane reports by replica index."""
        items = self._table.query_all(KeyConditionExpression=Key("pk").eq(keys.bootstrap_pk(uid)), ConsistentRead=True)
        reports = (self.report_of(i) for i in items if i["sk"].startswith(keys.REPLICA_REPORT_PREFIX))
        return {int(r.key.removeprefix(keys.REPLICA_REPORT_PREFIX)): r for r in reports if r is not None and r.key}

    def node(self, uid: str, instance_id: str, instance_arn: str) -> BootstrapReport | None:
        return self.nodes(uid, {instance_id: instance_arn}).get(instance_id)

    def nodes(self, uid: str, instance_arns: Mapping[str, str]) -> dict[str, BootstrapReport]:
        """Node reports by instance id, of the instances given (instance id -> its ARN), all in
        one batched read: each node's report is its own partition. A node booted while the nodes
        still shared the replicas' partition keeps writing its report there until it is
        replaced, so that key is read in the same batch and counts where the node's own is
        missing."""
        wanted = list(instance_arns.items())
        own = [(keys.node_report_pk(uid, arn), keys.node_report_sk(i)) for i, arn in wanted]
        shared = [(keys.bootstrap_pk(uid), keys.node_report_sk(i)) for i, _arn in wanted]
        items = self._table.get_many(own + shared)
        found = {}
        for n, (instance_id, _arn) in enumerate(wanted):
            report = self.report_of(items[n] or items[len(wanted) + n])
            if report is not None:
                found[instance_id] = report
        return found

    def write(
        self,
        uid: str,
        *,
        status: str,
        instance_id: str,
        replica: int | None = None,
        instance_arn: str | None = None,
        version: str | None = None,
        checks: dict[str, Any] | None = None,
        certificates: dict[str, str] | None = None,
        source: str = "boot",
    ) -> None:
        """What an instance writes (the local instance simulator plays that part): a replica its
        report by index, a node its own by its instance ARN."""
        if replica is not None:
            pk, sk = keys.bootstrap_pk(uid), keys.replica_report_sk(replica)
        elif instance_arn:
            pk, sk = keys.node_report_pk(uid, instance_arn), keys.node_report_sk(instance_id)
        else:
            raise ValueError("a node's report needs its instance ARN (the node role writes only its own)")
        report = BootstrapReport(
            status=status,
            instance_id=instance_id,
            reported_at=iso(),
            source=source,
            version=version,
            checks=checks or {},
            certificates=certificates or {},
        )
        item = report.to_item()
        item.pop("key", None)
        self._table.put({"pk": pk, "sk": sk, **item})

    def init_claim(self, uid: str) -> InitClaim | None:
        return InitClaim.from_item(self._table.get(keys.init_claim_pk(uid), keys.INIT_CLAIM_SK))

    def claim_init(self, uid: str, instance_id: str, replica: int | None) -> bool:
        """True for exactly one caller per cluster: that one runs `kubeadm init`."""
        claim = InitClaim(instance_id=instance_id, replica=replica, claimed_at=iso())
        return self._table.put_new({"pk": keys.init_claim_pk(uid), "sk": keys.INIT_CLAIM_SK, **claim.to_item()})

    def addons_claim(self, uid: str, version: str) -> VersionClaim | None:
        """Who applied kubestep's add-ons for `version`; `status == "applied"` once done (the
        control plane's upgrade to `version` is then complete)."""
        return VersionClaim.from_item(self._table.get(keys.version_claim_pk(uid), keys.addons_claim_sk(version)))

    def upgrade_claim(self, uid: str, version: str) -> VersionClaim | None:
        """Who ran `kubeadm upgrade apply` for `version`; `status == "upgraded"` once done."""
        return VersionClaim.from_item(self._table.get(keys.version_claim_pk(uid), keys.upgrade_claim_sk(version)))

    def mark_initialized(self, uid: str) -> None:
        self._table.update(
            keys.init_claim_pk(uid), keys.INIT_CLAIM_SK, {"status": INITIALIZED, "initializedAt": iso()}, new_item=False
        )

    def adopt_shared_partition_claim(self, uid: str) -> None:
        """A cluster initialised while the claim shared the replicas' partition: copy it to its
        own, before any replica reads it there (else an empty-volume replica would find no claim
        and run `kubeadm init` against a running cluster)."""
        old = self._table.get(keys.bootstrap_pk(uid), keys.INIT_CLAIM_SK)
        if old is not None:
            self._table.put_new({**old, "pk": keys.init_claim_pk(uid), "sk": keys.INIT_CLAIM_SK})

    def initialized(self, uid: str) -> bool:
        claim = self.init_claim(uid)
        return claim is not None and claim.status == INITIALIZED

    def delete_all(self, uid: str, node_instance_arns: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> int:
        """The replicas' reports, the init claim, the version claims and the reports of the nodes
        given (id -> ARN)."""
        items: list[dict] = []
        for pk in (keys.bootstrap_pk(uid), keys.init_claim_pk(uid), keys.version_claim_pk(uid)):
            items += self._table.query_all(KeyConditionExpression=Key("pk").eq(pk))
        pairs = node_instance_arns.items() if isinstance(node_instance_arns, Mapping) else node_instance_arns
        items += [{"pk": keys.node_report_pk(uid, arn), "sk": keys.node_report_sk(i)} for i, arn in pairs]
        return self._table.delete_all(items)
