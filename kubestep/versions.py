"""Kubernetes versions kubestep can install (the catalog in `kubestep/data/kubernetes-versions.json`,
data rather than code), the release channels, and the skew rules between versions."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

# 1.MINOR.PATCH without leading zeros or absurd lengths: `1.032.4` and `1.32.99999999999999999999`
# are not Kubernetes versions (semver: numeric identifiers have no leading zeros).
VERSION_RE = re.compile(r"^1\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,3})$")
MAX_NODE_POOL_SKEW = 2
CHANNELS = ("rapid", "regular", "stable")


@dataclass(frozen=True)
class Minor:
    minor: int
    latest_patch: int
    end_of_life: str | None

    @property
    def name(self) -> str:
        return f"1.{self.minor}"

    @property
    def default_version(self) -> str:
        return f"1.{self.minor}.{self.latest_patch}"


@dataclass(frozen=True)
class Catalog:
    as_of: str
    minors: dict[int, Minor]
    channels: dict[str, int]

    def default_version(self, channel: str) -> str:
        return self.minors[self.channels[channel]].default_version

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
                {"minor": m.name, "defaultVersion": m.default_version, "endOfLife": m.end_of_life}
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
    minors = {
        int(name.split(".")[1]): Minor(int(name.split(".")[1]), entry["latestPatch"], entry.get("endOfLife"))
        for name, entry in data["minors"].items()
    }
    channels = {name: int(minor.split(".")[1]) for name, minor in data["channels"].items()}
    return Catalog(data["asOf"], minors, channels)


def supported_minors() -> tuple[int, ...]:
    return tuple(sorted(catalog().minors))


def parse(version: str) -> tuple[int, int, int]:
    match = VERSION_RE.fullmatch(version) if isinstance(version, str) else None
    if not match:
        raise ValueError(f"version must look like 1.MINOR.PATCH without leading zeros, e.g. 1.32.4 (got {version!r})")
    return 1, int(match.group(1)), int(match.group(2))


def check_version(version: str) -> str:
    """A version kubestep can install now: its minor in the catalog, its patch published."""
    _, minor, patch = parse(version)
    known = catalog().minors.get(minor)
    if known is None:
        supported = ", ".join(f"1.{m}" for m in supported_minors())
        raise ValueError(f"Kubernetes 1.{minor} is not supported (supported minors: {supported})")
    if patch > known.latest_patch:
        raise ValueError(
            f"Kubernetes {version} is not a published release (the newest 1.{minor} patch is "
            f"{known.default_version}; `kubestep get versions` lists them)"
        )
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


# Kept for callers that only need the list (the bootstrap picks the package repository by minor).
SUPPORTED_MINORS: tuple[int, ...] = supported_minors()
