"""EC2: NAT gateways, launch templates, volumes, instances, security groups and tags, where
moto 5.2.5 answers differently from AWS, keeps things longer than AWS does, settles at once what
AWS keeps in an intermediate state, or does more work per request than the answer needs; and
instances read as plain data."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from kubestep_local.moto_compat.core import PatchSet, iter_backends
from kubestep_local.moto_compat.latency import LatencyHooks, Later, instance_to, settle

# ---------------------------------------------------------------- bugs


def release_nat_gateway_addresses(patches: PatchSet) -> None:
    """DeleteNatGateway: AWS disassociates the gateway's Elastic IP (so it can be released) and
    deletes its network interface (Amazon VPC user guide, "Delete a NAT gateway"); moto keeps
    both forever and ReleaseAddress stays refused."""
    from moto.ec2.models.nat_gateways import NatGatewayBackend

    original_delete = NatGatewayBackend.delete_nat_gateway

    def delete_nat_gateway(self: Any, nat_gateway_id: str) -> Any:
        gateway = original_delete(self, nat_gateway_id)
        for address in getattr(gateway, "address_set", []):
            allocation = address.get("allocationId")
            for eip in self.address_by_allocation([allocation]) if allocation else []:
                if eip.eni is not None and eip.eni.id == address.get("networkInterfaceId"):
                    eip.eni = None
                    eip.instance = None
                    eip.association_id = None
        # AWS deletes the gateway's network interface too; moto keeps it, in the VPC's default
        # security group, so the VPC's deletion (which deletes that group) would be refused once
        # security groups check their interfaces (the latency model's patch).
        eni = getattr(gateway, "_eni", None)
        if eni is not None and eni.id in getattr(self, "enis", {}):
            self.delete_network_interface(eni.id)
        return gateway

    patches.set(NatGatewayBackend, "delete_nat_gateway", delete_nat_gateway)


def store_template_versions_alike(patches: PatchSet) -> None:
    """CreateLaunchTemplateVersion stores UserData as the plain base64 text, CreateLaunchTemplate
    as a Base64EncodedString; an Auto Scaling group launching from a later version then fails
    moto's own type assertion (LaunchTemplateVersion.user_data). AWS stores both alike (EC2 API
    reference, RequestLaunchTemplateData.UserData: base64 in both calls)."""
    from moto.core.types import Base64EncodedString
    from moto.ec2.models.launch_templates import LaunchTemplateVersion

    def user_data(self: Any) -> Any:
        value = self.data.get("UserData")
        return Base64EncodedString(value) if isinstance(value, str) else value

    patches.set(LaunchTemplateVersion, "user_data", property(user_data))


# ---------------------------------------------------------------- a resent call meets AWS's answer


def create_volume_once_per_token(patches: PatchSet) -> None:
    """CreateVolume ignores ``ClientToken`` in moto: AWS returns the volume the token made (EC2
    API reference, "Ensuring idempotency of Amazon EC2 API requests")."""
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore

    original_create_volume = ElasticBlockStore.create_volume

    def create_volume(self: Any) -> Any:
        from moto.core.responses import ActionResult

        token = self._get_param("ClientToken")
        tokens = self.ec2_backend.__dict__.setdefault("_kubestep_volume_tokens", {})
        known = self.ec2_backend.volumes.get(tokens.get(token)) if token else None
        if known is not None:
            return ActionResult(known)
        result = original_create_volume(self)
        if token:
            created = max(self.ec2_backend.volumes.values(), key=lambda v: v.create_time, default=None)
            if created is not None:
                tokens[token] = created.id
        return result

    patches.set(ElasticBlockStore, "create_volume", create_volume)


def create_template_version_once_per_token(patches: PatchSet) -> None:
    """CreateLaunchTemplateVersion ignores ``ClientToken`` in moto: AWS returns the version the
    token made (EC2 API reference, CreateLaunchTemplateVersion: ClientToken)."""
    from moto.ec2.responses.launch_templates import LaunchTemplates

    original_create_version = LaunchTemplates.create_launch_template_version

    def create_launch_template_version(self: Any) -> Any:
        token = self._get_param("ClientToken")
        answers = self.ec2_backend.__dict__.setdefault("_kubestep_template_version_tokens", {})
        if token and token in answers:
            return answers[token]
        result = original_create_version(self)
        if token:
            answers[token] = result
        return result

    patches.set(LaunchTemplates, "create_launch_template_version", create_launch_template_version)


# ---------------------------------------------------------------- speed


def look_tags_up_by_id(patches: PatchSet) -> None:
    """moto 5.2.5 looks an EC2 resource's tags up by scanning every tag of every resource
    (``TaggedEC2Resource.get_tags`` -> ``describe_tags(filters={"resource-id": [id]})``, a regex
    per tag), so a describe with a tag filter costs resources x tags: with a few dozen clusters in
    the emulator, every kubestep step's describe took seconds. The same answer, looked up by id
    (a speed fix only: DescribeTags' answer is unchanged)."""
    from moto.ec2.models.core import TaggedEC2Resource
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    def get_tags(self: Any) -> list[dict[str, str]]:
        resource_id = getattr(self, "id", None)
        if not resource_id:
            return []
        tags = dict.get(self.ec2_backend.tags, resource_id) or {}
        kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
        return [{"resource_id": resource_id, "key": k, "value": v, "resource_type": kind} for k, v in tags.items()]

    patches.set(TaggedEC2Resource, "get_tags", get_tags)


def list_instances_without_copies(patches: PatchSet) -> None:
    """moto 5.2.5's ``all_instances`` (behind ``get_instance``, which every instance lookup of
    EC2, Auto Scaling and ELBv2 uses) walks ``all_reservations()``, which shallow-copies every
    reservation first (the copies exist for ``filter_reservations``, which trims them): one
    lookup among a few hundred instances took ~1.5 ms. The same instances, read in place (the
    filters are applied per instance, as moto's own loop does; nothing is trimmed: a speed fix
    only, DescribeInstances' answer is unchanged)."""
    from moto.ec2.models.instances import InstanceBackend

    def all_instances(self: Any, filters: Any = None) -> list[Any]:
        return [
            instance
            for reservation in list(self.reservations.values())
            for instance in list(reservation.instances)
            if instance.applies(filters)
        ]

    patches.set(InstanceBackend, "all_instances", all_instances)


# ---------------------------------------------------------------- latency


def nat_gateways_take_time(patches: PatchSet, hooks: LatencyHooks, later: Later) -> None:
    """A NAT gateway is ``pending`` for minutes after CreateNatGateway and ``deleting`` after
    DeleteNatGateway (EC2 API reference, NatGateway.State); moto settles both at once. Wraps the
    delete that releases the addresses (``release_nat_gateway_addresses``)."""
    from moto.ec2.models.nat_gateways import NatGatewayBackend

    original_create_nat = NatGatewayBackend.create_nat_gateway
    original_delete_nat = vars(NatGatewayBackend)["delete_nat_gateway"]

    def create_nat_gateway(self: Any, *args: Any, **kwargs: Any) -> Any:
        gateway = original_create_nat(self, *args, **kwargs)
        delay = hooks.delay("nat-gateway-pending")
        if delay:
            gateway.state = "pending"
            later(delay, lambda: settle(gateway, "state", "pending", "available"), "nat-gateway-pending")
        return gateway

    def delete_nat_gateway(self: Any, nat_gateway_id: str) -> Any:
        gateway = original_delete_nat(self, nat_gateway_id)
        delay = hooks.delay("nat-gateway-deleting")
        if delay and gateway.state == "deleted":
            gateway.state = "deleting"
            later(delay, lambda: settle(gateway, "state", "deleting", "deleted"), "nat-gateway-deleting")
        return gateway

    patches.set(NatGatewayBackend, "create_nat_gateway", create_nat_gateway)
    patches.set(NatGatewayBackend, "delete_nat_gateway", delete_nat_gateway)


def security_groups_wait_for_interfaces(patches: PatchSet) -> None:
    """DeleteSecurityGroup answers ``DependencyViolation`` while a network interface uses the
    group (EC2 API reference, DeleteSecurityGroup); moto deletes it. A terminated instance's
    interface does not count: moto keeps it, AWS deletes it."""
    from moto.ec2.exceptions import DependencyViolationError
    from moto.ec2.models.security_groups import SecurityGroupBackend

    original_delete_sg = SecurityGroupBackend.delete_security_group

    def delete_security_group(self: Any, name: str | None = None, group_id: str | None = None) -> None:
        if group_id:
            for eni in list(getattr(self, "enis", {}).values()):
                if eni.instance is not None and eni.instance.state == "terminated":
                    continue  # moto keeps a terminated instance's interface; AWS deletes it
                if group_id in {g.id for g in eni._group_set}:
                    raise DependencyViolationError(f"resource {group_id} has a dependent object")
        return original_delete_sg(self, name=name, group_id=group_id)

    patches.set(SecurityGroupBackend, "delete_security_group", delete_security_group)


def volumes_take_time(patches: PatchSet, hooks: LatencyHooks) -> None:
    """A volume is ``creating`` after CreateVolume until it is ``available`` (EC2 API reference,
    Volume.State); moto makes it available at once."""
    from moto.ec2.models.elastic_block_store import EBSBackend, Volume

    original_create_volume = EBSBackend.create_volume
    original_status = Volume.status

    def create_volume(self: Any, *args: Any, **kwargs: Any) -> Any:
        volume = original_create_volume(self, *args, **kwargs)
        delay = hooks.delay("volume-creating")
        if delay:
            volume._kubestep_available_at = time.time() + delay
        return volume

    def status(self: Any) -> str:
        if time.time() < getattr(self, "_kubestep_available_at", 0):
            return "creating"
        return original_status.fget(self)

    patches.set(EBSBackend, "create_volume", create_volume)
    patches.set(Volume, "status", property(status))


def instances_take_time(patches: PatchSet, hooks: LatencyHooks, later: Later) -> None:
    """An instance is ``pending`` after RunInstances and ``shutting-down`` after
    TerminateInstances before it is ``running`` or ``terminated`` (EC2 user guide, "Instance
    state changes"); moto settles both at once. The instance carries when it runs, for its Auto
    Scaling instance (``autoscaling.group_instances_take_time``)."""
    from moto.ec2.models.instances import Instance, InstanceBackend

    original_run = InstanceBackend.run_instances
    original_terminate = Instance.terminate

    def run_instances(self: Any, *args: Any, **kwargs: Any) -> Any:
        reservation = original_run(self, *args, **kwargs)
        delay = hooks.delay("instance-pending")
        if delay:
            for instance in reservation.instances:
                instance._state.name, instance._state.code = "pending", 0
                instance._kubestep_running_at = time.time() + delay
                later(delay, lambda i=instance: instance_to(i, "pending", "running", 16), "instance-pending")
        return reservation

    def terminate(self: Any) -> Any:
        previous = original_terminate(self)
        delay = hooks.delay("instance-shutting-down")
        if delay and self._state.name == "terminated" and previous.name != "terminated":
            self._state.name, self._state.code = "shutting-down", 32
            later(delay, lambda: instance_to(self, "shutting-down", "terminated", 48), "instance-shutting-down")
        return previous

    patches.set(InstanceBackend, "run_instances", run_instances)
    patches.set(Instance, "terminate", terminate)


# ---------------------------------------------------------------- reads


def instance_running(region: str, instance_id: str) -> bool:
    """Whether an EC2 instance exists and is pending or running."""
    instance = _instance(region, instance_id)
    return instance is not None and instance.state not in ("terminated", "shutting-down", "stopped", "stopping")


def instance_user_data(region: str, instance_id: str) -> str | None:
    """The user-data an EC2 instance was launched with (base64, as given), None if unknown."""
    instance = _instance(region, instance_id)
    data = instance.user_data if instance is not None else None
    if isinstance(data, list | tuple):  # moto keeps RunInstances' UserData as a one-item list
        data = data[0] if data else None
    if data is None:
        return None
    # bytes, str, or moto's Base64EncodedString (whose str() is the encoded text)
    return data.decode() if isinstance(data, bytes) else str(data)


def instance_zone(region: str, instance_id: str) -> str | None:
    """The Availability Zone an EC2 instance was placed in (DescribeInstances'
    ``Placement.AvailabilityZone``), None if there is no such instance. What an instance reads of
    itself from its metadata service (``placement/availability-zone``), not through the EC2 API."""
    instance = _instance(region, instance_id)
    return instance.availability_zone if instance is not None else None


def instance_state(region: str, instance_id: str) -> str | None:
    """An EC2 instance's state name (None if there is no such instance)."""
    instance = _instance(region, instance_id)
    return str(instance.state) if instance is not None else None


def _instance(region: str, instance_id: str) -> Any:
    """moto's instance of that id in that region (any account), None if there is none."""
    from moto.ec2.models import ec2_backends

    for _account, backend_region, backend in iter_backends(ec2_backends):
        if backend_region != region:
            continue
        with contextlib.suppress(Exception):
            return backend.get_instance(instance_id)
    return None
