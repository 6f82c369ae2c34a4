"""Named contexts (kubectl's `config` idea): a context is where a management service's API is
— an endpoint URL, or a management service name whose stack output gives it — with the region
and AWS profile to sign requests with. Stored in `$KUBESTEP_HOME/config` (YAML):

    current-context: prod
    contexts:
    - name: prod
      service: prod          # or endpoint: https://abc123.execute-api.eu-west-1.amazonaws.com/api/
      region: eu-west-1
      profile: platform

A context with neither endpoint nor service is the local runtime."""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from kubestep import files
from kubestep.cli.errors import InputError

CONTEXT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,62}$")
FIELDS = ("endpoint", "service", "region", "profile")


def home() -> Path:
    return Path(os.environ.get("KUBESTEP_HOME") or "~/.kubestep").expanduser()


def config_file() -> Path:
    return home() / "config"


@dataclass
class Context:
    name: str
    endpoint: str | None = None
    service: str | None = None
    region: str | None = None
    profile: str | None = None

    @property
    def is_local(self) -> bool:
        return not self.endpoint and not self.service

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}


@dataclass
class Config:
    current: str | None = None
    contexts: dict[str, Context] = field(default_factory=dict)

    def get(self, name: str) -> Context:
        context = self.contexts.get(name)
        if context is None:
            known = ", ".join(sorted(self.contexts)) or "none yet: kubestep config set-context NAME"
            raise InputError(f"no context named {name[:60]!r} (contexts: {known})")
        return context


def check_name(name: str) -> str:
    if not CONTEXT_NAME.match(name):
        raise InputError(f"context name {name[:60]!r} must match {CONTEXT_NAME.pattern}")
    return name


def load() -> Config:
    path = config_file()
    try:
        text = files.read_text_if_regular(path, "kubestep config")
    except files.UnsafeTarget as exc:
        raise InputError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read it ({exc})") from None
    if text is None:
        return Config()
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: must be a mapping with current-context and contexts")
    config = Config(current=data.get("current-context") or None)
    for entry in data.get("contexts") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InputError(f"{path}: every context needs a name")
        values = {k: str(entry[k]) for k in FIELDS if entry.get(k)}
        config.contexts[entry["name"]] = Context(entry["name"], **values)
    return config


def save(config: Config) -> Path:
    data = {
        "current-context": config.current,
        "contexts": [config.contexts[name].as_dict() for name in sorted(config.contexts)],
    }
    # Written whole, then renamed: a crash never leaves half a config.
    try:
        return files.replace_file(config_file(), yaml.safe_dump(data, sort_keys=False), what="kubestep config")
    except files.UnsafeTarget as exc:
        raise InputError(str(exc)) from None
