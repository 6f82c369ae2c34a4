"""Real etcd (Debian's etcd 3.4, Go's crypto/tls and crypto/x509) serving mutual TLS with the
cluster's own etcd CA (kubestep.pki), as kubeadm sets it up on a replica: `--trusted-ca-file` is
the secret's `etcd-ca.crt`, the server and client certificates are signed with `etcd-ca.key`,
their keys of the CA's type (kubeadm's `encryptionAlgorithm`, which follows the CA; kubeadm's
etcd certificate profiles: cmd/kubeadm/app/phases/certs/certlist.go). The stand-in cluster in
tests/bootstrap/cluster_harness.py runs etcd without TLS; this proves Go accepts the PKI's
ECDSA CA (and its key usages) where the replicas use it, and refuses a client it did not sign."""

from __future__ import annotations

import contextlib
import ipaddress
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubestep import pki
from tests.rsa_era_pki import rsa_era_material

ETCD = shutil.which("etcd", path="/usr/bin:/usr/local/bin") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl", path="/usr/bin:/usr/local/bin") or "/usr/bin/etcdctl"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _leaf_key(algorithm: str):
    """What kubeadm generates for a leaf under `encryptionAlgorithm` (pkiutil GeneratePrivateKey)."""
    if algorithm == "ECDSA-P256":
        return ec.generate_private_key(ec.SECP256R1())
    assert algorithm == "RSA-2048", algorithm
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _sign(material: dict[str, str], common_name: str, usages: list, server: bool, directory: Path) -> tuple[Path, Path]:
    """A leaf of kubeadm's etcd profile signed by the secret's etcd CA: (certificate, key) files."""
    ca_key = serialization.load_pem_private_key(material["etcd-ca.key"].encode(), password=None)
    ca = x509.load_pem_x509_certificate(material["etcd-ca.crt"].encode())
    key = _leaf_key(pki.encryption_algorithm(material["etcd-ca.crt"]))
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.KeyUsage(True, False, True, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if server:
        sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    certificate = builder.sign(ca_key, hashes.SHA256())
    cert_file, key_file = directory / f"{common_name}.crt", directory / f"{common_name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(  # SEC1 / PKCS#1, as kubeadm writes leaf keys
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    key_file.chmod(0o600)
    return cert_file, key_file


@contextlib.contextmanager
def _etcd(material: dict[str, str], directory: Path) -> Iterator[str]:
    ca_file = directory / "etcd-ca.crt"
    ca_file.write_text(material["etcd-ca.crt"])
    both = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    server_cert, server_key = _sign(material, "kube-etcd", both, True, directory)
    client_port, peer_port = _free_port(), _free_port()
    endpoint = f"https://127.0.0.1:{client_port}"
    log = (directory / "etcd.log").open("w")
    process = subprocess.Popen(
        [
            ETCD,
            "--name=member",
            f"--data-dir={directory / 'data'}",
            f"--listen-client-urls={endpoint}",
            f"--advertise-client-urls={endpoint}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=member=http://127.0.0.1:{peer_port}",
            f"--cert-file={server_cert}",
            f"--key-file={server_key}",
            f"--trusted-ca-file={ca_file}",
            "--client-cert-auth=true",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _etcdctl(endpoint: str, ca: Path, cert: Path, key: Path, *args: str) -> subprocess.CompletedProcess:
    command = [ETCDCTL, f"--endpoints={endpoint}", f"--cacert={ca}", f"--cert={cert}", f"--key={key}"]
    env = {"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"}
    return subprocess.run([*command, "--dial-timeout=2s", *args], capture_output=True, text=True, env=env, timeout=20)


@pytest.mark.parametrize(
    ("make", "algorithm"), [(lambda: pki.generate().material, "ECDSA-P256"), (rsa_era_material, "RSA-2048")]
)
def test_etcd_serves_mutual_tls_under_the_clusters_etcd_ca(make, algorithm, tmp_path: Path) -> None:
    material = make()
    assert pki.encryption_algorithm(material["etcd-ca.crt"]) == algorithm
    ca = tmp_path / "etcd-ca.crt"
    ca.write_text(material["etcd-ca.crt"])
    with _etcd(material, tmp_path) as endpoint:
        cert, key = _sign(material, "kube-apiserver-etcd-client", [ExtendedKeyUsageOID.CLIENT_AUTH], False, tmp_path)
        deadline = time.monotonic() + 30
        while (put := _etcdctl(endpoint, ca, cert, key, "put", "k", algorithm)).returncode != 0:
            assert time.monotonic() < deadline, put.stderr + (tmp_path / "etcd.log").read_text()[-2000:]
            time.sleep(0.3)
        got = _etcdctl(endpoint, ca, cert, key, "get", "k", "--print-value-only")
        assert (got.returncode, got.stdout.strip()) == (0, algorithm), got.stderr
        # A client certificate from another CA (another cluster's etcd CA) is refused.
        stranger = tmp_path / "stranger"
        stranger.mkdir()
        other_cert, other_key = _sign(
            pki.generate().material, "kube-apiserver-etcd-client", [ExtendedKeyUsageOID.CLIENT_AUTH], False, stranger
        )
        refused = _etcdctl(endpoint, ca, other_cert, other_key, "get", "k")
        assert refused.returncode != 0 and algorithm not in refused.stdout
