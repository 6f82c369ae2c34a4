""" "Did you mean ...?" for a mistyped name: a kind, a field, a context, a command. click suggests
close options and commands itself; this is the same courtesy for the names it does not know."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

CUTOFF = 0.6  # difflib's own default: below it, a candidate is not "close"
TIE = 0.05  # candidates this close to the best are as likely: name them all


def close_matches(word: str, candidates: Iterable[str], limit: int = 3) -> list[str]:
    """The candidates closest to `word` (case-insensitive), best first: the best, and those
    nearly as close."""
    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    scored = []
    for lower, candidate in by_lower.items():
        score = difflib.SequenceMatcher(None, word.lower(), lower).ratio()
        if score >= CUTOFF:
            scored.append((score, candidate))
    scored.sort(key=lambda pair: -pair[0])
    return [candidate for score, candidate in scored[:limit] if score >= scored[0][0] - TIE]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """` (did you mean 'cluster'?)`, or nothing when no candidate is close."""
    return suggestion(close_matches(word, candidates))


def suggestion(found: Iterable[str]) -> str:
    """` (did you mean 'a' or 'b'?)` for what was found, nothing for nothing."""
    found = list(found)
    return " (did you mean " + " or ".join(repr(match) for match in found) + "?)" if found else ""
