"""SSM: the public parameters AWS publishes, which moto has not."""

from __future__ import annotations

from datetime import UTC, datetime

UBUNTU_IMAGE_NAMES = {
    "amd64": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20261120",
    "arm64": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-20261120",
}


def publish_ubuntu_images(account_id: str, region: str) -> dict[str, str]:
    """Canonical publishes Ubuntu 24.04's image ids in public SSM parameters
    (/aws/service/canonical/...); moto has neither those parameters nor the images, and
    refuses PutParameter under /aws/. Register an image per architecture and publish its id
    where Canonical does, as AWS would answer."""

    from moto.ec2.models import ec2_backends
    from moto.ssm.models import Parameter, ParameterDict, ssm_backends

    from kubestep.resources.images import UBUNTU_PARAMETER

    ec2 = ec2_backends[account_id][region]
    parameters: ParameterDict = ssm_backends[account_id][region]._parameters
    published = {}
    for arch, image_name in UBUNTU_IMAGE_NAMES.items():
        name = UBUNTU_PARAMETER.format(arch=arch)
        existing = dict.get(parameters, name)
        if existing:
            published[arch] = existing[-1].value
            continue
        ami = ec2.register_image(name=image_name, description=f"Canonical, Ubuntu, 24.04, {arch} noble image")
        ami.architecture = "x86_64" if arch == "amd64" else "arm64"
        super(ParameterDict, parameters).__getitem__(name).append(
            Parameter(
                account_id=account_id,
                name=name,
                value=ami.id,
                parameter_type="String",
                description=None,
                allowed_pattern=None,
                keyid=None,
                last_modified_date=datetime.now(UTC),
                version=1,
                data_type="aws:ec2:image",
            )
        )
        published[arch] = ami.id
    return published
