"""Kubernetes versions kubestep can install (the catalog in `kubestep/data/kubernetes-versions.json`,
data rather than code: each minor with its end of life and the components pinned for it), the
release channels, the end-of-life rule, and the skew rules between versions."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from importlib import resources
from typing import Any

from kubestep.errors import shown

# 1.MINOR.PATCH without leading zeros or absurd lengths: `1.032.4` and `1.32.99999999999999999999`
# are not Kubernetes versions (semver: numeric identifiers have no leading zeros).
VERSION_RE = re.compile(r"^1\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,3})$")
MAX_NODE_POOL_SKEW = 2
CHANNELS = ("rapid", "regular", "stable")


# Overrides today's date (ISO, e.g. 2026-12-05) for the end-of-life rule: the test suite pins it to
# the catalog's own date, so a test written against the catalog does not start failing the day a
# minor reaches its end of life.
TODAY_ENV = "KUBESTEP_TODAY"


def today() -> date:
    pinned = os.environ.get(TODAY_ENV)
    return date.fromisoformat(pinned) if pinned else datetime.now(UTC).date()


@dataclass(frozen=True)
class Minor:
    minor: int
    latest_patch: int
    end_of_life: str
    pause: str  # the sandbox image tag kubeadm of this minor expects
    cloud_controller_manager: str  # kubernetes/cloud-provider-aws release of this minor
    calico: str  # Calico release (its manifest's SHA-256 is in the catalog's `calico` table)
    # Image -> sha256 digest of its index (pause, cloudControllerManager); None: not confirmed yet.
    digests: dict[str, str | None] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"1.{self.minor}"

    @property
    def default_version(self) -> str:
        return f"1.{self.minor}.{self.latest_patch}"

    def past_end_of_life(self, on: date | None = None) -> bool:
        return (on or today()) >= date.fromisoformat(self.end_of_life)


@dataclass(frozen=True)
class Catalog:
    as_of: str
    minors: dict[int, Minor]
    channels: dict[str, int]
    calico_manifests: dict[str, str]  # Calico release -> SHA-256 of its manifests/calico-vxlan.yaml
    # Calico release -> {tagged image reference in its manifest: sha256 digest, or None}
    calico_images: dict[str, dict[str, str | None]] = field(default_factory=dict)
    package_revision: str = "1.1"  # the Debian revision of pkgs.k8s.io's kubelet/kubeadm/kubectl builds

    def default_version(self, channel: str) -> str:
        return self.minors[self.channels[channel]].default_version

    def supported(self, on: date | None = None) -> list[Minor]:
        """The minors that have not reached their end of life, oldest first."""
        return [m for m in sorted(self.minors.values(), key=lambda m: m.minor) if not m.past_end_of_life(on)]

    def as_view(self) -> dict[str, Any]:
        """What `GET /v1/serverconfig` answers (GKE's getAwsServerConfig)."""
        return {
            "asOf": self.as_of,
            "validVersions": [
                f"1.{m.minor}.{p}"
                for m in sorted(self.minors.values(), key=lambda m: -m.minor)
                for p in range(m.latest_patch, -1, -1)
            ],
            "minors": [
                {
                    "minor": m.name,
                    "defaultVersion": m.default_version,
                    "endOfLife": m.end_of_life,
                    "supported": not m.past_end_of_life(),
                }
                for m in sorted(self.minors.values(), key=lambda m: -m.minor)
            ],
            "channels": [
                {"channel": c, "minor": f"1.{self.channels[c]}", "defaultVersion": self.default_version(c)}
                for c in CHANNELS
            ],
        }


@cache
def catalog() -> Catalog:
    data = json.loads(resources.files("kubestep").joinpath("data/kubernetes-versions.json").read_text())
    minors = {}
    for name, entry in data["minors"].items():
        minor = int(name.split(".")[1])
        minors[minor] = Minor(
            minor,
            entry["latestPatch"],
            entry["endOfLife"],
            entry["pause"],
            entry["cloudControllerManager"],
            entry["calico"],
            dict(entry.get("digests", {})),
        )
    channels = {name: int(minor.split(".")[1]) for name, minor in data["channels"].items()}
    calico = {release: entry["manifestSHA256"] for release, entry in data["calico"].items()}
    calico_images = {release: dict(entry.get("images", {})) for release, entry in data["calico"].items()}
    return Catalog(data["asOf"], minors, channels, calico, calico_images, data.get("packageRevision", "1.1"))


def installable_minors() -> tuple[int, ...]:
    """Every minor the bootstrap can install, end-of-life ones included (a cluster created before
    its minor's end of life keeps running, rolling and upgrading from it)."""
    return tuple(sorted(catalog().minors))


def supported_minors() -> tuple[int, ...]:
    """The minors a new cluster, a new node pool or an upgrade may use today."""
    return tuple(m.minor for m in catalog().supported())


def supported_names() -> str:
    return ", ".join(f"1.{m}" for m in supported_minors()) or "none (the version catalog is out of date)"


def parse(version: str) -> tuple[int, int, int]:
    match = VERSION_RE.fullmatch(version) if isinstance(version, str) else None
    if not match:
        raise ValueError(
            f"version must look like 1.MINOR.PATCH without leading zeros, e.g. 1.35.4 (got {shown(version)})"
        )
    return 1, int(match.group(1)), int(match.group(2))


def check_version(version: str) -> str:
    """A version kubestep can install now: its minor in the catalog, its patch published."""
    _, minor, patch = parse(version)
    known = catalog().minors.get(minor)
    if known is None:
        raise ValueError(f"Kubernetes 1.{minor} is not supported (supported minors: {supported_names()})")
    if patch > known.latest_patch:
        raise ValueError(
            f"Kubernetes {version} is not a published release (the newest 1.{minor} patch is "
            f"{known.default_version}; `kubestep get versions` lists them)"
        )
    return version


def end_of_life_problem(version: str) -> str | None:
    """Why `version` may not be newly installed (a create, a new node pool, an upgrade target):
    its minor reached upstream's end of life, when Kubernetes stops publishing fixes for it."""
    _, minor, _ = parse(version)
    known = catalog().minors.get(minor)
    if known is None or not known.past_end_of_life():
        return None
    return (
        f"Kubernetes 1.{minor} reached its end of life on {known.end_of_life}: use a supported minor "
        f"({supported_names()})"
    )


def end_of_life_warning(version: str) -> str | None:
    """What to tell the owner of a cluster or node pool that runs an end-of-life minor."""
    _, minor, _ = parse(version)
    known = catalog().minors.get(minor)
    if known is None or not known.past_end_of_life():
        return None
    newer = [m for m in supported_minors() if m > minor]
    step = f"; upgrade to 1.{newer[0]} (one minor at a time)" if newer else ""
    return f"Kubernetes 1.{minor} reached its end of life on {known.end_of_life} and gets no more fixes{step}"


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
    if tgt[1] != cur[1]:
        return end_of_life_problem(target)
    return None
