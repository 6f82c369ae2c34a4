"""What the bootstrap installs, pinned. Per Kubernetes minor (the pause image, the AWS cloud
controller manager, the Calico release) the pins live in the version catalog,
`kubestep/data/kubernetes-versions.json`, so adding a minor is a data-only change; what does not
depend on the minor is pinned here.

Why these:
- kubeadm's `v1beta4` configuration API first shipped with Kubernetes 1.31: every minor the
  catalog lists renders with it.
- containerd's sandbox image must be the pause image kubeadm of the same minor expects, or kubelet
  and containerd disagree about which image a pod sandbox runs.
- Calico's VXLAN manifest is fetched from its release tag at boot and checked against its SHA-256.
- aws-iam-authenticator from EKS Distro's public build (an immutable EKS-D tag).
- AWS Node Termination Handler v1.25 (queue processor mode).
"""

from __future__ import annotations

from kubestep import versions

CLOUD_CONTROLLER_MANAGER_IMAGE = "registry.k8s.io/provider-aws/cloud-controller-manager:{version}"
CALICO_MANIFEST_URL = "https://raw.githubusercontent.com/projectcalico/calico/{version}/manifests/calico-vxlan.yaml"

AWS_IAM_AUTHENTICATOR_IMAGE = "public.ecr.aws/eks-distro/kubernetes-sigs/aws-iam-authenticator:v0.7.13-eks-1-35-9"
# The authenticator's default port, on loopback only: the API server's webhook calls it locally.
AWS_IAM_AUTHENTICATOR_PORT = 21362

NODE_TERMINATION_HANDLER_IMAGE = "public.ecr.aws/aws-ec2/aws-node-termination-handler:v1.25.6"


def supported_minors() -> tuple[int, ...]:
    """The minors the bootstrap can install (end-of-life ones included: their clusters still roll)."""
    return versions.installable_minors()


def _minor(minor: int) -> versions.Minor:
    return versions.catalog().minors[minor]


def pause_image(minor: int) -> str:
    return f"registry.k8s.io/pause:{_minor(minor).pause}"


def cloud_controller_manager_image(minor: int) -> str:
    return CLOUD_CONTROLLER_MANAGER_IMAGE.format(version=_minor(minor).cloud_controller_manager)


def calico_manifest(minor: int) -> tuple[str, str]:
    """(URL, SHA-256) of the Calico VXLAN manifest for this minor."""
    release = _minor(minor).calico
    return CALICO_MANIFEST_URL.format(version=release), versions.catalog().calico_manifests[release]
