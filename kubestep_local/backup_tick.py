"""`kubestep local tick`'s etcd backups: the backups due as of the tick's moment, taken.

On AWS nothing fires a backup from outside: every replica's report timer looks, and the etcd
leader takes one when its policy says it is due. A tick plays a moment of the caller's choosing,
which the instances' timers (on the wall clock) cannot see; so for each RUNNING cluster whose
newest backup is an interval old as of that moment (or that has none, or one asked for), the
tick asks for one through the management API (`POST /v1/clusters/{name}/backups`, what
`kubestep backup cluster` does) and waits for the leader's next report to take it. Everything
goes through the API, as a client's would.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kubestep import backups
from kubestep.durations import parse_duration


@dataclass(frozen=True)
class BackupFired:
    cluster: str
    uid: str | None
    outcome: str  # "taken", "not due", or why not taken
    backup_id: str | None = None
    detail: str = ""


def fire_due_backups(api_url: str, at: datetime, *, timeout: float = 90.0, poll: float = 0.5) -> list[BackupFired]:
    """For every RUNNING cluster, its backup as of `at`: taken when due, else why not."""
    from kubestep.api.client import ApiClient

    api = ApiClient(api_url, sign=False, timeout=30)
    fired = []
    for cluster in api.list_clusters():
        name = cluster["metadata"]["name"]
        if (cluster.get("status") or {}).get("phase") != "RUNNING":
            continue
        fired.append(_fire(api, name, at, timeout, poll))
    return fired


def _fire(api: Any, name: str, at: datetime, timeout: float, poll: float) -> BackupFired:
    listing = api.backup_listing(name)
    uid = listing.get("uid")
    own = [b for b in listing["items"] if b.get("uid") == uid]
    newest = datetime.fromisoformat(own[0]["takenAt"]) if own else None
    requested = datetime.fromisoformat(listing["requestedAt"]) if listing.get("requestedAt") else None
    interval = timedelta(seconds=parse_duration(listing.get("interval") or f"{backups.DEFAULT_INTERVAL_MINUTES}m"))
    if not backups.is_due(interval, newest, requested, at):
        assert newest is not None  # with none, one is always due
        return BackupFired(
            name,
            uid,
            "not due",
            detail=f"the newest is from {own[0]['takenAt']}; next due at "
            f"{(newest + interval).strftime('%Y-%m-%dT%H:%M:%SZ')}",
        )
    before = {b["backupId"] for b in own}
    api.backup_cluster(name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = api.backup_listing(name)
        new = [b for b in now["items"] if b.get("uid") == uid and b["backupId"] not in before]
        if new:
            return BackupFired(name, uid, "taken", new[0]["backupId"], new[0]["location"])
        time.sleep(poll)
    return BackupFired(
        name, uid, "asked for", detail=f"the etcd leader took none within {timeout:.0f} s: is the control plane up?"
    )
