"""The instances' user-data: valid cloud-config, a script shellcheck accepts, no secret values."""

from __future__ import annotations

import base64
import shutil
import subprocess

import pytest
import yaml

from kubestep.bootstrap import BootstrapParams, render, user_data

PARAMS = {
    "control-plane": BootstrapParams(
        "tbl",
        "us-east-1",
        "abcd1234",
        "control-plane",
        "1.32.4",
        "lb.example",
        "gke-abcd1234-bootstrap",
        "192.168.0.0/16",
        "10.96.0.0/12",
        1,
        "vol-0123",
    ),
    "node": BootstrapParams(
        "tbl",
        "us-east-1",
        "abcd1234",
        "node",
        "1.31.8",
        "lb.example",
        "gke-abcd1234-bootstrap",
        "192.168.0.0/16",
        "10.96.0.0/12",
    ),
}


@pytest.mark.parametrize("role", sorted(PARAMS))
def test_user_data_is_cloud_config_with_the_cluster_settings(role):
    text = render(PARAMS[role])
    assert text.startswith("#cloud-config\n")
    config = yaml.safe_load(text)
    files = {f["path"]: f for f in config["write_files"]}
    env = files["/etc/kubestep/bootstrap.env"]["content"]
    assert files["/etc/kubestep/bootstrap.env"]["permissions"] == "0600"
    assert f"ROLE={role}" in env and "SECRET_NAME=gke-abcd1234-bootstrap" in env
    assert ("MINOR=1.32" if role == "control-plane" else "MINOR=1.31") in env
    assert config["runcmd"] == [["/usr/local/sbin/kubestep-bootstrap"]]
    assert base64.b64decode(user_data(PARAMS[role])).decode() == text


@pytest.mark.parametrize("role", sorted(PARAMS))
def test_bootstrap_script_passes_shellcheck(role, tmp_path):
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is required (scripts/setup.sh installs it on Debian)"
    script = tmp_path / "bootstrap.sh"
    script.write_text(yaml.safe_load(render(PARAMS[role]))["write_files"][1]["content"])
    result = subprocess.run([shellcheck, "-s", "bash", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
