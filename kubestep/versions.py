"""Kubernetes versions kubestep can install, and the skew rules between them."""

from __future__ import annotations

import re

# Minor versions with published kubeadm/kubelet packages (pkgs.k8s.io) that kubestep's
# bootstrap supports; the external AWS cloud controller manager is used for all of them.
SUPPORTED_MINORS: tuple[int, ...] = (30, 31, 32, 33, 34)
VERSION_RE = re.compile(r"^1\.(\d+)\.(\d+)$")
MAX_NODE_POOL_SKEW = 2


def parse(version: str) -> tuple[int, int, int]:
    match = VERSION_RE.fullmatch(version)
    if not match:
        raise ValueError(f"version must look like 1.MINOR.PATCH, e.g. 1.32.4 (got {version!r})")
    return 1, int(match.group(1)), int(match.group(2))


def check_version(version: str) -> str:
    _, minor, _ = parse(version)
    if minor not in SUPPORTED_MINORS:
        supported = ", ".join(f"1.{m}" for m in SUPPORTED_MINORS)
        raise ValueError(f"Kubernetes 1.{minor} is not supported (supported minors: {supported})")
    return version


def node_pool_skew_problem(control_plane: str, node_pool: str) -> str | None:
    """Kubernetes' own skew policy: kubelet never newer than the API server, at most
    MAX_NODE_POOL_SKEW minors older (kubestep is stricter than upstream's 3 to leave room
    for the next control-plane upgrade)."""
    cp, np = parse(control_plane), parse(node_pool)
    if np > cp:
        return f"node pool version {node_pool} is newer than the control plane's {control_plane}"
    if cp[1] - np[1] > MAX_NODE_POOL_SKEW:
        return (
            f"node pool version {node_pool} is more than {MAX_NODE_POOL_SKEW} minor versions "
            f"behind the control plane's {control_plane}"
        )
    return None


def upgrade_problem(current: str, target: str) -> str | None:
    """Control planes move one minor at a time and never down."""
    cur, tgt = parse(current), parse(target)
    if tgt < cur:
        return f"cannot downgrade from {current} to {target}"
    if tgt[1] - cur[1] > 1:
        return f"upgrade one minor version at a time: {current} -> 1.{cur[1] + 1}.x first"
    return None
