"""The bootstrap bundle: every large, static file an instance needs (the scripts, kubeadm's
templates, the add-on manifests, systemd units), packed as one gzipped tarball the instance
downloads from the management service's bucket at boot, the way kOps' nodeup fetches its assets
from the state store.

EC2 allows 16 KB of user-data; the control plane's files are several times that even gzipped.
The user-data keeps the per-instance settings and a small loader; the settings name the bundle
by bucket, key and SHA-256, and the loader checks that digest before it unpacks anything, so a
launch template version always boots exactly the bundle it was made with.

The object's key is content-addressed under its cluster incarnation's prefix,
`bootstrap/<uid>/<sha256>.tar.gz`: the same files are the same object (nothing uploaded twice),
and each cluster's instance role may read its own prefix only. The tarball is reproducible (sorted
paths, fixed times and owners, gzip without a timestamp), so the digest depends on the files alone.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import shlex
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import yaml

PREFIX = "bootstrap"
# The settings (bootstrap.env) that name an instance's bundle.
BUCKET_SETTING, KEY_SETTING, SHA256_SETTING = "BUNDLE_BUCKET", "BUNDLE_KEY", "BUNDLE_SHA256"


class BundledFile(Protocol):
    path: str
    content: str
    permissions: str


@dataclass(frozen=True)
class Bundle:
    data: bytes
    sha256: str

    def key(self, uid: str) -> str:
        return object_key(uid, self.sha256)


@dataclass(frozen=True)
class BundleRef:
    """Where an instance finds its bundle, and the digest it must have."""

    bucket: str
    key: str
    sha256: str

    def settings(self) -> dict[str, str]:
        return {BUCKET_SETTING: self.bucket, KEY_SETTING: self.key, SHA256_SETTING: self.sha256}


def cluster_prefix(uid: str) -> str:
    """`bootstrap/<uid>/`: one cluster incarnation's bundles."""
    return f"{PREFIX}/{uid}/"


def object_key(uid: str, sha256: str) -> str:
    return f"{cluster_prefix(uid)}{sha256}.tar.gz"


def uid_of(key: str) -> str | None:
    """The incarnation a bundle's key belongs to (None for a key outside the layout)."""
    parts = key.split("/")
    return parts[1] if len(parts) == 3 and parts[0] == PREFIX and parts[1] and parts[2].endswith(".tar.gz") else None


def pack(files: Iterable[BundledFile]) -> Bundle:
    """The files as a reproducible gzipped tarball, paths relative to `/`."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for f in sorted(files, key=lambda f: f.path):
            data = f.content.encode()
            info = tarfile.TarInfo(f.path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), int(f.permissions, 8), 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    packed = gzip.compress(buffer.getvalue(), compresslevel=9, mtime=0)
    return Bundle(packed, hashlib.sha256(packed).hexdigest())


def unpack(data: bytes) -> dict[str, str]:
    """Path (absolute) -> content: what the loader's `tar -x` writes (for checks and the emulator)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {
            "/" + member.name: tar.extractfile(member).read().decode()  # type: ignore[union-attr]
            for member in tar.getmembers()
            if member.isfile()
        }


def reference(user_data: str | None) -> BundleRef | None:
    """The bundle a launch template's user-data (base64 of the gzipped cloud-config) names, as
    the loader reads it from the settings file; None when it names none."""
    settings = instance_settings(user_data)
    if all(settings.get(k) for k in (BUCKET_SETTING, KEY_SETTING, SHA256_SETTING)):
        return BundleRef(settings[BUCKET_SETTING], settings[KEY_SETTING], settings[SHA256_SETTING])
    return None


def instance_settings(user_data: str | None) -> dict[str, str]:
    """The settings file (`bootstrap.env`) a launch template's user-data (base64 of the gzipped
    cloud-config) writes, as the loader and the bootstrap read it; {} when it writes none."""
    if not user_data:
        return {}
    try:
        text = base64.b64decode(user_data)
        if text[:2] == b"\x1f\x8b":
            text = gzip.decompress(text)
        # libyaml's loader when PyYAML has it: the same documents, ten times faster.
        config = yaml.load(text.decode(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except (ValueError, TypeError, OSError, EOFError, yaml.YAMLError, UnicodeDecodeError):
        return {}
    entries = config.get("write_files") if isinstance(config, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and str(entry.get("path", "")).endswith("/bootstrap.env"):
            return _settings(str(entry.get("content", "")))
    return {}


def _settings(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#"):
            words = shlex.split(value)
            found[name] = words[0] if words else ""
    return found
