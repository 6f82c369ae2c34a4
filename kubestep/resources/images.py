"""Which machine image an instance boots: the manifest's `imageID`, or Ubuntu 24.04 LTS as
Canonical publishes it in public SSM parameters, resolved in the step (not by the launch
template's `resolve:ssm:`, which would need ssm:GetParameters at every launch and changes
under a running cluster). The resolved id is pinned in the launch template version and
recorded on the cluster, so every replica and node of a cluster runs the same image until an
update moves it."""

from __future__ import annotations

from kubestep.aws import client
from kubestep.aws.errors import Kind, is_not_found
from kubestep.resources.context import ClusterContext

# https://documentation.ubuntu.com/aws/aws-how-to/instances/find-ubuntu-images/
UBUNTU_PARAMETER = "/aws/service/canonical/ubuntu/server/24.04/stable/current/{arch}/hvm/ebs-gp3/ami-id"
ARCHES = {"x86_64": "amd64", "arm64": "arm64"}


def architecture(ctx: ClusterContext, instance_type: str) -> str:
    """amd64 or arm64, from EC2's own description of the instance type."""
    info = ctx.ec2.describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"][0]
    supported = info.get("ProcessorInfo", {}).get("SupportedArchitectures", ["x86_64"])
    for aws_name, arch in ARCHES.items():
        if aws_name in supported:
            return arch
    raise ValueError(f"instance type {instance_type} is neither x86_64 nor arm64")


def image_for(ctx: ClusterContext, instance_type: str, image_id: str | None = None) -> str:
    """The image id to pin: the manifest's, else the one this cluster already recorded for the
    architecture, else Canonical's current one (then recorded)."""
    if image_id:
        return image_id
    arch = architecture(ctx, instance_type)
    recorded = ctx.record.images.get(arch)
    if recorded:
        return recorded
    try:
        resolved = client("ssm", ctx.settings.region).get_parameter(Name=UBUNTU_PARAMETER.format(arch=arch))
    except Exception as exc:
        if is_not_found(exc, Kind.PARAMETER):
            raise RuntimeError(f"Canonical publishes no Ubuntu 24.04 {arch} image in {ctx.settings.region}") from None
        raise
    ctx.record = ctx.store.clusters.record_image(ctx.name, arch, resolved["Parameter"]["Value"])
    return ctx.record.images[arch]
