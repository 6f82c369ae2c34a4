"""Durations as kubectl and Go write them (`90s`, `10m`, `1h30m`, `1.5h`, `300ms`), read one way
everywhere the CLI takes one.

The grammar is Go's `time.ParseDuration` (https://pkg.go.dev/time#ParseDuration): a sequence of
decimal numbers, each with a unit — `ns`, `us` (or `µs`), `ms`, `s`, `m`, `h` — and `0` alone.
Two additions users of this CLI already write: `d` (24 h, as in `--grace-period 2d`) and a plain
number, which is seconds. A sign is refused: no flag here takes a negative duration."""

from __future__ import annotations

import re

UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # U+00B5 MICRO SIGN
    "μs": 1e-6,  # U+03BC GREEK SMALL LETTER MU
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PART = re.compile(rf"({_NUMBER})(ns|us|µs|μs|ms|s|m|h|d)")
_WHOLE = re.compile(rf"(?:{_NUMBER}(?:ns|us|µs|μs|ms|s|m|h|d))+")
_PLAIN = re.compile(_NUMBER)
EXAMPLES = "90s, 10m, 1h30m, 2d"


class InvalidDuration(ValueError):
    """Not a duration; the message says what one looks like."""


def parse_duration(text: str) -> float:
    """Seconds in `text` (`1h30m` -> 5400.0). Raises InvalidDuration."""
    value = str(text).strip().lower()
    if _PLAIN.fullmatch(value):
        return float(value)
    if value.startswith(("-", "+")):
        raise InvalidDuration(f"{str(text)[:40]!r} has a sign: give a duration such as {EXAMPLES}")
    if not _WHOLE.fullmatch(value):
        raise InvalidDuration(f"{str(text)[:40]!r} is not a duration (e.g. {EXAMPLES}, 300ms)")
    return sum(float(number) * UNITS[unit] for number, unit in _PART.findall(value))
