"""Warnings about Kubernetes minors at or near their end of life, from the server's version
catalog (`GET /v1/serverconfig`: each minor's end of life and whether it is still supported):
`get versions` lists them, `upgrade` warns about its target's."""

from __future__ import annotations

from datetime import date

from kubestep import versions

# How long before a minor's end of life an upgrade to it is worth a warning (a quarter: upstream
# publishes a minor about every four months).
SOON_DAYS = 90


def warnings(server_config: dict, minors: set[str] | None = None, today: date | None = None) -> list[str]:
    """One line per minor (of `minors`, or all) that is past or within SOON_DAYS of its end of life."""
    today = today or versions.today()
    supported = [m["minor"] for m in server_config.get("minors") or [] if m.get("supported", True)]
    found = []
    for minor in server_config.get("minors") or []:
        name, end = minor["minor"], minor.get("endOfLife")
        if (minors is not None and name not in minors) or not end:
            continue
        days = (date.fromisoformat(end) - today).days
        if not minor.get("supported", True) or days <= 0:
            newer = sorted((m for m in supported if _minor(m) > _minor(name)), key=_minor)
            move = f"; clusters on it should upgrade to {newer[0]}" if newer else ""
            found.append(
                f"Kubernetes {name} reached its end of life on {end}: no new clusters, node pools or upgrades "
                f"to it{move}"
            )
        elif days <= SOON_DAYS:
            found.append(f"Kubernetes {name} reaches its end of life on {end}, in {days} days: plan the next upgrade")
    return found


def _minor(name: str) -> int:
    return int(name.split(".")[1])


def minor_of(version: str) -> str:
    return ".".join(version.split(".")[:2])
