"""BootstrapParams refuses bad values with the field and the rule, before anything renders."""

from __future__ import annotations

import pytest

from kubestep.bootstrap import Taint, stable_replica_name
from tests.bootstrap.conftest import control_plane, node


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: node(version="1.33.9"), "version 1.33.9: the bootstrap installs Kubernetes 1.34, 1.35, 1.36, 1.37"),
        (lambda: node(version="v1.32"), "version must look like 1.MINOR.PATCH"),
        (lambda: node(ca_cert_hash="sha256:abc"), "ca_cert_hash must be sha256:<64 lowercase hex>"),
        (lambda: node(pod_cidr="10.96.0.0/16"), "pod_cidr 10.96.0.0/16 and service_cidr 10.96.0.0/12 must not overlap"),
        (lambda: node(pod_cidr="10.244.0.1/16"), "pod_cidr must be an IPv4 CIDR block"),
        (lambda: node(node_secret_arn="gke-abcd1234-node"), "node_secret_arn must be a Secrets Manager secret ARN"),
        (lambda: node(etcd_volume_id="vol-0123456789abcdef0"), "etcd_volume_id applies to the control plane only"),
        (lambda: node(node_labels={"node-role.kubernetes.io/worker": ""}), "a namespace the kubelet may not set"),
        (lambda: node(node_labels={"team": "a b"}), "is not a valid Kubernetes label value"),
        (lambda: node(node_taints=(Taint("dedicated", "x", "NoRun"),)), "effect must be one of NoSchedule"),
        (lambda: node(max_pods=0), "max_pods must be 1..1024"),
        (lambda: node(kubelet_settings={"maxPod": 3}), "kubelet_settings.maxPod is not a KubeletConfiguration"),
        (lambda: node(kubelet_settings={"cgroupDriver": "cgroupfs"}), "kubelet_settings.cgroupDriver is set by the"),
        (lambda: node(kubelet_settings={"imageGCHighThresholdPercent": "85"}), "expected int32, got str"),
        (lambda: control_plane(3), "replica_index must be 0..replica_count-1"),
        (lambda: control_plane(dns=None), "dns (hosted zone id and domain) is required"),
        (lambda: control_plane(control_plane_secret_arn=None), "control_plane_secret_arn must be a Secrets Manager"),
        (lambda: control_plane(max_pods=10), "apply to node pools, not the control plane"),
        (lambda: control_plane(node_termination_queue_url="sqs://queue"), "node_termination_queue_url must be an SQS"),
        (lambda: control_plane(encryption_algorithm=None), "encryption_algorithm must be one of kubeadm's ECDSA-P256"),
        (lambda: control_plane(encryption_algorithm="ECDSA-P521"), "(the cluster CA's key type; got 'ECDSA-P521')"),
        (lambda: node(encryption_algorithm="RSA-2048"), "encryption_algorithm applies to the control plane only"),
    ],
)
def test_bad_values_are_refused_naming_the_field(make, message):
    with pytest.raises(ValueError, match="invalid bootstrap parameters") as error:
        make()
    assert message in str(error.value)


def test_replica_names_are_the_stable_identities():
    params = control_plane(1)
    assert params.replica_names == tuple(stable_replica_name("abcd1234", i, "svc.kubestep.internal") for i in range(3))
    assert params.replica_name == "cp-1.abcd1234.svc.kubestep.internal"
