"""Every image kubestep names is pulled by digest where its digest is known, and the ones still
pulled by tag are listed here, by name: a digest is recorded (in kubestep/data/
kubernetes-versions.json or components.py) only once confirmed from a public source, never
guessed. Adding one removes it from UNPINNED below; this test then says so."""

from __future__ import annotations

import re

from kubestep.bootstrap import components
from kubestep.bootstrap.cloud_init import environment, files
from tests.bootstrap.conftest import control_plane, node

# No public source reachable when these pins were made gave their digests.
UNPINNED = [
    "public.ecr.aws/aws-ec2/aws-node-termination-handler:v1.25.6",
    "public.ecr.aws/eks-distro/kubernetes-sigs/aws-iam-authenticator:v0.7.13-eks-1-35-9",
    "quay.io/calico/cni:v3.31.7",
    "quay.io/calico/kube-controllers:v3.31.7",
    "quay.io/calico/node:v3.31.7",
    "registry.k8s.io/provider-aws/cloud-controller-manager:v1.35.0",
    "registry.k8s.io/provider-aws/cloud-controller-manager:v1.36.0",
    "registry.k8s.io/provider-aws/cloud-controller-manager:v1.37.0",
]
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def test_the_images_still_pulled_by_tag_are_exactly_these():
    assert components.unpinned_images() == UNPINNED
    # And kubeadm's own (kube-apiserver, ..., etcd, CoreDNS): chosen by kubeadm by tag, which its
    # configuration cannot pin by digest; a private mirror (imageRepository) is the way to fix them.
    assert components.KUBEADM_IMAGES == (
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kube-proxy",
        "etcd",
        "coredns",
    )


def rendered_images(params) -> list[str]:
    """Every `image:` of every manifest the instance gets (user-data and bundle), and containerd's
    sandbox image."""
    found = []
    for entry in files(params):
        found += re.findall(r"^\s*-?\s*image: (\S+)$", entry.content, re.MULTILINE)
        found += re.findall(r'sandbox_image = "(\S+)"', entry.content)
    return found


def test_rendered_manifests_pull_by_digest_whenever_the_digest_is_known():
    for params in (control_plane(version="1.34.8"), control_plane(version="1.36.5"), node(version="1.36.5")):
        images = rendered_images(params)
        assert images, params.version
        for image in images:
            tagged = DIGEST.sub("", image)
            assert bool(DIGEST.search(image)) == (tagged not in UNPINNED), image
    # 1.34's cloud controller manager and every minor's pause image are pinned.
    assert components.cloud_controller_manager_image(34).endswith(
        "v1.34.3@sha256:ab45cec4a1ee68a556d09a362746db8fd66b258101aefcf0542f51e960248810"
    )
    assert "registry.k8s.io/pause:3.10.1@sha256:" in " ".join(rendered_images(node(version="1.37.1")))


def test_calico_images_are_rewritten_to_their_digests_on_the_instance():
    pins = environment(control_plane(version="1.36.5"))["CALICO_IMAGE_PINS"].split()
    assert sorted(p.split("=")[0] for p in pins) == [
        "quay.io/calico/cni:v3.32.1",
        "quay.io/calico/kube-controllers:v3.32.1",
        "quay.io/calico/node:v3.32.1",
    ]
    assert all(DIGEST.search(p.split("=")[1]) for p in pins)
    # No digest known for 1.34's Calico: nothing to rewrite, its images are pulled by tag.
    assert environment(control_plane(version="1.34.8"))["CALICO_IMAGE_PINS"] == ""
