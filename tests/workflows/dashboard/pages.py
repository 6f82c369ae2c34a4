"""What the dashboard's browser tests do with a page and the API: open a view, read a fact,
wait for what an operation produces, clean up a cluster."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from kubestep.api.client import ApiClient
from tests.workflows.test_dashboard import ARTIFACTS, ROLL_WAIT, TARGET, WAIT, _screenshot, _serious_violations

ACTIVE = ("RUNNING", "CANCELLING", "ROLLING_BACK")

screenshot = _screenshot
serious_violations = _serious_violations


def open_cluster(page: Any, cluster: str, operation: str | None = None) -> None:
    """The cluster's page (on `operation`, if named), by its address, as a bookmark opens it."""
    hash_ = f"#/t/{TARGET}/c/{cluster}" + (f"/op/{operation}" if operation else "")
    page.goto(page.url.split("#")[0] + hash_)
    page.get_by_role("heading", level=1, name=f"Cluster {cluster}").wait_for()


def open_fleet(page: Any) -> None:
    page.goto(page.url.split("#")[0] + "#/")
    page.get_by_role("heading", level=1, name="Fleet").wait_for()


def fact(page: Any, term: str) -> str:
    """The value of one of the summary's facts (`Phase`, `Version`, …)."""
    dt = page.locator("#summary dt", has_text=re.compile(f"^{re.escape(term)}$"))
    return (dt.locator("xpath=following-sibling::dd[1]").text_content() or "").strip()


def wait_until(condition: Callable[[], Any], what: str, timeout: float = WAIT, poll: float = 0.1) -> Any:
    """Poll `condition` until it gives something truthy (what an operation produces), or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def settle(api: ApiClient, cluster: str) -> None:
    """Wait for whatever operation of `cluster` still runs (a failed test may leave one)."""
    for operation in api.list_operations(cluster):
        if operation["status"] in ACTIVE:
            api.wait_operation(operation["id"], timeout=ROLL_WAIT, poll=0.5)


def delete_cluster(api: ApiClient, cluster: str) -> None:
    """Delete `cluster` if it exists, and wait for the delete (the network is deprovisioned last,
    by test_zz_network_and_iam, which fails while a cluster remains)."""
    settle(api, cluster)
    if not any(c["metadata"]["name"] == cluster for c in api.list_clusters()):
        return
    deletion = api.delete_cluster(cluster)
    assert api.wait_operation(deletion["id"], timeout=ROLL_WAIT, poll=0.5)["status"] == "SUCCEEDED"


def next_version(api: ApiClient, current: str) -> str:
    """The next version up from `current`: its minor's next patch, else the next minor's default
    (one patch at a time, so a module can upgrade a cluster many times)."""
    config = api.request("GET", "serverconfig")
    major, minor, patch = (int(x) for x in current.split("."))
    same = [v for v in config["validVersions"] if v.startswith(f"{major}.{minor}.") and int(v.split(".")[2]) > patch]
    if same:
        return min(same, key=lambda v: int(v.split(".")[2]))
    return next(m["defaultVersion"] for m in config["minors"] if m["minor"] == f"{major}.{minor + 1}")


__all__ = [
    "ACTIVE",
    "ARTIFACTS",
    "ROLL_WAIT",
    "TARGET",
    "WAIT",
    "delete_cluster",
    "fact",
    "next_version",
    "open_cluster",
    "open_fleet",
    "screenshot",
    "serious_violations",
    "settle",
    "wait_until",
]
