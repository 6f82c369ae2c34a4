""" "Did you mean ...?" for a mistyped name: a kind, a field, a context, a command. click suggests
close options and commands itself; this is the same courtesy for the names it does not know."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_matches(word: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """The candidates closest to `word` (case-insensitive), best first."""
    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    found = difflib.get_close_matches(word.lower(), list(by_lower), n=limit, cutoff=0.6)
    return [by_lower[match] for match in found]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """` (did you mean 'cluster'?)`, or nothing when no candidate is close."""
    found = close_matches(word, candidates)
    if not found:
        return ""
    return " (did you mean " + " or ".join(repr(match) for match in found) + "?)"
