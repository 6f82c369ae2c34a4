"""Merging a kubestep context into a kubeconfig: other entries kept, ours replaced, idempotent,
mode 0600, atomic, and a file that is not a kubeconfig is refused untouched."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
import yaml

from kubestep.auth import kubeconfig
from kubestep.auth.kubeconfig import ClusterAccess, KubeconfigError

# Only carried, never parsed, by the kubeconfig module.
CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBkTCB+wIJAKHBfpegPjMC\n-----END CERTIFICATE-----\n"

OTHER = {
    "apiVersion": "v1",
    "kind": "Config",
    "preferences": {"colors": True},
    "clusters": [{"name": "minikube", "cluster": {"server": "https://192.168.49.2:8443"}}],
    "users": [{"name": "minikube", "user": {"client-certificate": "/home/u/.minikube/client.crt"}}],
    "contexts": [{"name": "minikube", "context": {"cluster": "minikube", "user": "minikube"}}],
    "current-context": "minikube",
}


def access(**overrides: object) -> ClusterAccess:
    fields: dict = {
        "context": kubeconfig.context_name("svc", "prod"),
        "server": "https://internal-gke-k3x9-cp-123.elb.us-east-1.amazonaws.com:443",
        "ca_pem": CA_PEM,
        "token_args": ["token", "prod"],
        "token_env": {
            "KUBESTEP_API_URL": "https://abc.execute-api.us-east-1.amazonaws.com/v1/",
            "AWS_REGION": "us-east-1",
        },
    }
    fields.update(overrides)
    return ClusterAccess(**fields)


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def named(config: dict, section: str, name: str) -> dict:
    return next(item for item in config[section] if item["name"] == name)


def test_new_file_has_cluster_user_and_context(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "config"
    written = kubeconfig.write(path, access())
    assert written == path
    config = load(path)
    assert config["apiVersion"] == "v1" and config["kind"] == "Config"
    assert config["current-context"] == "kubestep_svc_prod"
    cluster = named(config, "clusters", "kubestep_svc_prod")["cluster"]
    assert cluster["server"] == "https://internal-gke-k3x9-cp-123.elb.us-east-1.amazonaws.com:443"
    assert base64.b64decode(cluster["certificate-authority-data"]).decode() == CA_PEM
    assert "tls-server-name" not in cluster
    exec_config = named(config, "users", "kubestep_svc_prod")["user"]["exec"]
    assert exec_config["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert exec_config["command"] == "kubestep"
    assert exec_config["args"] == ["token", "prod"]
    assert exec_config["interactiveMode"] == "Never"
    assert {e["name"]: e["value"] for e in exec_config["env"]} == {
        "KUBESTEP_API_URL": "https://abc.execute-api.us-east-1.amazonaws.com/v1/",
        "AWS_REGION": "us-east-1",
    }
    context = named(config, "contexts", "kubestep_svc_prod")["context"]
    assert context == {"cluster": "kubestep_svc_prod", "user": "kubestep_svc_prod"}


def test_merge_keeps_other_entries_and_replaces_ours(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(OTHER))
    kubeconfig.write(path, access(server="https://old:443"))
    kubeconfig.write(path, access(tls_server_name="api.internal", server="https://127.0.0.1:8443"))
    config = load(path)
    for section in ("clusters", "users", "contexts"):
        assert [item["name"] for item in config[section]] == ["minikube", "kubestep_svc_prod"]
        assert named(config, section, "minikube") == next(i for i in OTHER[section] if i["name"] == "minikube")
    cluster = named(config, "clusters", "kubestep_svc_prod")["cluster"]
    assert cluster["server"] == "https://127.0.0.1:8443"
    assert cluster["tls-server-name"] == "api.internal"
    assert config["preferences"] == {"colors": True}
    assert config["current-context"] == "kubestep_svc_prod"


def test_writing_twice_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(OTHER))
    kubeconfig.write(path, access())
    first = path.read_bytes()
    kubeconfig.write(path, access())
    assert path.read_bytes() == first


def test_file_is_private_and_replaced_atomically(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(OTHER))
    path.chmod(0o644)
    inode = path.stat().st_ino
    kubeconfig.write(path, access())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.stat().st_ino != inode  # a new file renamed over the old one, not rewritten in place
    assert [p.name for p in tmp_path.iterdir()] == ["config"]  # no temporary file left


def test_symlinked_kubeconfig_is_updated_where_it_points(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "kubeconfig"
    real.parent.mkdir()
    real.write_text(yaml.safe_dump(OTHER))
    link = tmp_path / "config"
    link.symlink_to(real)
    kubeconfig.write(link, access())
    assert link.is_symlink()
    assert named(load(real), "contexts", "kubestep_svc_prod")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("clusters: [unclosed\n", "not valid YAML"),
        ("just a string\n", "not a kubeconfig"),
        ("- a\n- list\n", "not a kubeconfig"),
        ("clusters: {name: x}\n", "clusters must be a list of named entries"),
        ("users:\n- user: {}\n", "users must be a list of named entries"),
        ("kind: Pod\napiVersion: v1\n", "kind is 'Pod'"),
    ],
)
def test_refuses_to_clobber_what_it_cannot_parse(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "config"
    path.write_text(text)
    with pytest.raises(KubeconfigError, match=reason) as caught:
        kubeconfig.write(path, access())
    assert str(path) in str(caught.value)
    assert path.read_text() == text
    assert [p.name for p in tmp_path.iterdir()] == ["config"]


def test_empty_file_is_a_new_kubeconfig(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text("")
    kubeconfig.write(path, access())
    assert load(path)["current-context"] == "kubestep_svc_prod"


def test_unreadable_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.mkdir()  # a directory where the file should be
    with pytest.raises(KubeconfigError, match="is a directory, not a regular file: nothing was written"):
        kubeconfig.write(path, access())
    unreadable = tmp_path / "unreadable"
    unreadable.write_text("")
    unreadable.chmod(0)
    if os.access(unreadable, os.R_OK):  # root reads anything: a read error of another kind then
        unreadable.chmod(0o600)
        unreadable.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(KubeconfigError):
        kubeconfig.write(unreadable, access())


def test_default_path_is_kubeconfigs_first_entry_else_home(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert kubeconfig.default_path({"KUBECONFIG": f"{first}{os.pathsep}{second}"}) == first
    assert kubeconfig.default_path({"KUBECONFIG": f"{os.pathsep}{second}"}) == second
    assert kubeconfig.default_path({"KUBECONFIG": ""}) == Path("~/.kube/config").expanduser()
    assert kubeconfig.default_path({}) == Path("~/.kube/config").expanduser()


def test_context_name_is_kubestep_service_cluster() -> None:
    assert kubeconfig.context_name("prod-svc", "web") == "kubestep_prod-svc_web"
    assert kubeconfig.context_name("127.0.0.1:8080/x", "web") == "kubestep_127.0.0.1-8080-x_web"
