"""The control plane's certificate expiries, as the replicas report them (docs/contracts.md,
"Replica reports": `certificates`, name -> when it expires). kubeadm's leaf certificates last a
year; the replicas renew them on a timer well before that. What the management service adds:
every expiry in `kubestep describe cluster`, and a Warning event once a certificate is within
WARN_BEFORE of expiring — that means renewal has not happened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from kubestep.store import BootstrapReport, iso, parse_iso

WARN_BEFORE = timedelta(days=30)


@dataclass(frozen=True)
class Expiry:
    certificate: str
    expires_at: datetime
    replica: int

    def view(self, now: datetime) -> dict[str, object]:
        return {
            "name": self.certificate,
            "expiresAt": iso(self.expires_at),
            "replica": self.replica,
            "daysLeft": (self.expires_at - now).days,
        }


def earliest(reports: dict[int, BootstrapReport]) -> list[Expiry]:
    """Per certificate name, the replica whose copy expires first; soonest first. Entries that
    are not ISO 8601 times are skipped (a report is the instance's word, not a guarantee)."""
    found: dict[str, Expiry] = {}
    for replica, report in sorted(reports.items()):
        for name, stamp in (report.certificates or {}).items():
            try:
                moment = parse_iso(str(stamp))
            except ValueError:
                continue
            if moment.tzinfo is None:
                continue
            if name not in found or moment < found[name].expires_at:
                found[name] = Expiry(name, moment, replica)
    return sorted(found.values(), key=lambda e: (e.expires_at, e.certificate))


def expiring(expiries: list[Expiry], now: datetime) -> list[Expiry]:
    return [e for e in expiries if e.expires_at - now <= WARN_BEFORE]


def warning(expiry: Expiry) -> str:
    """The Warning event's message: the same for every hourly check of the same expiry, so the
    events aggregate (their count rises) instead of piling up."""
    return (
        f"certificate {expiry.certificate} of control-plane replica {expiry.replica} expires "
        f"{iso(expiry.expires_at)} (within {WARN_BEFORE.days} days): the replicas renew their certificates on "
        "a timer, which has not happened; look at that replica (`kubestep diagnose snapshot`, its console "
        "output) before the API server stops accepting it"
    )
