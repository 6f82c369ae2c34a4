"""The cluster's PKI, made once per cluster in a workflow step (never on an instance, so the CA
hash is known before any instance boots and every join can pin it): the cluster CA, the etcd
CA, the front-proxy CA and the service-account key pair, as kubeadm lays them out in
/etc/kubernetes/pki. kubeadm then signs every leaf certificate from these on each replica.

Every key is ECDSA P-256, as kubeadm makes them with `encryptionAlgorithm: ECDSA-P256`
(cmd/kubeadm/app/util/pkiutil GeneratePrivateKey: `ecdsa.GenerateKey(elliptic.P256())`): an RSA-2048
key costs ~45 ms of CPU to generate, a P-256 key well under a millisecond. Private keys are PEM in
kubeadm's own format (client-go keyutil.MarshalPrivateKeyToPEM: SEC1 "EC PRIVATE KEY"; "RSA
PRIVATE KEY" for the RSA keys of clusters made before), the public key PKIX "PUBLIC KEY"
(pkiutil EncodePublicKeyPEM). kubeadm loads a provided CA or service-account key of either type
(pkiutil TryLoadKeyFromDisk, TryLoadPrivatePublicKeyFromDisk).

Certificates follow kubeadm's CA profile (pkiutil NewSelfSignedCACert: self-signed, CA:true,
key usages digitalSignature+keyEncipherment+keyCertSign whatever the key type, 10 years), signed
with SHA-256 (ecdsa-with-SHA256 for a P-256 key, as Go's x509 picks for it).

The replicas' kubeadm makes every leaf key of the ClusterConfiguration's `encryptionAlgorithm`;
`encryption_algorithm()` reads it off the CA certificate a cluster actually has, so a cluster
whose PKI was made RSA keeps RSA leaves."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

CA_VALIDITY = timedelta(days=3650)
# kubeadm's EncryptionAlgorithmType of the keys generate() makes (v1beta4 ClusterConfiguration).
ENCRYPTION_ALGORITHM = "ECDSA-P256"
# kubeadm's CA common names.
CAS = {"ca": "kubernetes", "etcd-ca": "etcd-ca", "front-proxy-ca": "front-proxy-ca"}


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    # TraditionalOpenSSL is SEC1 ("EC PRIVATE KEY") for an EC key: what kubeadm writes.
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    ).decode()


def _ca(common_name: str, key: ec.EllipticCurvePrivateKey, now: datetime) -> x509.Certificate:
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


# The CA key's type -> kubeadm's EncryptionAlgorithmType (the const block of
# cmd/kubeadm/app/apis/kubeadm/v1beta4/types.go at the commit kubestep's schema names).
RSA_ALGORITHMS = {2048: "RSA-2048", 3072: "RSA-3072", 4096: "RSA-4096"}
EC_ALGORITHMS = {"secp256r1": "ECDSA-P256"}


def encryption_algorithm(certificate_pem: str) -> str:
    """The `encryptionAlgorithm` matching a CA certificate's key: the replicas' leaf keys are then
    of the CA's own type (RSA-2048 for a cluster whose PKI was made before P-256)."""
    key = x509.load_pem_x509_certificate(certificate_pem.encode()).public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size in RSA_ALGORITHMS:
        return RSA_ALGORITHMS[key.key_size]
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in EC_ALGORITHMS:
        return EC_ALGORITHMS[key.curve.name]
    raise ValueError(
        f"the cluster CA's key ({type(key).__name__}) is none of kubeadm's encryption algorithms "
        f"({', '.join([*RSA_ALGORITHMS.values(), *EC_ALGORITHMS.values()])})"
    )


TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def bootstrap_token() -> str:
    """A kubeadm bootstrap token, `[a-z0-9]{6}.[a-z0-9]{16}` (its id, then its secret)."""

    def part(n: int) -> str:
        return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(n))

    return f"{part(6)}.{part(16)}"
