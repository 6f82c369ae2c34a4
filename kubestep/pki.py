"""The cluster's PKI, made once per cluster in a workflow step (never on an instance, so the CA
hash is known before any instance boots and every join can pin it): the cluster CA, the etcd
CA, the front-proxy CA and the service-account key pair, as kubeadm lays them out in
/etc/kubernetes/pki. kubeadm then signs every leaf certificate from these on each replica.

Certificates follow kubeadm's CA profile (cmd/kubeadm/app/util/pkiutil: self-signed, CA:true,
key usages digitalSignature+keyEncipherment+keyCertSign, 10 years)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

CA_VALIDITY = timedelta(days=3650)
KEY_SIZE = 2048
# kubeadm's CA common names.
CAS = {"ca": "kubernetes", "etcd-ca": "etcd-ca", "front-proxy-ca": "front-proxy-ca"}


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)


def _pem_key(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


def _ca(common_name: str, key: rsa.RSAPrivateKey, now: datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


@dataclass(frozen=True)
class ClusterPki:
    """Everything the control-plane secret holds (private), and what is public about it."""

    material: dict[str, str]  # secret JSON keys -> PEM / base64 text (write_secrets.py's layout)

    @property
    def ca_certificate(self) -> str:
        return self.material["ca.crt"]

    @property
    def ca_cert_hash(self) -> str:
        return ca_cert_hash(self.ca_certificate)


def generate(now: datetime | None = None) -> ClusterPki:
    now = now or datetime.now(UTC)
    material: dict[str, str] = {}
    for prefix, common_name in CAS.items():
        key = _key()
        material[f"{prefix}.crt"] = _ca(common_name, key, now).public_bytes(serialization.Encoding.PEM).decode()
        material[f"{prefix}.key"] = _pem_key(key)
    service_accounts = _key()
    material["sa.key"] = _pem_key(service_accounts)
    material["sa.pub"] = (
        service_accounts.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    # Secrets encryption at rest (secretbox): 32 random bytes, base64.
    material["encryptionKey"] = base64.b64encode(secrets.token_bytes(32)).decode()
    return ClusterPki(material)


def ca_cert_hash(certificate_pem: str) -> str:
    """kubeadm's discovery hash: sha256 of the CA certificate's SubjectPublicKeyInfo (DER)
    (cmd/kubeadm/app/util/pubkeypin)."""
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "sha256:" + hashlib.sha256(spki).hexdigest()


TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def bootstrap_token() -> str:
    """A kubeadm bootstrap token, `[a-z0-9]{6}.[a-z0-9]{16}` (its id, then its secret)."""

    def part(n: int) -> str:
        return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(n))

    return f"{part(6)}.{part(16)}"
