"""A control-plane secret's PKI as kubestep.pki made it before ECDSA P-256 (RSA-2048 keys): what
clusters created then still hold, for the tests that check kubestep keeps serving them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from kubestep import pki


def rsa_era_material() -> dict[str, str]:
    """A control-plane secret as kubestep.pki made it before P-256: RSA-2048 keys ("RSA PRIVATE
    KEY", PKCS#1), CA certificates of kubeadm's CA profile signed sha256WithRSAEncryption."""
    now = datetime.now(UTC)
    material: dict[str, str] = {}

    def pem_key(key: rsa.RSAPrivateKey) -> str:
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        ).decode()

    for prefix, common_name in pki.CAS.items():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + pki.CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, True, False, False, True, False, False, False), critical=True)
            .sign(key, hashes.SHA256())
        )
        material[f"{prefix}.crt"] = certificate.public_bytes(serialization.Encoding.PEM).decode()
        material[f"{prefix}.key"] = pem_key(key)
    service_accounts = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    material["sa.key"] = pem_key(service_accounts)
    material["sa.pub"] = (
        service_accounts.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    material["encryptionKey"] = pki.generate().material["encryptionKey"]
    return material
