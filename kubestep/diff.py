"""Field-level differences between a stored spec and a manifest (what `kubestep apply` and
`kubestep diff` show, like `kubectl diff`; the lifecycle workflows decide from the same list
which changes roll instances and which cannot be made in place)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Change:
    """One field that differs: `old` is MISSING for an added field, `new` for a removed one."""

    path: str
    old: Any
    new: Any

    @property
    def kind(self) -> str:
        if self.old is MISSING:
            return "added"
        if self.new is MISSING:
            return "removed"
        return "changed"

    def line(self) -> str:
        if self.kind == "added":
            return f"+ {self.path}: {show(self.new)}"
        if self.kind == "removed":
            return f"- {self.path}: {show(self.old)}"
        return f"~ {self.path}: {show(self.old)} -> {show(self.new)}"


def show(value: Any) -> str:
    """A value on one line, as JSON (strings quoted, so `"1.30"` and `1.3` look different)."""
    return json.dumps(value, sort_keys=True, separators=(", ", ": "))


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def changes(old: Any, new: Any, path: str = "") -> list[Change]:
    """Every leaf that differs, in a stable order. Objects compare key by key; lists of the
    same length element by element; lists whose length changed as one value."""
    if isinstance(old, dict) and isinstance(new, dict):
        found: list[Change] = []
        for key in sorted(set(old) | set(new)):
            found += changes(old.get(key, MISSING), new.get(key, MISSING), _join(path, key))
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        found = []
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            found += changes(a, b, _join(path, i))
        return found
    if old is MISSING and new is MISSING:
        return []
    # bool is an int to Python: True == 1, but a manifest that says `true` where `1` was differs.
    if type(old) is type(new) and old == new:
        return []
    return [Change(path or "(root)", old, new)]


def render(found: list[Change], indent: str = "  ") -> list[str]:
    return [indent + change.line() for change in found]
