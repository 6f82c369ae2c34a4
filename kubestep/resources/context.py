"""What every cluster step needs: the cluster record, its spec, the network, AWS clients,
the operation that is running, and the tags and look-ups scoped to the cluster.

Resources are selected by the cluster's uid **and** its name and management service (the
record that owns the uid), so a uid typed into some other record can never reach them."""

from __future__ import annotations

from functools import cached_property
from typing import Any, Self

from kubestep import naming
from kubestep.aws import client
from kubestep.flow.context import StepContext, require
from kubestep.models import AWSCluster
from kubestep.settings import Settings
from kubestep.store import ClusterRecord, NetworkRecord, Resource, Store

TAG_CREATED_BY = "gke:created-by"
SCOPES = ("cluster", "operation")


class ClusterContext(StepContext):
    # Whether the context read its record, operation and network as it started (an OrphanContext
    # reads none: it reads what it needs when it needs it).
    _read_at_start = False

    def __init__(self, settings: Settings, store: Store, cluster_name: str, operation_id: str):
        super().__init__(settings, store, operation_id)
        self.name = cluster_name
        self.record: ClusterRecord
        self.record, self.operation_at_start, self._network_at_start = (
            store.clusters.require_with_operation_and_network(cluster_name, operation_id)
        )
        self._read_at_start = True
        self.uid: str = self.record.uid

    @classmethod
    def from_event(cls, event: dict[str, Any], settings: Settings, store: Store) -> Self:
        return cls(settings, store, require(event, "clusterName"), require(event, "operationId"))

    def reload(self) -> ClusterRecord:
        self.record = self.store.clusters.require(self.name)
        return self.record

    # ------------------------------------------------------------------ AWS clients
    @cached_property
    def ec2(self) -> Any:
        return client("ec2", self.settings.region)

    @cached_property
    def autoscaling(self) -> Any:
        return client("autoscaling", self.settings.region)

    @cached_property
    def elbv2(self) -> Any:
        return client("elbv2", self.settings.region)

    @cached_property
    def secretsmanager(self) -> Any:
        return client("secretsmanager", self.settings.region)

    @cached_property
    def s3(self) -> Any:
        return client("s3", self.settings.region)

    # ------------------------------------------------------------------ spec and network
    @property
    def spec(self) -> AWSCluster:
        return self.record.spec

    # The network item as read with the record (None: there is none).
    _network_at_start: NetworkRecord | None = None

    @cached_property
    def network(self) -> NetworkRecord:
        """The network (NetworkNotReady if it is not ready)."""
        if not self._read_at_start:
            return self.store.network.ready(self.settings.service_name)
        return self.store.network.ready_of(self._network_at_start, self.settings.service_name)

    @property
    def vpc_id(self) -> str:
        assert self.network.vpc_id
        return self.network.vpc_id

    @property
    def vpc_cidr(self) -> str:
        assert self.network.cidr
        return self.network.cidr

    def zone_name(self, zone: str) -> str:
        """The zone's name for APIs that take no zone ID (CreateVolume): what AWS put the
        zone's subnets in, when the manifest named a zone ID."""
        entry = self.network.zones.get(zone)
        return entry.zone_name if entry is not None and entry.zone_name else zone

    def resource_id(self, logical: Resource) -> str | None:
        return self.record.resource_id(logical)

    # ------------------------------------------------------------------ tags and look-ups
    def identity_tags(self) -> dict[str, str]:
        """The tags that say "this cluster's": service, name and uid together."""
        return naming.cluster_tags(self.settings.service_name, self.name, self.uid)

    def tags(self, **extra: str) -> dict[str, str]:
        """Tags for a resource this operation creates."""
        tags = dict(self.settings.service.spec.tags)
        tags.update(self.spec.spec.control_plane.tags)
        tags.update(self.identity_tags())
        tags[TAG_CREATED_BY] = self.operation_id
        tags.update(extra)
        return tags

    def ec2_filters(self, scope: str = "cluster", **tags: str) -> list[dict]:
        check_scope(scope)
        filters = [{"Name": f"tag:{k}", "Values": [v]} for k, v in self.identity_tags().items()]
        if scope == "operation":
            filters.append({"Name": f"tag:{TAG_CREATED_BY}", "Values": [self.operation_id]})
        filters += [{"Name": f"tag:{k}", "Values": [v]} for k, v in tags.items()]
        return filters

    def owned(self, tags: dict[str, str], scope: str) -> bool:
        check_scope(scope)
        if any(tags.get(k) != v for k, v in self.identity_tags().items()):
            return False
        return scope != "operation" or tags.get(TAG_CREATED_BY) == self.operation_id

    def record_resource(self, logical: Resource, resource_id: str) -> None:
        self.store.clusters.record_resource(self.name, logical, resource_id, self.operation_id)

    def record_resources(self, resource_ids: dict[Resource, str]) -> None:
        """``record_resource`` of each (none: nothing), in one write."""
        if resource_ids:
            self.store.clusters.record_resources(self.name, resource_ids, self.operation_id)

    def event(self, type_: str, reason: str, message: str, involved: str | None = None) -> None:
        # The incarnation the event is about is the operation's uid (EventRepository._uid_of),
        # which this context read as it started: no read of the operation again.
        operation = self.operation_at_start if self._read_at_start else None
        uid = operation.uid if operation is not None and operation.target == self.name else None
        self.store.events.record(
            self.name, type_, reason, message, involved or f"AWSCluster/{self.name}", self.operation_id, uid=uid
        )


def check_scope(scope: str) -> None:
    if scope not in SCOPES:
        from kubestep.errors import InvalidSpec

        raise InvalidSpec([("scope", f"must be one of {', '.join(SCOPES)}")])
