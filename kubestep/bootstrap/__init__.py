"""What runs on the instances: cloud-init user-data that makes a Kubernetes control-plane
replica or node with kubeadm, and reports the result.

The Lambda side calls one function:

    render_bundle(BootstrapParams(...)) -> Bundle    # the files the instance downloads (S3)
    render_user_data(BootstrapParams(...), BundleRef(...)) -> str   # base64 cloud-config

One module per concern: `params` (the interface, validated), `kubeadm` (v1beta4 documents),
`host` (containerd, kernel, systemd units and timers), `addons` (in-cluster manifests),
`components` (pinned versions and image digests), `authenticator_mapping` (the administrators
item as aws-iam-authenticator's mapping), `cloud_init` (assembly: the user-data and the
bundle), `bundle` (the bundle's packing and its key), `scripts/` (what runs on the instance: the
loader, the boot, the report, certificate renewal, join-token refresh, etcd membership),
`schema` (upstream field schemas). The report item the instances write is
`kubestep.store.records.BootstrapReport` (docs/contracts.md)."""

from kubestep.bootstrap.bundle import Bundle, BundleRef
from kubestep.bootstrap.cloud_init import render_bundle, render_cloud_config, render_user_data
from kubestep.bootstrap.params import BootstrapParams, DnsZone, Taint, stable_replica_name

__all__ = [
    "BootstrapParams",
    "Bundle",
    "BundleRef",
    "DnsZone",
    "Taint",
    "render_bundle",
    "render_cloud_config",
    "render_user_data",
    "stable_replica_name",
]
