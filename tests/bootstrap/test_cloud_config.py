"""Every rendered user-data and bootstrap bundle: valid for Debian's cloud-init, shellcheck-clean
scripts, the user-data well within EC2's size limit, the bundle reproducible and named by its
digest, and both free of secrets."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re
import shutil
import subprocess
from importlib import resources

import pytest
import yaml

from kubestep.bootstrap import BootstrapParams, BundleRef, bundle, render_bundle, render_cloud_config, render_user_data
from kubestep.bootstrap.cloud_init import USER_DATA_LIMIT, files, script, write_files
from tests.bootstrap.conftest import CONTROL_PLANE_SECRET_VALUE, JOIN_TOKEN, control_plane, node, variants

VARIANTS = variants()
BUCKET = "svc-kubestep-state-0123456789ab"
# What the user-data may grow to: a quarter of EC2's limit. The largest today (seven replicas,
# every option) is about 2.6 KB; everything big belongs in the bundle, and a feature that needs
# this ceiling raised should say why in this line.
USER_DATA_CEILING = 4096


def ref(params: BootstrapParams) -> BundleRef:
    packed = render_bundle(params)
    return BundleRef(BUCKET, packed.key(params.uid), packed.sha256)


def user_data(params: BootstrapParams) -> bytes:
    return base64.b64decode(render_user_data(params, ref(params)))


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is required (scripts/setup.sh installs it with apt on Debian)"
    return path


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_cloud_init_accepts_the_user_data(variant, tmp_path):
    text = render_cloud_config(VARIANTS[variant], ref(VARIANTS[variant]))
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
def test_user_data_is_the_gzipped_cloud_config_well_within_the_ec2_limit(variant):
    packed = user_data(VARIANTS[variant])
    assert len(packed) <= USER_DATA_CEILING < USER_DATA_LIMIT
    assert gzip.decompress(packed).decode() == render_cloud_config(VARIANTS[variant], ref(VARIANTS[variant]))


def test_the_largest_control_plane_stays_under_the_ceiling():
    """Seven replicas (every stable name in the settings and the certificates' SANs), every
    optional feature on. The administrators are not in the user-data (the replicas read them
    from their item), so however many there are this is the largest a control plane gets."""
    params = control_plane(6, replica_count=7)
    assert params.node_termination_queue_url and params.encrypt_secrets
    assert len(user_data(params)) <= USER_DATA_CEILING


def test_the_user_data_holds_the_settings_the_loader_and_its_hook_only():
    params = control_plane(1)
    config = yaml.safe_load(gzip.decompress(user_data(params)).decode())
    assert [entry["path"] for entry in config["write_files"]] == [
        "/etc/kubestep/bootstrap.env",
        "/usr/local/sbin/kubestep-loader",
        "/var/lib/cloud/scripts/per-boot/kubestep-bootstrap",
    ]
    assert config["write_files"][2]["content"].endswith("exec /usr/local/sbin/kubestep-loader\n")
    assert bundle.reference(render_user_data(params, ref(params))) == ref(params)


@pytest.mark.parametrize("variant", ["control-plane", "node"])
def test_the_bundle_and_the_user_data_are_every_file_of_the_instance(variant):
    params = VARIANTS[variant]
    packed = render_bundle(params)
    config = yaml.safe_load(gzip.decompress(user_data(params)).decode())
    written = {entry["path"]: entry["content"] for entry in config["write_files"]}
    assert {**written, **bundle.unpack(packed.data)} == {f.path: f.content for f in files(params, ref(params))}
    assert not set(written) & set(bundle.unpack(packed.data))


def test_the_bundle_is_reproducible_and_named_by_its_digest():
    """The same files make the same bytes (the same object, never uploaded twice); a changed
    file makes another digest, so a launch template version keeps booting the bundle it names."""
    first, again = render_bundle(control_plane(1)), render_bundle(control_plane(1))
    assert first.data == again.data and first.sha256 == hashlib.sha256(first.data).hexdigest()
    assert first.key("abcd1234") == f"bootstrap/abcd1234/{first.sha256}.tar.gz"
    assert bundle.uid_of(first.key("abcd1234")) == "abcd1234" and bundle.uid_of("backups/abcd1234/x.db") is None
    assert render_bundle(control_plane(1, version="1.35.5")).sha256 != first.sha256
    assert render_bundle(node()).sha256 != first.sha256


def test_the_shell_scripts_ship_as_bash_parses_them_in_the_repository():
    """What ships has no comments and no indentation, but for the lines of a quoted string (the
    inline Python, whose indentation is its syntax): bash parses it into exactly the same
    commands, strings included (`declare -f` prints a function as bash parsed it)."""
    for name in ("bootstrap.sh", "etcd-member.sh"):
        original = resources.files("kubestep.bootstrap").joinpath("scripts", name).read_text()
        shipped = script(name)
        assert len(shipped) < len(original) * 0.8
        assert bash_parse(shipped) == bash_parse(original), name


def test_the_parse_comparison_sees_a_changed_string():
    shipped = script("bootstrap.sh")
    python_line = next(line for line in shipped.splitlines() if line.startswith("    ") and "token" in line)
    assert bash_parse(shipped.replace(python_line, python_line.lstrip())) != bash_parse(shipped)


def bash_parse(text: str) -> str:
    """The script as bash parsed it: its whole text as one function's body, printed back."""
    result = subprocess.run(
        [tool("bash"), "-c", 'eval "kubestep_script() {\n$1\n}" && declare -f kubestep_script', "bash", text],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def scripts() -> dict[str, str]:
    """Every distinct script any variant carries (user-data and bundle), by path and a content digest."""
    found = {}
    for name, params in VARIANTS.items():
        for entry in write_files(files(params, ref(params))):
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
    # The settings file only assigns what the scripts that source it read (SC2034), each value a
    # literal in single quotes where it holds a shell character, so that nothing in it expands
    # (SC2016 flags exactly that, e.g. the JMESPath literals of the administrators mapping).
    excluded = ["-e", "SC2034,SC2016"] if label.endswith("bootstrap.env") else []
    result = subprocess.run([tool("shellcheck"), "-s", shell, *excluded, str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_every_script_kind_is_checked():
    paths = {label.split(":", 1)[1] for label in SCRIPTS}
    assert paths == {
        "/usr/local/sbin/kubestep-bootstrap",
        "/usr/local/sbin/kubestep-etcd-member",
        "/usr/local/sbin/kubestep-etcd-snapshot",
        "/usr/local/sbin/kubestep-loader",
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
def test_nothing_secret_is_in_the_user_data_or_the_bundle(variant):
    packed = render_bundle(VARIANTS[variant])
    text = gzip.decompress(user_data(VARIANTS[variant])).decode() + "".join(bundle.unpack(packed.data).values())
    found = {what: pattern.findall(text) for what, pattern in SECRET_PATTERNS.items()}
    # The 64-hex values allowed are public: the CA hash and image digests (sha256:...), the
    # Calico manifest's checksum and the bundle's own digest.
    allowed = set(re.findall(r"sha256:([0-9a-f]{64})", text))
    allowed.update(re.findall(r"CALICO_MANIFEST_SHA256=([0-9a-f]{64})", text))
    allowed.add(packed.sha256)
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
