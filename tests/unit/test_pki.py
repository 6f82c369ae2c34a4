"""The cluster PKI (kubestep.pki): ECDSA P-256 keys in kubeadm's formats and CA profile, and the
`encryptionAlgorithm` the replicas' kubeadm is told, which follows the CA a cluster actually has:
ECDSA-P256 for a new cluster, RSA-2048 for one whose PKI was made with RSA keys (before P-256),
through the real CreateCluster ASL and handlers in in-process moto (tests/unit/fleet.py)."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from kubestep import naming, pki, versions
from kubestep.bootstrap import bundle, kubeadm, schema
from tests.bootstrap.conftest import control_plane
from tests.rsa_era_pki import rsa_era_material

from .fleet import REGION, fleet, small_request

KEYS = ("ca.key", "etcd-ca.key", "front-proxy-ca.key", "sa.key")


def _certificate_with(key) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = datetime.now(UTC)
    builder = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
    builder = builder.serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=1))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


# ---------------------------------------------------------------- the PKI itself


def test_every_key_is_p256_in_kubeadms_pem_format_and_every_ca_has_kubeadms_profile() -> None:
    material = pki.generate().material
    for name in KEYS:
        # client-go keyutil.MarshalPrivateKeyToPEM: SEC1 for an ECDSA key.
        assert material[name].startswith("-----BEGIN EC PRIVATE KEY-----\n"), name
        key = serialization.load_pem_private_key(material[name].encode(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1", name
    service_accounts = serialization.load_pem_private_key(material["sa.key"].encode(), password=None)
    assert material["sa.pub"] == (
        service_accounts.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    for prefix, common_name in pki.CAS.items():
        certificate = x509.load_pem_x509_certificate(material[f"{prefix}.crt"].encode())
        key = serialization.load_pem_private_key(material[f"{prefix}.key"].encode(), password=None)
        assert certificate.public_key() == key.public_key(), prefix
        assert certificate.signature_algorithm_oid == SignatureAlgorithmOID.ECDSA_WITH_SHA256, prefix
        assert certificate.subject == certificate.issuer, prefix
        assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == common_name
        key.public_key().verify(  # self-signed with its own key
            certificate.signature, certificate.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256())
        )
        assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        # pkiutil NewSelfSignedCACert sets keyEncipherment for an ECDSA CA too.
        assert (usage.digital_signature, usage.key_encipherment, usage.key_cert_sign) == (True, True, True), prefix
        validity = certificate.not_valid_after_utc - certificate.not_valid_before_utc
        assert validity == pki.CA_VALIDITY + timedelta(minutes=5), prefix
    assert pki.encryption_algorithm(material["ca.crt"]) == pki.ENCRYPTION_ALGORITHM == "ECDSA-P256"


def test_the_discovery_hash_is_kubeadms_for_an_ec_key(tmp_path: Path) -> None:
    """kubeadm's documented way to compute the hash of a CA (any key type): openssl's DER
    SubjectPublicKeyInfo of the certificate's public key, SHA-256."""
    certificate = tmp_path / "ca.crt"
    certificate.write_text(pki.generate().ca_certificate)
    public = subprocess.run(
        ["openssl", "x509", "-pubkey", "-noout", "-in", str(certificate)], capture_output=True, check=True
    ).stdout
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"], input=public, capture_output=True, check=True
    ).stdout
    assert pki.ca_cert_hash(certificate.read_text()) == "sha256:" + hashlib.sha256(der).hexdigest()


@pytest.mark.parametrize(
    ("key", "algorithm"),
    [
        (ec.generate_private_key(ec.SECP256R1()), "ECDSA-P256"),
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "RSA-2048"),
        (rsa.generate_private_key(public_exponent=65537, key_size=3072), "RSA-3072"),
    ],
    ids=["p256", "rsa2048", "rsa3072"],
)
def test_the_encryption_algorithm_is_the_ca_keys_type(key, algorithm) -> None:
    assert pki.encryption_algorithm(_certificate_with(key)) == algorithm


def test_a_ca_key_kubeadm_has_no_algorithm_for_is_refused() -> None:
    with pytest.raises(ValueError, match=r"none of kubeadm's encryption algorithms \(RSA-2048, .*ECDSA-P256\)"):
        pki.encryption_algorithm(_certificate_with(ec.generate_private_key(ec.SECP521R1())))


@pytest.mark.parametrize(
    ("made", "algorithm"), [(lambda: pki.generate().material, "ECDSA-P256"), (rsa_era_material, "RSA-2048")]
)
def test_the_cluster_configuration_names_the_cas_algorithm_within_the_v1beta4_schema(made, algorithm) -> None:
    material = made()
    params = control_plane(encryption_algorithm=pki.encryption_algorithm(material["ca.crt"]))
    document = kubeadm.cluster_configuration(params)
    assert document["encryptionAlgorithm"] == algorithm
    assert schema.problems(schema.KUBEADM, document) == []


# ---------------------------------------------------------------- what a create renders


def _init_configuration(uid: str, replica: int) -> dict:
    """The ClusterConfiguration of replica `replica`'s init.yaml, from the bundle its launch
    template's user-data names (as the instance would download it)."""
    ec2, s3 = boto3.client("ec2", REGION), boto3.client("s3", REGION)
    versions = ec2.describe_launch_template_versions(
        LaunchTemplateName=naming.replica(uid, replica), Versions=["$Latest"]
    )["LaunchTemplateVersions"]
    ref = bundle.reference(versions[0]["LaunchTemplateData"]["UserData"])
    assert ref is not None
    files = bundle.unpack(s3.get_object(Bucket=ref.bucket, Key=ref.key)["Body"].read())
    (init,) = [text for path, text in files.items() if path.endswith("kubeadm/init.yaml")]
    return next(d for d in yaml.safe_load_all(init) if d["kind"] == "ClusterConfiguration")


def _secret(uid: str) -> dict[str, str]:
    value = boto3.client("secretsmanager", REGION).get_secret_value(SecretId=naming.control_plane_secret(uid))
    return json.loads(value["SecretString"])


def test_a_new_cluster_is_p256_and_one_made_with_rsa_keys_keeps_rsa(monkeypatch: pytest.MonkeyPatch) -> None:
    with fleet(monkeypatch) as world:
        new = world.create("fresh")
        secret = _secret(new.uid)
        assert all(secret[name].startswith("-----BEGIN EC PRIVATE KEY-----") for name in KEYS)
        assert new.cluster_ca_certificate == secret["ca.crt"]
        document = _init_configuration(new.uid, 0)
        assert document["encryptionAlgorithm"] == "ECDSA-P256"
        assert schema.problems(schema.KUBEADM, document) == []

        # A cluster whose control-plane secret holds an RSA PKI (made before P-256): the PKI step
        # finds the secret there and reads its CA back; the replicas are told RSA-2048.
        old_pki = rsa_era_material()

        def secret_made_before(payload: dict) -> None:
            uid = world.store.clusters.require(payload["clusterName"]).uid
            name = naming.control_plane_secret(uid)
            secrets = boto3.client("secretsmanager", REGION)
            if not secrets.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]:
                secrets.create_secret(Name=name, SecretString=json.dumps(old_pki))

        hooks = {**world.healthy(), "EnsureClusterPki": secret_made_before}
        run = world.run("CreateCluster", small_request("older"), "create-older-1", hooks=hooks)
        assert run.entered[-1] == "Created", run.entered
        old = world.store.clusters.require("older")
        assert old.cluster_ca_certificate == old_pki["ca.crt"] and _secret(old.uid) == old_pki
        document = _init_configuration(old.uid, 0)
        assert document["encryptionAlgorithm"] == "RSA-2048"
        assert schema.problems(schema.KUBEADM, document) == []

        # An upgrade renders the replicas' configuration again: still the CA's RSA-2048.
        _, minor, _ = versions.parse(old.version)
        target = versions.catalog().minors[minor + 1].default_version
        request = {"clusterName": "older", "controlPlane": {"version": target}}
        run = world.run("UpdateCluster", request, "update-older-1")
        assert world.store.clusters.require("older").version == target, run.entered
        document = _init_configuration(old.uid, 0)
        assert (document["kubernetesVersion"], document["encryptionAlgorithm"]) == (f"v{target}", "RSA-2048")
