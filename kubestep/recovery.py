"""What a cluster's phase is after an operation did not finish, and the command that brings it
back. A create or a delete that stopped half-way really left something missing (ERROR: run it
again to resume). Anything else (an update, a node-pool change, a repair) changed at most some
instances of a working cluster: the cluster is DEGRADED, and `kubestep repair cluster` (or the
same operation again) puts it back. The advice never says "delete" where a repair would do."""

from __future__ import annotations

# Operations that leave a cluster incomplete when they stop half-way.
INCOMPLETE_WHEN_INTERRUPTED = ("CreateCluster", "DeleteCluster")
REPAIRS = ("RepairCluster", "AutoRepair")


def phase_after_interruption(kind: str) -> str:
    """The phase of a cluster whose `kind` operation ended without its own failure handling
    (stopped, timed out, lost with the runtime)."""
    return "ERROR" if kind in INCOMPLETE_WHEN_INTERRUPTED else "DEGRADED"


def advice(cluster: str, phase: str, kind: str | None) -> str:
    """The command that resumes or repairs `cluster`, in `phase` after a `kind` operation failed
    or stopped."""
    if phase == "ERROR" and kind == "DeleteCluster":
        return f"run `kubestep delete cluster {cluster}` again: it resumes the delete"
    if phase == "ERROR" and kind == "CreateCluster":
        return (
            f"apply the same manifest again to resume the create (`kubestep apply -f FILE`), or "
            f"`kubestep delete cluster {cluster}` to give it up"
        )
    if phase in ("ERROR", "DEGRADED"):
        # A repair, automatic or not, is what the advice already names.
        again = f" (or run the same {kind} again to resume it)" if kind and kind not in REPAIRS else ""
        return f"run `kubestep repair cluster {cluster}`: it checks every resource and replica and restores them{again}"
    return "wait for it to be RUNNING"
