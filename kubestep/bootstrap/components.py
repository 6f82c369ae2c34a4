"""What the bootstrap installs, pinned: one place to bump a version.

Why these:
- kubeadm's `v1beta4` configuration API first shipped with Kubernetes 1.31, so 1.31 is the
  oldest minor the bootstrap renders for (1.30 is past its upstream end of life anyway).
- The pause (sandbox) image is the one each kubeadm minor expects (`kubeadm config images list`):
  3.10 for 1.31-1.33, 3.10.1 from 1.34. containerd's sandbox image must match it, or kubelet and
  containerd disagree about which image a pod sandbox runs.
- The AWS cloud controller manager's minor follows Kubernetes' (its releases are cut per minor,
  kubernetes/cloud-provider-aws tags); the newest patch of each minor.
- Calico v3.31 (VXLAN data plane; supports Kubernetes 1.31-1.34): the manifest is fetched from
  the release tag and checked against its SHA-256, computed from the tagged file in
  projectcalico/calico (`git show v3.31.7:manifests/calico-vxlan.yaml | sha256sum`).
- aws-iam-authenticator from EKS Distro's public build (an immutable EKS-D tag).
- AWS Node Termination Handler v1.25 (queue processor mode).
"""

from __future__ import annotations

MIN_MINOR = 31
MAX_MINOR = 34

PAUSE_VERSION = {31: "3.10", 32: "3.10", 33: "3.10", 34: "3.10.1"}
CLOUD_CONTROLLER_MANAGER_VERSION = {31: "v1.31.9", 32: "v1.32.8", 33: "v1.33.4", 34: "v1.34.3"}
CLOUD_CONTROLLER_MANAGER_IMAGE = "registry.k8s.io/provider-aws/cloud-controller-manager:{version}"

CALICO_VERSION = "v3.31.7"
CALICO_MANIFEST_URL = (
    f"https://raw.githubusercontent.com/projectcalico/calico/{CALICO_VERSION}/manifests/calico-vxlan.yaml"
)
CALICO_MANIFEST_SHA256 = "324475bc90d0fc6b432092b91a011190fdaed47823fcc936762ea58507c6a5a3"

AWS_IAM_AUTHENTICATOR_IMAGE = "public.ecr.aws/eks-distro/kubernetes-sigs/aws-iam-authenticator:v0.7.13-eks-1-35-9"
# The authenticator's default port, on loopback only: the API server's webhook calls it locally.
AWS_IAM_AUTHENTICATOR_PORT = 21362

NODE_TERMINATION_HANDLER_IMAGE = "public.ecr.aws/aws-ec2/aws-node-termination-handler:v1.25.6"


def supported_minors() -> range:
    return range(MIN_MINOR, MAX_MINOR + 1)


def pause_image(minor: int) -> str:
    return f"registry.k8s.io/pause:{PAUSE_VERSION[minor]}"


def cloud_controller_manager_image(minor: int) -> str:
    return CLOUD_CONTROLLER_MANAGER_IMAGE.format(version=CLOUD_CONTROLLER_MANAGER_VERSION[minor])
