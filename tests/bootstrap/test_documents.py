"""Rendered kubeadm and kubelet documents use only fields of the published upstream types
(kubestep/bootstrap/schemas/, each naming its source commit), with the cluster's settings."""

from __future__ import annotations

import json

import pytest
import yaml

from kubestep.bootstrap import kubeadm, schema
from kubestep.bootstrap.cloud_init import files
from tests.bootstrap.conftest import control_plane, node, variants

VARIANTS = variants()


def documents(params) -> list[tuple[str, dict]]:
    """Every kubeadm/kubelet document the instance gets, as rendered into user-data."""
    found = []
    for file in files(params):
        if "/templates/kubeadm/" not in file.path:
            continue
        if file.path.endswith(".yaml"):
            found += [(file.path, d) for d in yaml.safe_load_all(file.content)]
        elif file.path.endswith("kubeletconfiguration+merge.json"):
            found.append((file.path, json.loads(file.content)))
    return found


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_rendered_document_uses_only_upstream_fields(variant):
    rendered = documents(VARIANTS[variant])
    kinds = sorted(d["kind"] for _, d in rendered)
    if VARIANTS[variant].is_control_plane:
        assert kinds == [
            "ClusterConfiguration",
            "InitConfiguration",
            "JoinConfiguration",
            "KubeletConfiguration",
            "KubeletConfiguration",
            "UpgradeConfiguration",
        ]
    else:
        assert kinds == ["JoinConfiguration", "KubeletConfiguration"]
    for path, document in rendered:
        which = schema.KUBELET if document["kind"] == "KubeletConfiguration" else schema.KUBEADM
        assert schema.problems(which, document) == [], path


def test_the_schemas_name_their_upstream_source():
    assert "1329935739c3aa007d23cb9a4dadfee9d59ff79b" in schema.load(schema.KUBEADM)["source"]
    assert "v1beta4/types.go" in schema.load(schema.KUBEADM)["source"]
    assert "b173915aea98a7a8eac661c93a66526385f50d17" in schema.load(schema.KUBELET)["source"]
    assert "maxPods" in schema.kubelet_fields() and "cgroupDriver" in schema.kubelet_fields()


@pytest.mark.parametrize(
    ("which", "document", "problem"),
    [
        # v1beta3's apiServer.timeoutForControlPlane is gone from v1beta4 (now `timeouts`).
        (
            schema.KUBEADM,
            {
                "apiVersion": kubeadm.KUBEADM_API,
                "kind": "ClusterConfiguration",
                "apiServer": {"timeoutForControlPlane": "4"},
            },
            "ClusterConfiguration.apiServer.timeoutForControlPlane: no such field in APIServer",
        ),
        # v1beta3's map-shaped extraArgs are lists of {name, value} in v1beta4.
        (
            schema.KUBEADM,
            {
                "apiVersion": kubeadm.KUBEADM_API,
                "kind": "ClusterConfiguration",
                "etcd": {"local": {"extraArgs": {"a": "b"}}},
            },
            "ClusterConfiguration.etcd.local.extraArgs: expected a list ([]Arg)",
        ),
        # kubeadm's EncryptionAlgorithmType values are spelt upper-case, curve and size after a dash.
        (
            schema.KUBEADM,
            {"apiVersion": kubeadm.KUBEADM_API, "kind": "ClusterConfiguration", "encryptionAlgorithm": "ecdsa-p256"},
            "ClusterConfiguration.encryptionAlgorithm: 'ecdsa-p256' is not one of EncryptionAlgorithmType's values "
            "(ECDSA-P256, RSA-2048, RSA-3072, RSA-4096)",
        ),
        (
            schema.KUBEADM,
            {"apiVersion": "kubeadm.k8s.io/v1beta3", "kind": "JoinConfiguration"},
            "JoinConfiguration: apiVersion must be kubeadm.k8s.io/v1beta4 (got 'kubeadm.k8s.io/v1beta3')",
        ),
        (
            schema.KUBELET,
            {"apiVersion": kubeadm.KUBELET_API, "kind": "KubeletConfiguration", "maxPod": 10},
            "KubeletConfiguration.maxPod: no such field in KubeletConfiguration",
        ),
        (
            schema.KUBELET,
            {"apiVersion": kubeadm.KUBELET_API, "kind": "KubeletConfiguration", "maxPods": "10"},
            "KubeletConfiguration.maxPods: expected int32, got str",
        ),
    ],
)
def test_the_schema_check_refuses_what_kubeadm_would_refuse(which, document, problem):
    assert problem in schema.problems(which, document)


def test_cluster_configuration_has_the_cluster_settings():
    params = control_plane(1)
    cluster = kubeadm.cluster_configuration(params)
    assert cluster["controlPlaneEndpoint"] == f"{params.endpoint}:443"
    assert cluster["kubernetesVersion"] == f"v{params.version}"
    assert cluster["networking"] == {
        "podSubnet": "10.244.0.0/16",
        "serviceSubnet": "10.96.0.0/12",
        "dnsDomain": "cluster.local",
    }
    etcd = cluster["etcd"]["local"]
    assert etcd["dataDir"] == "/var/lib/kubestep/etcd-volume/data"
    names = [f"cp-{i}.abcd1234.svc.kubestep.internal" for i in range(3)]
    assert etcd["serverCertSANs"] == names == etcd["peerCertSANs"]
    assert etcd["extraArgs"] == [{"name": "initial-cluster-token", "value": "gke-abcd1234-etcd"}]
    # Nothing replica-specific is cluster-wide (joining replicas read it back from the cluster).
    assert "cp-1" not in json.dumps({k: v for k, v in cluster.items() if k != "etcd"})


def test_every_kubelet_is_external_cloud_provider():
    for params in VARIANTS.values():
        registration = kubeadm.node_registration(params)
        assert {"name": "cloud-provider", "value": "external"} in registration["kubeletExtraArgs"]


def test_etcd_identity_flags_are_on_the_stable_name():
    flags = kubeadm.etcd_identity_flags(control_plane(2))
    name = "cp-2.abcd1234.svc.kubestep.internal"
    assert flags["name"] == name
    assert flags["initial-advertise-peer-urls"] == f"https://{name}:2380"
    assert flags["advertise-client-urls"] == f"https://{name}:2379"
    assert flags["initial-cluster-token"] == "gke-abcd1234-etcd"


def test_nodes_without_taints_register_none_and_control_planes_keep_the_default_taint():
    assert kubeadm.node_registration(node(node_taints=()))["taints"] == []
    assert "taints" not in kubeadm.node_registration(control_plane())


def test_join_configurations_never_skip_ca_verification():
    for params in VARIANTS.values():
        discovery = kubeadm.join_configuration(params)["discovery"]["bootstrapToken"]
        assert discovery["caCertHashes"] == [params.ca_cert_hash]
        assert "unsafeSkipCAVerification" not in discovery
