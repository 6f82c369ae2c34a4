"""Named contexts (kubectl's `config` idea): a context is where a management service's API is
— an endpoint URL, or a management service name whose stack output gives it — with the region
and AWS profile to sign requests with. Stored in `$KUBESTEP_HOME/config` (YAML):

    current-context: prod
    contexts:
    - name: prod
      service: prod          # or endpoint: https://abc123.execute-api.eu-west-1.amazonaws.com/api/
      region: eu-west-1
      profile: platform

A context with neither endpoint nor service is the local runtime. One such context always exists,
`local` (unless the file defines its own): the runtime of this `$KUBESTEP_HOME`, wherever it
listens now -- `kubestep local up` records its current endpoints in `$KUBESTEP_HOME/local.json`,
and a local context is resolved from that file each time, so it follows a restart on other ports."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kubestep import files
from kubestep.cli.errors import InputError

CONTEXT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,62}$")
CONTEXT_NAME_RULE = "1 to 63 characters: letters, digits and . _ @ : -, starting with a letter or digit (e.g. prod-eu)"
FIELDS = ("endpoint", "service", "region", "profile")
LOCAL = "local"  # the built-in context of the local runtime


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

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in asdict(self).items() if v}


@dataclass
class Config:
    current: str | None = None
    contexts: dict[str, Context] = field(default_factory=dict)

    def get(self, name: str) -> Context:
        context = self.all().get(name)
        if context is None:
            raise InputError(f"no context named {name[:60]!r}{suggestion(name, self.all())} (contexts: {self.names()})")
        return context

    def all(self) -> dict[str, Context]:
        """The file's contexts and, unless it defines its own, the built-in `local`."""
        return {LOCAL: Context(LOCAL), **self.contexts}

    def names(self) -> str:
        return ", ".join(sorted(self.all()))

    def is_builtin(self, name: str) -> bool:
        return name == LOCAL and name not in self.contexts


def check_name(name: str) -> str:
    if not CONTEXT_NAME.match(name):
        raise InputError(f"context name {name[:60]!r}: {CONTEXT_NAME_RULE}")
    return name


def suggestion(name: str, known: Iterable[str]) -> str:
    """` (did you mean 'prod'?)` for a near miss, else nothing."""
    from kubestep.suggest import did_you_mean

    return did_you_mean(name, known)


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
    import yaml  # here, not at the top: most commands find no config file to read

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
    import yaml

    data = {
        "current-context": config.current,
        "contexts": [config.contexts[name].as_dict() for name in sorted(config.contexts)],
    }
    # Written whole, then renamed: a crash never leaves half a config.
    try:
        return files.replace_file(config_file(), yaml.safe_dump(data, sort_keys=False), what="kubestep config")
    except files.UnsafeTarget as exc:
        raise InputError(str(exc)) from None
