"""What keeps a cluster working past its first year, with the cluster harness (real etcd, the
API modelled on it): kubeadm's certificates renewed before they expire, and the control plane
restarted the way kubeadm documents ("Certificate Management with kubeadm": `kubeadm certs renew`,
then each static Pod restarted by moving its manifest out of /etc/kubernetes/manifests and back);
the join tokens following the node secret, with overlap, as a least-privileged identity minted
for each run, so neither an expired admin.conf nor a rotated token stops nodes from joining."""

from __future__ import annotations

import base64
import datetime
import json

import pytest
import yaml

from tests.bootstrap.cluster_harness import ClusterHarness
from tests.bootstrap.conftest import JOIN_TOKEN

VERSION = "1.36.5"
ROTATED = "zyxwvu.0123456789zyxwvu"
BOOTSTRAP = "/usr/local/sbin/kubestep-bootstrap"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # Its certificates are made to expire within 30 days: due for renewal (90 days ahead).
    harness = ClusterHarness(tmp_path_factory.mktemp("maintenance"), replica_count=1, certificate_days=30)
    try:
        harness.instance, booted = harness.boot(harness.replica(0, VERSION))
        assert booted.ok, booted.stderr
        yield harness
    finally:
        harness.close()


def expiry(item: dict, name: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(item["certificates"]["M"][name]["S"].replace("Z", "+00:00"))


def tokens(cluster: ClusterHarness) -> dict[str, dict[str, str]]:
    """The bootstrap-token Secrets in the cluster: token id -> decoded data."""
    found = {}
    for secret in cluster.list("secrets"):
        if secret.get("type") == "bootstrap.kubernetes.io/token":
            data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
            found[data["token-id"]] = data
    return found


def test_certificates_due_within_90_days_are_renewed_and_the_control_plane_restarted(cluster):
    now = datetime.datetime.now(datetime.UTC)
    before = cluster.report(cluster.instance)
    assert expiry(before, "apiserver") < now + datetime.timedelta(days=31)
    assert expiry(before, "admin.conf") < now + datetime.timedelta(days=31)
    etcd_starts = len(cluster.events("etcd-started"))
    renewed = cluster.run(cluster.instance, BOOTSTRAP, "renew-certificates")
    assert renewed.returncode == 0, renewed.stderr
    assert len(cluster.events("kubeadm-certs-renewed")) == 1
    # etcd was restarted (its manifest moved out and back), and the control plane serves again.
    assert len(cluster.events("etcd-started")) == etcd_starts + 1
    manifests = cluster.base / "instances" / cluster.instance["id"] / "root/etc/kubernetes/manifests"
    assert {p.name for p in manifests.iterdir()} >= {"etcd.yaml", "kube-apiserver.yaml", "kube-scheduler.yaml"}
    assert cluster.run(cluster.instance, BOOTSTRAP, "report").returncode == 0
    after = cluster.report(cluster.instance)
    assert after["checks"]["M"]["apiserverReady"] == {"BOOL": True}
    for name in ("apiserver", "etcd-server", "admin.conf", "super-admin.conf", "scheduler.conf"):
        assert expiry(after, name) > now + datetime.timedelta(days=300), name
    # Not due any more: the next run renews nothing and restarts nothing.
    again = cluster.run(cluster.instance, BOOTSTRAP, "renew-certificates")
    assert again.returncode == 0 and "no certificate expires within 90 days" in again.stderr
    assert len(cluster.events("kubeadm-certs-renewed")) == 1


def test_join_tokens_follow_the_node_secret_with_overlap_and_leave_others_alone(cluster):
    now = datetime.datetime.now(datetime.UTC)
    soon = (now + datetime.timedelta(minutes=40)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (now + datetime.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    foreign = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "bootstrap.kubernetes.io/token",
        "metadata": {"name": "bootstrap-token-qqqqqq", "namespace": "kube-system"},
        "data": {
            "token-id": base64.b64encode(b"qqqqqq").decode(),
            "description": base64.b64encode(b"made by an administrator").decode(),
        },
    }
    cluster.etcdctl("put", "/registry/secrets/kube-system/bootstrap-token-qqqqqq", json.dumps(foreign))
    # Rotation: the new token first, the previous one kept until it expires.
    cluster.set_node_secret(
        {"token": ROTATED, "tokens": [{"token": ROTATED, "expiresAt": later}, {"token": JOIN_TOKEN, "expiresAt": soon}]}
    )
    refreshed = cluster.run(cluster.instance, BOOTSTRAP, "refresh-tokens")
    assert refreshed.returncode == 0, refreshed.stderr
    registered = tokens(cluster)
    assert set(registered) == {"zyxwvu", "abcdef", "qqqqqq"}
    # Each expires within two hours, the previous one no later than the secret says.
    assert registered["abcdef"]["expiration"] <= soon
    assert registered["zyxwvu"]["expiration"] <= (now + datetime.timedelta(hours=2, minutes=1)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert registered["zyxwvu"]["token-secret"] == ROTATED.split(".")[1]
    # The overlap ends: the previous token leaves the secret and the cluster.
    cluster.set_node_secret({"token": ROTATED, "tokens": [{"token": ROTATED, "expiresAt": later}]})
    refreshed = cluster.run(cluster.instance, BOOTSTRAP, "refresh-tokens")
    assert refreshed.returncode == 0, refreshed.stderr
    assert set(tokens(cluster)) == {"zyxwvu", "qqqqqq"}
    # A node joins with the rotated token.
    node, booted = cluster.boot(cluster.node(VERSION))
    assert booted.ok, booted.stderr


def test_token_refresh_needs_neither_admin_conf_nor_more_than_its_role(cluster):
    cluster.set_node_secret({"token": JOIN_TOKEN})
    admin = cluster.base / "instances" / cluster.instance["id"] / "root/etc/kubernetes/admin.conf"
    original = admin.read_text()
    try:
        admin.write_text(expired_kubeconfig(original))
        refused = cluster.command(cluster.instance, "kubectl", "--kubeconfig", str(admin), "get", "nodes", "-o", "json")
        assert refused.returncode != 0 and "Unauthorized" in refused.stderr
        refreshed = cluster.run(cluster.instance, BOOTSTRAP, "refresh-tokens")
        assert refreshed.returncode == 0, refreshed.stderr
        assert "abcdef" in tokens(cluster)
    finally:
        admin.write_text(original)
    # Its identity may manage bootstrap-token Secrets only through the Role the add-ons bind.
    binding = "/registry/rolebindings/kube-system/kubestep:bootstrap-token-manager"
    saved = cluster.etcdctl("get", binding, "--print-value-only").stdout
    cluster.etcdctl("del", binding)
    try:
        refused = cluster.run(cluster.instance, BOOTSTRAP, "refresh-tokens")
        assert refused.returncode != 0 and "Forbidden" in refused.stderr
    finally:
        cluster.etcdctl("put", binding, saved.strip())


def expired_kubeconfig(text: str) -> str:
    """The same kubeconfig with a client certificate that expired yesterday."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    document = yaml.safe_load(text)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes-admin"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kubeadm:cluster-admins"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=366))
        .not_valid_after(now - datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    user = document["users"][0]["user"]
    user["client-certificate-data"] = base64.b64encode(certificate.public_bytes(serialization.Encoding.PEM)).decode()
    return yaml.safe_dump(document)
