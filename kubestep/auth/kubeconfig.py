"""A kubeconfig context for a kubestep cluster, merged into the user's kubeconfig file.

The context authenticates with an exec plugin (`kubestep token CLUSTER`), as `aws eks
update-kubeconfig` and `gcloud container clusters get-credentials` do: nothing secret is written to
the file, the token is minted from the caller's AWS credentials each time kubectl needs one.
Field names follow the kubeconfig schema (k8s.io/client-go/tools/clientcmd/api/v1 types.go)."""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubestep import files
from kubestep.auth.token import EXEC_API_VERSIONS
from kubestep.checkout import KUBECONFIG_INSTALL_HINT
from kubestep.errors import KubestepError

KUBECONFIG_MODE = 0o600
SECTIONS = ("clusters", "users", "contexts")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9.-]+")


class KubeconfigError(KubestepError):
    """The kubeconfig file cannot be read or written; nothing was changed."""


class UnsafeKubeconfig(KubeconfigError):
    """The kubeconfig path names a device, FIFO, directory or dangling symlink: bad input."""


@dataclass(frozen=True)
class ClusterAccess:
    """What one kubestep cluster's context says: where the API server is, which CA signs its
    certificate, and how to get a token."""

    context: str
    server: str
    ca_pem: str
    token_args: list[str]
    token_env: dict[str, str] = field(default_factory=dict)
    # When `server` is not a name on the certificate (a tunnel's 127.0.0.1), the name to verify.
    tls_server_name: str | None = None
    exec_api_version: str = EXEC_API_VERSIONS[0]


def context_name(service_or_endpoint: str, cluster: str) -> str:
    """`kubestep_<service or API id>_<cluster>`, like GKE's `gke_<project>_<location>_<cluster>`."""
    return f"kubestep_{_UNSAFE_NAME_CHARS.sub('-', service_or_endpoint)}_{cluster}"


def default_path(environ: Mapping[str, str] | None = None) -> Path:
    """kubectl's own choice for writing: the first file of `$KUBECONFIG`, else `~/.kube/config`."""
    environ = os.environ if environ is None else environ
    for entry in (environ.get("KUBECONFIG") or "").split(os.pathsep):
        if entry.strip():
            return Path(entry.strip()).expanduser()
    return Path("~/.kube/config").expanduser()


def entries(access: ClusterAccess) -> dict[str, dict[str, Any]]:
    """The cluster, user and context entries for `access`, all named after the context."""
    cluster: dict[str, Any] = {
        "server": access.server,
        "certificate-authority-data": base64.b64encode(access.ca_pem.encode()).decode(),
    }
    if access.tls_server_name:
        cluster["tls-server-name"] = access.tls_server_name
    exec_config: dict[str, Any] = {
        "apiVersion": access.exec_api_version,
        "command": "kubestep",
        "args": list(access.token_args),
        "interactiveMode": "Never",
        "provideClusterInfo": False,
        "installHint": KUBECONFIG_INSTALL_HINT,
    }
    if access.token_env:
        exec_config["env"] = [{"name": k, "value": v} for k, v in sorted(access.token_env.items())]
    return {
        "clusters": {"name": access.context, "cluster": cluster},
        "users": {"name": access.context, "user": {"exec": exec_config}},
        "contexts": {"name": access.context, "context": {"cluster": access.context, "user": access.context}},
    }


def merge(config: dict[str, Any] | None, access: ClusterAccess) -> dict[str, Any]:
    """`config` with our three entries replaced or added (everything else kept, in order) and
    the current context set to ours."""
    merged: dict[str, Any] = dict(config or {})
    merged.setdefault("apiVersion", "v1")
    merged.setdefault("kind", "Config")
    for section, entry in entries(access).items():
        items = [item for item in merged.get(section) or [] if item.get("name") != entry["name"]]
        merged[section] = [*items, entry]
    merged["current-context"] = access.context
    merged.setdefault("preferences", {})
    return merged


def read(path: Path) -> dict[str, Any] | None:
    """The kubeconfig at `path` (None if missing or empty); a file that is not one is an error,
    never something to overwrite."""
    import yaml  # here, not at module level: the Lambda asset (which holds kubestep/) has no PyYAML

    try:
        text = files.read_text_if_regular(path, "kubeconfig")
    except files.UnsafeTarget as exc:
        raise UnsafeKubeconfig(str(exc)) from None
    except OSError as exc:
        raise KubeconfigError(f"cannot read kubeconfig {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise KubeconfigError(f"kubeconfig {path} is not UTF-8 text; fix or move it") from None
    if text is None:
        return None
    try:
        config = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise KubeconfigError(
            f"kubeconfig {path} is not valid YAML{where}; fix or move it, or pass --kubeconfig another file"
        ) from exc
    if config is None:
        return None
    if not isinstance(config, dict):
        raise KubeconfigError(f"kubeconfig {path} is not a kubeconfig (a YAML mapping); fix or move it")
    for section in SECTIONS:
        items = config.get(section)
        if items is not None and not (
            isinstance(items, list) and all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items)
        ):
            raise KubeconfigError(f"kubeconfig {path}: {section} must be a list of named entries; fix or move it")
    if config.get("kind", "Config") != "Config":
        raise KubeconfigError(f"kubeconfig {path}: kind is {config.get('kind')!r}, not Config")
    return config


def write(path: Path, access: ClusterAccess) -> Path:
    """Merge `access` into the kubeconfig at `path` (created if missing) atomically, mode 0600.
    A symlinked kubeconfig is updated where it points; a path that leads to anything but a
    regular file (a device such as /dev/null, a FIFO, a directory, a dangling symlink) is
    refused (UnsafeKubeconfig) and nothing is written. Returns the file written."""
    import yaml

    merged = merge(read(path), access)
    text = yaml.safe_dump(merged, default_flow_style=False, sort_keys=False)
    # A temporary file in the same directory, then rename: readers see the old or the new file.
    try:
        return files.replace_file(path, text, what="kubeconfig", mode=KUBECONFIG_MODE)
    except files.UnsafeTarget as exc:
        raise UnsafeKubeconfig(str(exc)) from None
