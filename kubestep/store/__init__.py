"""The data-access layer over the management service's single DynamoDB table.

    store = Store.for_table(name)
    cluster = store.clusters.require("prod")
    store.events.record(cluster.name, "Normal", "Upgraded", "...", f"AWSCluster/{cluster.name}")

Key formats live in `keys`, typed records in `records`, one repository per item kind."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from kubestep.errors import NotFound
from kubestep.store import keys
from kubestep.store.admins import ClusterAdminsRepository
from kubestep.store.backups import BackupRepository
from kubestep.store.clusters import ClusterRepository
from kubestep.store.deadlines import DeadlineRepository
from kubestep.store.etcd import EtcdRepository
from kubestep.store.events import EventRepository
from kubestep.store.locks import LockRepository
from kubestep.store.network import NetworkRepository
from kubestep.store.node_pools import NodePoolRepository
from kubestep.store.operations import OperationRepository
from kubestep.store.records import (
    BootstrapReport,
    ClusterAdmins,
    ClusterRecord,
    EtcdConfig,
    EtcdMember,
    Event,
    Lock,
    NetworkRecord,
    NodePoolRecord,
    Operation,
    Resource,
    Schedule,
)
from kubestep.store.reports import ReportRepository
from kubestep.store.schedules import ScheduleRepository
from kubestep.store.sightings import SightingRepository
from kubestep.store.table import Table, iso, now, parse_iso

__all__ = [
    "BootstrapReport",
    "ClusterAdmins",
    "ClusterRecord",
    "EtcdConfig",
    "EtcdMember",
    "Event",
    "Lock",
    "NetworkRecord",
    "NodePoolRecord",
    "Operation",
    "Resource",
    "Schedule",
    "Store",
    "iso",
    "now",
    "parse_iso",
]


class Store:
    def __init__(self, table: Table):
        self.table = table

    @classmethod
    def for_table(cls, table_name: str, dynamodb: Any = None) -> Store:
        return cls(Table(table_name, dynamodb))

    @property
    def table_name(self) -> str:
        return self.table.name

    @cached_property
    def network(self) -> NetworkRepository:
        return NetworkRepository(self.table)

    @cached_property
    def clusters(self) -> ClusterRepository:
        return ClusterRepository(self.table)

    @cached_property
    def node_pools(self) -> NodePoolRepository:
        return NodePoolRepository(self.table)

    @cached_property
    def etcd(self) -> EtcdRepository:
        return EtcdRepository(self.table)

    @cached_property
    def operations(self) -> OperationRepository:
        return OperationRepository(self.table)

    @cached_property
    def events(self) -> EventRepository:
        return EventRepository(self.table)

    @cached_property
    def locks(self) -> LockRepository:
        return LockRepository(self.table)

    @cached_property
    def admins(self) -> ClusterAdminsRepository:
        return ClusterAdminsRepository(self.table)

    @cached_property
    def backups(self) -> BackupRepository:
        return BackupRepository(self.table)

    @cached_property
    def reports(self) -> ReportRepository:
        return ReportRepository(self.table)

    @cached_property
    def schedules(self) -> ScheduleRepository:
        return ScheduleRepository(self.table)

    @cached_property
    def sightings(self) -> SightingRepository:
        return SightingRepository(self.table)

    @cached_property
    def deadlines(self) -> DeadlineRepository:
        return DeadlineRepository(self.table)

    def replica_with_report(
        self, cluster: str, uid: str, index: int
    ) -> tuple[EtcdMember, EtcdConfig | None, BootstrapReport | None]:
        """A replica's member item, its cluster's etcd configuration and the replica's latest
        report, in one consistent batched read: a control-plane health gate reads all three on
        every poll."""
        member, config, report = self.table.get_many(
            [
                (keys.cluster_pk(cluster), keys.etcd_member_sk(index)),
                (keys.cluster_pk(cluster), keys.ETCD_CONFIG_SK),
                (keys.bootstrap_pk(uid), keys.replica_report_sk(index)),
            ]
        )
        found = EtcdMember.from_item(member)
        if found is None:
            raise NotFound(f"replica {index} of cluster {cluster!r} was never planned")
        return found, EtcdConfig.from_item(config), self.reports.report_of(report)
