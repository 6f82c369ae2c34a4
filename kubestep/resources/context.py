"""What every cluster step needs: the cluster record, its spec, the network, AWS clients,
the operation that is running, and the tags and look-ups scoped to the cluster's uid."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from kubestep import naming
from kubestep.aws import client
from kubestep.models import AWSCluster
from kubestep.registry import Registry, cluster_pk
from kubestep.settings import Settings

TAG_CREATED_BY = "gke:created-by"


class ClusterContext:
    def __init__(self, settings: Settings, registry: Registry, cluster_name: str, operation_id: str):
        self.settings = settings
        self.registry = registry
        self.name = cluster_name
        self.operation_id = operation_id
        self.record = registry.require_cluster(cluster_name)
        self.uid: str = self.record["uid"]
        self.pk = cluster_pk(cluster_name)

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

    # ------------------------------------------------------------------ spec and network
    @cached_property
    def spec(self) -> AWSCluster:
        return AWSCluster.model_validate(self.record["spec"])

    @cached_property
    def network(self) -> dict:
        network = self.registry.ready_network(self.settings.service_name)
        return network

    @property
    def vpc_id(self) -> str:
        return self.network["vpcId"]

    @property
    def vpc_cidr(self) -> str:
        return self.network["cidr"]

    # ------------------------------------------------------------------ tags and look-ups
    def tags(self, **extra: str) -> dict[str, str]:
        """Tags for a resource this operation creates."""
        tags = naming.cluster_tags(self.settings.service_name, self.name, self.uid)
        tags[TAG_CREATED_BY] = self.operation_id
        tags.update(self.settings.service.spec.tags)
        tags.update(self.spec.spec.control_plane.tags)
        tags.update(extra)
        return tags

    def ec2_filters(self, scope: str = "cluster", **tags: str) -> list[dict]:
        filters = [{"Name": f"tag:{naming.TAG_CLUSTER_UID}", "Values": [self.uid]}]
        if scope == "operation":
            filters.append({"Name": f"tag:{TAG_CREATED_BY}", "Values": [self.operation_id]})
        filters += [{"Name": f"tag:{k}", "Values": [v]} for k, v in tags.items()]
        return filters

    def owned(self, tags: dict[str, str], scope: str) -> bool:
        if tags.get(naming.TAG_CLUSTER_UID) != self.uid:
            return False
        return scope != "operation" or tags.get(TAG_CREATED_BY) == self.operation_id

    def record_resource(self, logical: str, resource_id: str, sk: str = "CLUSTER") -> None:
        self.registry.record_resource(self.pk, sk, logical, resource_id, self.operation_id)

    def event(self, type_: str, reason: str, message: str, involved: str | None = None) -> None:
        self.registry.record_event(
            self.name, type_, reason, message, involved or f"AWSCluster/{self.name}", self.operation_id
        )
