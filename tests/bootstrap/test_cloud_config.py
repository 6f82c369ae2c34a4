"""Every rendered user-data: valid for Debian's cloud-init, shellcheck-clean scripts, within
EC2's size limit, and free of secrets."""

from __future__ import annotations

import base64
import gzip
import json
import re
import shutil
import subprocess

import pytest
import yaml

from kubestep.bootstrap import render_cloud_config, render_user_data
from tests.bootstrap.conftest import ACCOUNT, CONTROL_PLANE_SECRET_VALUE, JOIN_TOKEN, control_plane, variants

VARIANTS = variants()


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is required (scripts/setup.sh installs it with apt on Debian)"
    return path


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_cloud_init_accepts_the_user_data(variant, tmp_path):
    text = render_cloud_config(VARIANTS[variant])
    config = tmp_path / "user-data.yaml"
    config.write_text(text)
    result = subprocess.run(
        [tool("cloud-init"), "schema", "--config-file", str(config)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


def test_cloud_init_schema_check_can_fail(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("#cloud-config\nwrite_files:\n- path: /x\n  encoding: rot13\n  content: x\n")
    result = subprocess.run(
        [tool("cloud-init"), "schema", "--config-file", str(config)], capture_output=True, text=True
    )
    assert result.returncode != 0


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_user_data_is_the_gzipped_cloud_config_within_the_ec2_limit(variant):
    packed = base64.b64decode(render_user_data(VARIANTS[variant]))
    assert len(packed) <= 16384
    assert gzip.decompress(packed).decode() == render_cloud_config(VARIANTS[variant])


def test_a_large_control_plane_still_fits_in_the_user_data_limit():
    # Seven replicas (every stable name in the settings and SANs) and twenty admin identities.
    admins = tuple(f"arn:aws:iam::{ACCOUNT}:role/team-{i}/PlatformAdministrator{i}" for i in range(20))
    packed = base64.b64decode(render_user_data(control_plane(6, replica_count=7, admin_identity_arns=admins)))
    assert len(packed) <= 16384


def scripts() -> dict[str, str]:
    """Every distinct script any variant carries, by path and a content digest."""
    found = {}
    for name, params in VARIANTS.items():
        for entry in yaml.safe_load(render_cloud_config(params))["write_files"]:
            if entry["content"].startswith(("#!/bin/", "# shellcheck shell=")):
                found.setdefault(entry["content"], f"{name}:{entry['path']}")
    return {label: content for content, label in found.items()}


SCRIPTS = scripts()


@pytest.mark.parametrize("label", sorted(SCRIPTS))
def test_every_rendered_script_passes_shellcheck(label, tmp_path):
    content = SCRIPTS[label]
    shell = "sh" if content.startswith("#!/bin/sh") else "bash"
    script = tmp_path / "script"
    script.write_text(content)
    # The settings file only assigns what the scripts that source it read.
    excluded = ["-e", "SC2034"] if label.endswith("bootstrap.env") else []
    result = subprocess.run([tool("shellcheck"), "-s", shell, *excluded, str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_every_script_kind_is_checked():
    paths = {label.split(":", 1)[1] for label in SCRIPTS}
    assert paths == {
        "/usr/local/sbin/kubestep-bootstrap",
        "/usr/local/sbin/kubestep-etcd-member",
        "/var/lib/cloud/scripts/per-boot/kubestep-bootstrap",
        "/etc/kubestep/bootstrap.env",
    }


SECRET_PATTERNS = {
    "a private key": re.compile(r"PRIVATE KEY"),
    "a PEM block": re.compile(r"-----BEGIN [A-Z ]+-----"),
    "a kubeadm bootstrap token": re.compile(r"\b[a-z0-9]{6}\.[a-z0-9]{16}\b"),
    "a kubeadm certificate key": re.compile(r"\b[0-9a-f]{64}\b"),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_nothing_secret_is_in_the_user_data(variant):
    text = gzip.decompress(base64.b64decode(render_user_data(VARIANTS[variant]))).decode()
    found = {what: pattern.findall(text) for what, pattern in SECRET_PATTERNS.items()}
    # The 64-hex values allowed are public: the CA hash and image digests (sha256:...), and the
    # Calico manifest's checksum.
    allowed = set(re.findall(r"sha256:([0-9a-f]{64})", text))
    allowed.update(re.findall(r"CALICO_MANIFEST_SHA256=([0-9a-f]{64})", text))
    assert VARIANTS[variant].ca_cert_hash.split(":")[1] in allowed
    found["a kubeadm certificate key"] = [h for h in found["a kubeadm certificate key"] if h not in allowed]
    assert found == {what: [] for what in SECRET_PATTERNS}
    for value in [JOIN_TOKEN, *CONTROL_PLANE_SECRET_VALUE.values()]:
        assert value not in text
    # The secrets are named (by ARN), never included.
    assert VARIANTS[variant].node_secret_arn in text


def test_the_secret_scan_would_catch_a_leak():
    text = json.dumps(CONTROL_PLANE_SECRET_VALUE) + JOIN_TOKEN
    assert SECRET_PATTERNS["a private key"].search(text) and SECRET_PATTERNS["a kubeadm bootstrap token"].search(text)
