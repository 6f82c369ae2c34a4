"""The dashboard in a real browser (Playwright driving Debian's Chromium) against the session's
emulator runtime, through `kubestep dashboard` run as a user runs it: the fleet follows a cluster
being created to RUNNING with its replicas per zone and node pools; the cluster's page shows
its operation step by step, per replica and per node pool, and its events; a DEGRADED cluster
shows the Warning event that explains it; the page works with the keyboard alone and axe-core
finds no serious or critical accessibility violation. Screenshots go to `.artifacts/dashboard/`.

Chromium comes from Debian (`scripts/setup.sh` installs it as root); a machine without it
fails these tests with that message rather than skipping them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubestep.api.client import ApiClient

from .conftest import ROOT, ha_request

CHROMIUM = Path(os.environ.get("KUBESTEP_CHROMIUM", "/usr/bin/chromium"))
AXE = ROOT / ".build" / "node" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / ".artifacts" / "dashboard"
CLUSTER = "dash"
TARGET = "default"  # `kubestep dashboard --endpoint URL` names that target `default`
WAIT = 120  # seconds: a create takes ~10 s at the session's time scale


def _screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"dashboard screenshot: {path}")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: the dashboard's browser tests need Debian's chromium "
            "(run `bash scripts/setup.sh` as root, or `apt-get install chromium`)"
        )
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing ({AXE}): run `bash scripts/setup.sh` (it installs it with npm)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def api(runtime) -> ApiClient:
    return ApiClient(runtime.api_url, sign=False)


@pytest.fixture(scope="module")
def dashboard(runtime, tmp_path_factory) -> Iterator[str]:
    """`kubestep dashboard` in its own process against the runtime's API (signed with dummy
    credentials, which the API stand-in accepts); yields the URL it printed."""
    home = tmp_path_factory.mktemp("dashboard-home")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("KUBESTEP_", "AWS_"))},
        "KUBESTEP_HOME": str(home),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": runtime.region,
    }
    command = [sys.executable, "-m", "kubestep.cli.main", "dashboard", "--port", "0", "--no-open"]
    process = subprocess.Popen(
        [*command, "--interval", "0.5s", "--endpoint", runtime.api_url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    first = process.stdout.readline()
    match = re.match(r"kubestep dashboard: (http://127\.0\.0\.1:\d+/\?token=\S+)$", first.strip())
    assert match, first + process.stderr.read() if process.poll() is not None else first
    try:
        yield match.group(1)
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        out, err = process.communicate(timeout=20)
        assert process.returncode == 0, err
        assert out.rstrip().endswith("dashboard stopped")


@pytest.fixture(scope="module")
def creation(api, runtime) -> Iterator[dict[str, Any]]:
    """The module's one cluster, created through the API; deleted when the module is done."""
    operation = api.create_cluster(ha_request(CLUSTER))
    yield operation
    ended = api.wait_operation(operation["id"], timeout=WAIT, poll=0.5)
    deletion = api.delete_cluster(CLUSTER)
    assert api.wait_operation(deletion["id"], timeout=WAIT, poll=0.5)["status"] == "SUCCEEDED", ended


@pytest.fixture
def page(browser, dashboard) -> Iterator[Any]:
    # axe-core is injected as a script: the page's own CSP (script-src 'self') would refuse it.
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(dashboard)
    yield page
    context.close()
    assert errors == [], errors


def _row(page: Any) -> Any:
    return page.locator(f'tr[data-cluster="{CLUSTER}"]')


def test_fleet_follows_a_create_to_running_with_replicas_and_node_pools(page, creation, api) -> None:
    assert page.url.endswith("/"), "the token left the address bar"
    row = _row(page)
    row.wait_for(timeout=WAIT * 1000)
    phases: list[str] = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        phase = (row.locator(".badge").first.text_content(timeout=5000) or "").strip()
        if not phases or phases[-1] != phase:
            phases.append(phase)
        if phase == "RUNNING":
            break
        time.sleep(0.1)
    assert api.operation(creation["id"])["status"] in ("RUNNING", "SUCCEEDED")
    assert phases[0] == "PROVISIONING" and phases[-1] == "RUNNING", phases
    # The change was announced to screen readers.
    page.wait_for_function(
        "document.getElementById('announcer').textContent.includes('is now RUNNING')", timeout=10_000
    )
    cluster = api.get_cluster(CLUSTER)
    cells = row.locator("td")
    assert cells.nth(1).text_content() == cluster["status"]["version"]
    assert cells.nth(2).text_content() == cluster["status"]["endpoint"]
    control_plane = cells.nth(3).text_content()
    assert control_plane.startswith("3/3 healthy")
    for replica in cluster["status"]["controlPlane"]["replicas"]:
        assert f"{replica['zone']}: healthy" in control_plane
    node_pools = cells.nth(4).text_content()
    assert "general: 2 ready (2–6)" in node_pools and "batch: 0 ready (0–10)" in node_pools
    _screenshot(page, "fleet-running")


def test_cluster_page_shows_replicas_node_pools_steps_per_iteration_and_events(page, creation) -> None:
    page.get_by_role("link", name=CLUSTER, exact=True).click()
    page.get_by_role("heading", level=1, name=f"Cluster {CLUSTER}").wait_for()
    replicas = page.locator("#replicas tbody tr")
    replicas.nth(2).wait_for()
    assert replicas.count() == 3
    assert all("healthy" in replicas.nth(i).text_content() for i in range(3))
    pools = {page.locator("#nodepools tbody th").nth(i).text_content() for i in range(2)}
    assert pools == {"general", "batch"}
    # The create, step by step: its Map iterations per replica and per node pool.
    page.locator("#operation li.step[data-step='MarkRunning']").wait_for(timeout=WAIT * 1000)
    for map_name, items in (
        ("CreateReplicas", {"replica 0", "replica 1", "replica 2"}),
        ("WaitForControlPlane", {"replica 0", "replica 1", "replica 2"}),
        ("CreateNodePools", {"nodePool general", "nodePool batch"}),
    ):
        rows = page.locator(f"table.iterations[data-map='{map_name}'] tbody tr")
        works_on = {rows.nth(i).locator("td").first.text_content() for i in range(rows.count())}
        assert works_on == items, map_name
    assert page.locator("#operation li.step[data-step='EnsureEtcdVolume']").count() == 3
    first_timeline_item = page.locator("ol.timeline li").first.text_content()
    assert "ValidateRequest" in first_timeline_item
    # Events: the create's, newest first.
    page.locator("#events tr[data-event-type='Normal']", has_text="ClusterRunning").wait_for(timeout=WAIT * 1000)
    assert page.locator("#schedules").text_content().endswith("None.")
    _screenshot(page, "cluster-running")


def test_keyboard_alone_reaches_a_cluster_and_its_operation(page, creation) -> None:
    _row(page).wait_for(timeout=WAIT * 1000)
    target = f"cluster:{TARGET}/{CLUSTER}"
    for _ in range(30):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.dataset.key || document.activeElement.textContent")
        if focused == target:
            break
    else:
        pytest.fail("Tab never reached the cluster's link")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused link shows where focus is"
    page.keyboard.press("Enter")
    page.get_by_role("heading", level=1, name=f"Cluster {CLUSTER}").wait_for()
    assert page.evaluate("document.activeElement.id") == "main", "focus moves to the new view's content"
    operation = f"op:{creation['id']}"
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.key") == operation:
            break
    else:
        pytest.fail("Tab never reached the operation's link")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"#/t/{TARGET}/c/{CLUSTER}/op/{creation['id']}$"))
    page.locator("#operation li.step").first.wait_for()


def test_the_stack_deployed_its_cloudwatch_dashboard(runtime) -> None:
    """The synthesized template's dashboard deploys (moto's CloudFormation knows the type)."""
    cloudwatch = runtime.boto3_client("cloudwatch")
    name = f"kubestep-{runtime.service_name}"
    assert name in {d["DashboardName"] for d in cloudwatch.list_dashboards()["DashboardEntries"]}
    body = cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"]
    assert "OperationStarted" in body and "ExecutionsFailed" in body


def _serious_violations(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_axe_finds_no_serious_violation_on_the_fleet_and_the_cluster_page(page, creation) -> None:
    _row(page).wait_for(timeout=WAIT * 1000)
    assert _serious_violations(page) == []
    page.get_by_role("link", name=CLUSTER, exact=True).click()
    page.locator("#events tbody tr").first.wait_for(timeout=WAIT * 1000)
    page.locator("ol.timeline li").first.wait_for()
    assert _serious_violations(page) == []


def test_a_degraded_cluster_shows_the_warning_that_explains_it(page, creation, store, api) -> None:
    """DEGRADED as the lifecycle workflows record it when a roll's gate fails (issue 10): the
    phase and a Warning event naming the replica and the check. Written here through the store,
    as the workflow's steps write them, until the upgrade workflow runs in this suite."""
    assert api.wait_operation(creation["id"], timeout=WAIT, poll=0.5)["status"] == "SUCCEEDED"
    page.get_by_role("link", name=CLUSTER, exact=True).click()
    page.get_by_role("heading", level=1, name=f"Cluster {CLUSTER}").wait_for()
    page.locator("#summary .badge", has_text="RUNNING").wait_for(timeout=WAIT * 1000)
    explanation = "replica 1 (us-east-1b) failed its gate after replacement: etcdHealthy is false; the roll stopped"
    store.events.record(CLUSTER, "Warning", "ReplicaGateFailed", explanation, f"AWSCluster/{CLUSTER}")
    store.clusters.update(CLUSTER, phase="DEGRADED")
    try:
        page.locator("#summary .badge", has_text="DEGRADED").wait_for(timeout=WAIT * 1000)
        warning = page.locator("#events tr.warning", has_text="ReplicaGateFailed")
        warning.wait_for(timeout=WAIT * 1000)
        assert explanation in warning.text_content()
        assert warning.locator("strong.warning-label").text_content().endswith("Warning")
        page.wait_for_function(
            "document.getElementById('announcer').textContent.includes('is now DEGRADED')", timeout=10_000
        )
        _screenshot(page, "cluster-degraded")
        page.goto(page.url.split("#")[0] + "#/")
        _row(page).locator(".badge", has_text="DEGRADED").wait_for(timeout=WAIT * 1000)
    finally:
        store.clusters.update(CLUSTER, phase="RUNNING")
