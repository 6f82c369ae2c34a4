"""What the bootstrap installs, pinned. Per Kubernetes minor (the pause image, the AWS cloud
controller manager, the Calico release, and their digests) the pins live in the version catalog,
`kubestep/data/kubernetes-versions.json`, so adding a minor is a data-only change; what does not
depend on the minor is pinned here.

Why these:
- kubeadm's `v1beta4` configuration API first shipped with Kubernetes 1.31: every minor the
  catalog lists renders with it.
- containerd's sandbox image must be the pause image kubeadm of the same minor expects, or kubelet
  and containerd disagree about which image a pod sandbox runs.
- Calico's VXLAN manifest is fetched from its release tag at boot and checked against its SHA-256;
  the images it names are then rewritten to their digests where the catalog has them.
- aws-iam-authenticator from EKS Distro's public build (an immutable EKS-D tag).
- AWS Node Termination Handler v1.25 (queue processor mode).
- kubelet, kubeadm and kubectl from pkgs.k8s.io at the exact version and Debian revision, the
  repository's signing key accepted only with its pinned fingerprint.

An image is pulled by digest (`repository:tag@sha256:...`) whenever its digest is known: a tag
can be moved, a digest cannot. A digest is recorded only once confirmed from a public source;
`unpinned_images()` names the ones still pulled by tag.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubestep import versions


@dataclass(frozen=True)
class Image:
    repository: str
    tag: str
    digest: str | None = None  # sha256:<64 hex> of the image index

    @property
    def tagged(self) -> str:
        return f"{self.repository}:{self.tag}"

    @property
    def reference(self) -> str:
        """What a manifest or containerd pulls: by digest when it is known."""
        return f"{self.tagged}@{self.digest}" if self.digest else self.tagged


CLOUD_CONTROLLER_MANAGER_REPOSITORY = "registry.k8s.io/provider-aws/cloud-controller-manager"
PAUSE_REPOSITORY = "registry.k8s.io/pause"
CALICO_MANIFEST_URL = "https://raw.githubusercontent.com/projectcalico/calico/{version}/manifests/calico-vxlan.yaml"

AWS_IAM_AUTHENTICATOR = Image("public.ecr.aws/eks-distro/kubernetes-sigs/aws-iam-authenticator", "v0.7.13-eks-1-35-9")
# The authenticator's default port, on loopback only: the API server's webhook calls it locally.
AWS_IAM_AUTHENTICATOR_PORT = 21362

NODE_TERMINATION_HANDLER = Image("public.ecr.aws/aws-ec2/aws-node-termination-handler", "v1.25.6")

# pkgs.k8s.io, one repository per minor, signed by the isv:kubernetes OBS project key.
KUBERNETES_APT_REPOSITORY = "https://pkgs.k8s.io/core:/stable:/v1.{minor}/deb/"
KUBERNETES_APT_KEY_FINGERPRINT = "DE15B14486CD377B9E876E1A234654DA9A296436"

# kubeadm chooses these itself, by tag, from ClusterConfiguration.imageRepository (registry.k8s.io):
# they cannot be pinned by digest through its configuration.
KUBEADM_IMAGES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "etcd", "coredns")


def supported_minors() -> tuple[int, ...]:
    """The minors the bootstrap can install (end-of-life ones included: their clusters still roll)."""
    return versions.installable_minors()


def _minor(minor: int) -> versions.Minor:
    return versions.catalog().minors[minor]


def pause(minor: int) -> Image:
    entry = _minor(minor)
    return Image(PAUSE_REPOSITORY, entry.pause, entry.digests.get("pause"))


def pause_image(minor: int) -> str:
    return pause(minor).reference


def cloud_controller_manager(minor: int) -> Image:
    entry = _minor(minor)
    return Image(
        CLOUD_CONTROLLER_MANAGER_REPOSITORY, entry.cloud_controller_manager, entry.digests.get("cloudControllerManager")
    )


def cloud_controller_manager_image(minor: int) -> str:
    return cloud_controller_manager(minor).reference


def calico_manifest(minor: int) -> tuple[str, str]:
    """(URL, SHA-256) of the Calico VXLAN manifest for this minor."""
    release = _minor(minor).calico
    return CALICO_MANIFEST_URL.format(version=release), versions.catalog().calico_manifests[release]


def calico_images(minor: int) -> list[Image]:
    """The images the minor's Calico manifest names, with their digests where known."""
    release = _minor(minor).calico
    found = []
    for tagged, digest in versions.catalog().calico_images.get(release, {}).items():
        repository, _, tag = tagged.rpartition(":")
        found.append(Image(repository, tag, digest))
    return found


def kubernetes_apt_repository(minor: int) -> str:
    return KUBERNETES_APT_REPOSITORY.format(minor=minor)


def kubernetes_package_revision() -> str:
    return versions.catalog().package_revision


def images(minor: int) -> list[Image]:
    """Every image kubestep itself names for a cluster on this minor."""
    return [
        pause(minor),
        cloud_controller_manager(minor),
        AWS_IAM_AUTHENTICATOR,
        NODE_TERMINATION_HANDLER,
    ] + calico_images(minor)


def unpinned_images() -> list[str]:
    """Every image kubestep names without a known digest, across the installable minors."""
    return sorted({i.tagged for minor in supported_minors() for i in images(minor) if not i.digest})
