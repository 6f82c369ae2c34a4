"""The dashboard in a real browser (Playwright driving Debian's Chromium) against the module's
emulator runtime, through `kubestep dashboard` run as a user runs it: the fleet follows a cluster
being created to RUNNING with its replicas per zone and node pools; the cluster's page shows
its operation step by step, per replica and per node pool, its scheduled upgrades and its
events; the page works with the keyboard alone and axe-core finds no serious or critical
accessibility violation. Then the module's one cluster goes through issue 10's lifecycle while
the page watches: an upgrade rolling the control plane replica by replica, a node pool rolling
batch by batch through its drains, and a control-plane change whose health gate fails on one
replica, leaving the cluster DEGRADED with the Warning event that explains it (the last test:
the module deletes the cluster after it). Screenshots go to `.artifacts/dashboard/`.

Chromium comes from Debian (`scripts/setup.sh` installs it as root); a machine without it
fails these tests with that message rather than skipping them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
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
ROLL_WAIT = 400  # seconds: an upgrade takes ~50 s here, a 3-node roll ~40 s; more on a busy machine


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
    # Ctrl-C as at a terminal: a test run started in the background (`&`, nohup) ignores SIGINT,
    # and the dashboard would inherit that and never stop.
    ctrl_c = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)"
    command = [sys.executable, "-c", f"{ctrl_c}; from kubestep.cli.main import main; main()", "dashboard"]
    command += ["--port", "0", "--no-open"]
    process = subprocess.Popen(
        [*command, "--interval", "0.5s", "--endpoint", runtime.api_url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    first = process.stdout.readline()
    match = re.match(r"kubestep dashboard: (http://127\.0\.0\.1:\d+/#token=\S+)$", first.strip())
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
    """The module's one cluster, created through the API; deleted when the module is done, after
    whatever operation a failed test left running.

    Its instances' boots wait until a test lets them (`running`, or the fleet test once the page
    has shown PROVISIONING): the create cannot finish between two polls of the page."""
    runtime.simulator.paused = True
    try:
        operation = api.create_cluster(ha_request(CLUSTER))
        yield operation
    finally:
        runtime.simulator.paused = False
    for running in [op for op in api.list_operations(CLUSTER) if op["status"] == "RUNNING"]:
        api.wait_operation(running["id"], timeout=ROLL_WAIT, poll=0.5)
    deletion = api.delete_cluster(CLUSTER)
    assert api.wait_operation(deletion["id"], timeout=WAIT, poll=0.5)["status"] == "SUCCEEDED"


@pytest.fixture
def running(creation, api, runtime) -> dict[str, Any]:
    """The module's cluster once its create has ended (each test can run alone: nothing it starts
    meets the create's lock)."""
    runtime.simulator.paused = False
    assert api.wait_operation(creation["id"], timeout=WAIT, poll=0.5)["status"] == "SUCCEEDED"
    return creation


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


class OtherPortSite:
    """Another web server on 127.0.0.1 (another port), as any local program or a page the user
    opens might run: it records every request's headers, and its page tries what a hostile page
    would — read cookies and storage, call the dashboard at `dashboard_base` — and reports what it
    got. Its /api/ answers as a management API, so the dashboard can forward to it."""

    PAGE = """<!doctype html><html><head><title>elsewhere</title></head><body><script>
    (async () => {
      const report = { cookie: document.cookie, storage: Object.entries(sessionStorage).concat(
        Object.entries(localStorage)), calls: [] };
      for (const path of ["api/targets", "api/local/v1/operations/hostile-op-1"]) {
        try {
          const answer = await fetch(`DASHBOARD${path}`, { credentials: "include" });
          report.calls.push({ path, status: answer.status, body: await answer.text() });
        } catch (error) {
          report.calls.push({ path, error: String(error) });
        }
      }
      await fetch("/report", { method: "POST", body: JSON.stringify(report) });
      document.body.dataset.done = "1";
    })();
    </script></body></html>"""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        site = self
        self.requests: list[dict[str, str]] = []
        self.report: dict[str, Any] | None = None
        self.dashboard_base = ""

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, body: bytes, content_type: str) -> None:
                site.requests.append({"path": self.path, **dict(self.headers.items())})
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.startswith("/api/"):  # as the management API (the dashboard's upstream)
                    self._answer(b'{"items": [], "kubestep": "test"}', "application/json")
                else:
                    self._answer(site.PAGE.replace("DASHBOARD", site.dashboard_base).encode(), "text/html")

            def do_POST(self) -> None:  # noqa: N802
                site.report = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self._answer(b"{}", "application/json")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_a_page_on_another_port_cannot_obtain_or_use_the_session(browser) -> None:
    """Browsers scope cookies by host, not port: with a session cookie, every page the user's
    browser opened on 127.0.0.1:<any other port> was sent the dashboard's token. The token now
    lives in the page's own origin (host and port): opened in the same browser after the
    dashboard, a page of another server on 127.0.0.1 neither receives nor reads it, and its calls
    to the dashboard's API are refused."""
    from kubestep.dashboard import DashboardServer, DashboardTarget

    other = OtherPortSite()
    api_url = f"{other.url}api/"
    target = DashboardTarget("local", endpoint=api_url, local=True, make_client=lambda: ApiClient(api_url, sign=False))
    server = DashboardServer([target]).start()
    other.dashboard_base = server.base_url
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(server.url)
        # The page is in session: its targets came through the API.
        page.locator("#view").filter(has_text="local").wait_for(timeout=WAIT * 1000)
        assert "token" not in page.url
        elsewhere = context.new_page()
        elsewhere.goto(other.url)
        elsewhere.wait_for_function("document.body.dataset.done === '1'", timeout=WAIT * 1000)
        seen = json.dumps(other.requests)
        assert server.token not in seen, "a request to another port carried the dashboard's token"
        report = other.report
        assert report is not None
        assert server.token not in json.dumps(report), report
        assert report["cookie"] == "" and report["storage"] == []
        for call in report["calls"]:
            # The browser hides a cross-origin answer from the page, or the server refused it.
            assert "error" in call or call["status"] in (401, 403), call
        assert not any("hostile" in r["path"] for r in other.requests), "nothing was forwarded for the other page"
        # The dashboard's own tab is still in session.
        assert page.evaluate("sessionStorage.getItem('kubestep-dashboard-session')") == server.token
    finally:
        context.close()
        other.close()
        server.stop()


def _row(page: Any) -> Any:
    return page.locator(f'tr[data-cluster="{CLUSTER}"]')


def test_fleet_follows_a_create_to_running_with_replicas_and_node_pools(page, creation, api, runtime) -> None:
    assert page.url.endswith("/#/") and "token" not in page.url, "the token left the address bar"
    row = _row(page)
    row.wait_for(timeout=WAIT * 1000)
    # The page shows the create in progress while the instances are held before their boot...
    row.locator(".badge", has_text="PROVISIONING").first.wait_for(timeout=WAIT * 1000)
    runtime.simulator.paused = False  # ...then follows it to RUNNING.
    phases: list[str] = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        phase = (row.locator(".badge").first.text_content(timeout=5000) or "").strip()
        if not phases or phases[-1] != phase:
            phases.append(phase)
        if phase == "RUNNING":
            break
        time.sleep(0.1)
    ended = api.operation(creation["id"])
    assert ended["status"] in ("RUNNING", "SUCCEEDED"), ended
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


def test_cluster_page_shows_replicas_node_pools_steps_per_iteration_and_events(page, running) -> None:
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


def test_keyboard_alone_reaches_a_cluster_and_its_operation(page, running) -> None:
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
    operation = f"op:{running['id']}"
    # As a keyboard user would, wait until the cluster's operations are listed before moving on.
    page.locator(f"#operation a[data-key='{operation}']").wait_for(timeout=WAIT * 1000)
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.key") == operation:
            break
    else:
        pytest.fail("Tab never reached the operation's link")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"#/t/{TARGET}/c/{CLUSTER}/op/{running['id']}$"))
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


def test_axe_finds_no_serious_violation_on_the_fleet_and_the_cluster_page(page, running) -> None:
    _row(page).wait_for(timeout=WAIT * 1000)
    assert _serious_violations(page) == []
    page.get_by_role("link", name=CLUSTER, exact=True).click()
    page.locator("#events tbody tr").first.wait_for(timeout=WAIT * 1000)
    page.locator("ol.timeline li").first.wait_for()
    assert _serious_violations(page) == []


def _open(page: Any, operation: str | None = None) -> None:
    """The cluster's page (on `operation`, if named), by its address, as a bookmark opens it."""
    hash_ = f"#/t/{TARGET}/c/{CLUSTER}" + (f"/op/{operation}" if operation else "")
    page.goto(page.url.split("#")[0] + hash_)
    page.get_by_role("heading", level=1, name=f"Cluster {CLUSTER}").wait_for()


def _fact(page: Any, term: str) -> str:
    """The value of one of the summary's facts (`Phase`, `Version`, …)."""
    dt = page.locator("#summary dt", has_text=re.compile(f"^{re.escape(term)}$"))
    return (dt.locator("xpath=following-sibling::dd[1]").text_content() or "").strip()


def _watch(api: ApiClient, operation: dict[str, Any], look: Callable[[], Any]) -> tuple[dict[str, Any], list[Any]]:
    """Samples of the page (`look()`) while the operation runs, a few per second, then its end."""
    samples: list[Any] = []
    deadline = time.monotonic() + ROLL_WAIT
    while time.monotonic() < deadline:
        samples.append(look())
        ended = api.operation(operation["id"])
        if ended["status"] != "RUNNING":
            return ended, samples
        time.sleep(0.25)
    pytest.fail(f"operation {operation['id']} still running after {ROLL_WAIT} s")


# The page's step view as data: every timeline line's step, type, Map iteration and item.
TIMELINE = """() => [...document.querySelectorAll('#operation ol.timeline li.step')].map((li) => ({
  step: li.dataset.step, type: li.className.replace('step step-', ''), map: li.dataset.map || null,
  iteration: li.dataset.iteration === undefined ? null : Number(li.dataset.iteration),
  item: li.dataset.item || null, text: li.textContent }))"""
ITERATIONS = """(map) => [...document.querySelectorAll(`table.iterations[data-map='${map}'] tbody tr`)].map((tr) => ({
  iteration: Number(tr.dataset.iteration), state: tr.dataset.state,
  item: tr.querySelector('td').textContent, done: Number(tr.querySelectorAll('td')[1].textContent) }))"""


ROLL_ROWS = "#operation table.iterations[data-map='RollReplicas'] tbody tr"


def _replica_steps_in_history(runtime, execution_arn: str) -> list[tuple[str, str]]:
    """(state, `replica N`) of each ReplaceReplica/CheckReplicaHealth exit, in history order."""
    sfn = runtime.boto3_client("stepfunctions")
    order = []
    for history in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        for event in history["events"]:
            details = event.get("stateExitedEventDetails")
            if details and details["name"] in ("ReplaceReplica", "CheckReplicaHealth"):
                order.append((details["name"], f"replica {json.loads(details['output'])['replica']}"))
    return order


def test_cluster_page_lists_its_scheduled_upgrades(page, running, api) -> None:
    """`GET /v1/schedules?cluster=` on the page: a one-off upgrade, then cancelled."""
    assert api.wait_operation(running["id"], timeout=WAIT, poll=0.5)["status"] == "SUCCEEDED"
    _open(page)
    page.locator("#schedules p", has_text="None.").wait_for(timeout=WAIT * 1000)
    at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    schedule = api.upgrade_cluster(CLUSTER, "1.36.5", node_pools="all", at=at.isoformat())
    try:
        row = f"#schedules tr[data-schedule='{schedule['id']}']"
        page.locator(f"{row}[data-state='SCHEDULED']").wait_for(timeout=WAIT * 1000)
        cells = page.locator(row).locator("td")
        assert cells.nth(0).locator("time").get_attribute("datetime") == schedule["at"]
        assert cells.nth(1).text_content() == "1.36.5" and cells.nth(2).text_content() == "all"
        assert _serious_violations(page) == []
    finally:
        api.cancel_schedule(schedule["id"])
    page.locator(f"{row}[data-state='CANCELLED']").wait_for(timeout=WAIT * 1000)
    assert page.locator(row).locator("td").nth(3).text_content() == "CANCELLED"


def test_an_upgrade_rolls_the_control_plane_replica_by_replica(page, running, api, runtime) -> None:
    assert api.wait_operation(running["id"], timeout=WAIT, poll=0.5)["status"] == "SUCCEEDED"
    operation = api.upgrade_cluster(CLUSTER, "1.36.5")
    _open(page, operation["id"])
    ended, samples = _watch(api, operation, lambda: page.evaluate(ITERATIONS, "RollReplicas"))
    assert ended["status"] == "SUCCEEDED", ended

    # Live: every replica is listed from the Map's start (those not reached yet as such), and the
    # iterations started one at a time, in order, while it ran.
    assert all(len(rows) == 3 for rows in samples if rows), samples
    appeared = [[row["item"] for row in rows if row["state"] != "not started"] for rows in samples if rows]
    seen: list[list[str]] = []
    for rows in appeared:
        if not seen or seen[-1] != rows:
            seen.append(rows)
    lengths = [len(rows) for rows in seen]
    assert lengths == sorted(lengths) and lengths[-1] == 3 and {1, 2} & set(lengths), seen
    final_items = seen[-1]
    assert sorted(final_items) == ["replica 0", "replica 1", "replica 2"]
    assert all(rows == final_items[: len(rows)] for rows in seen), "an iteration's item never changes"

    # The step view has each replica's replacement and gate in the order the history has them:
    # replica N+1 replaced only after replica N passed its gate.
    page.locator("#operation .operation-head .badge", has_text="SUCCEEDED").wait_for(timeout=WAIT * 1000)
    page.locator("#operation li.step-done[data-step='MarkRunning']").wait_for(timeout=WAIT * 1000)
    shown = [
        (line["step"], line["item"])
        for line in page.evaluate(TIMELINE)
        if line["type"] == "done" and line["step"] in ("ReplaceReplica", "CheckReplicaHealth")
    ]
    history = _replica_steps_in_history(runtime, ended["executionArn"])
    assert shown == history
    assert shown == [(state, item) for item in final_items for state in ("ReplaceReplica", "CheckReplicaHealth")]
    page.locator(f"{ROLL_ROWS}[data-iteration='0'][data-state='finished']").wait_for(timeout=WAIT * 1000)
    rows = page.evaluate(ITERATIONS, "RollReplicas")
    assert [(r["item"], r["state"], r["done"]) for r in rows] == [(item, "finished", 2) for item in final_items], [
        (x["step"], x["type"], x["map"], x["iteration"], x["item"]) for x in page.evaluate(TIMELINE)
    ]

    # It ends RUNNING on the new version, here and in the fleet.
    page.locator("#summary .badge", has_text="RUNNING").wait_for(timeout=WAIT * 1000)
    page.wait_for_function(
        "[...document.querySelectorAll('#summary dd')].some((dd) => dd.textContent === '1.36.5')", timeout=10_000
    )
    assert _fact(page, "Version") == "1.36.5" and _fact(page, "Current operation") == "none"
    page.locator("#events tr", has_text="ControlPlaneUpdated").wait_for(timeout=WAIT * 1000)
    _screenshot(page, "upgrade-rolled")
    page.goto(page.url.split("#")[0] + "#/")
    _row(page).locator("td").nth(1).filter(has_text="1.36.5").wait_for(timeout=WAIT * 1000)


ROLL_WAIT_MESSAGE = re.compile(r"node pool general: (\d+)/3 new nodes ready, (\d+) old, (\d+) draining")


def test_a_node_pool_rolls_batch_by_batch_through_its_drains(page, running, api, store, runtime) -> None:
    scaled = api.update_node_pool(CLUSTER, "general", {"minNodeCount": 3})
    assert api.wait_operation(scaled["id"], timeout=ROLL_WAIT, poll=0.5)["status"] == "SUCCEEDED"
    assert runtime.simulator.wait_idle(30)
    group = store.node_pools.get(CLUSTER, "general").asg_name
    members = runtime.boto3_client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    old = {m["InstanceId"] for m in members["AutoScalingGroups"][0]["Instances"]}
    assert len(old) == 3

    operation = api.update_node_pool(CLUSTER, "general", {"labels": {"tier": "web"}})
    _open(page, operation["id"])

    def look() -> dict[str, Any]:
        return page.evaluate(
            """() => ({
              waits: [...document.querySelectorAll("#operation li.step-wait[data-step='RollNodePool'] .msg")]
                .map((m) => m.textContent),
              draining: [...document.querySelectorAll("#events tbody tr")]
                .filter((tr) => tr.querySelectorAll('td')[1].textContent === 'Draining').length })"""
        )

    ended, samples = _watch(api, operation, look)
    assert ended["status"] == "SUCCEEDED", ended

    # Live: the drains' events and the roll's wait lines arrived on the page while it ran.
    page.locator("#operation .operation-head .badge", has_text="SUCCEEDED").wait_for(timeout=WAIT * 1000)
    page.locator("#operation li.step-done[data-step='MarkRunning']").wait_for(timeout=WAIT * 1000)
    final = look()
    counts = [sample["draining"] for sample in samples] + [final["draining"]]
    assert counts == sorted(counts) and counts[-1] == 3 and any(0 < c < 3 for c in counts), counts
    waits = final["waits"]
    assert all(sample["waits"] == waits[: len(sample["waits"])] for sample in samples), "lines only ever appended"
    assert any(0 < len(sample["waits"]) < len(waits) for sample in samples), "the lines appeared while the roll ran"

    # Batch by batch (maxSurge 1, maxUnavailable 0), as the execution history tells it: one new
    # node at a time becomes ready, and only then one old node leaves; never fewer than 3 nodes.
    progress = [tuple(int(n) for n in ROLL_WAIT_MESSAGE.search(line).groups()) for line in waits]
    ready, remaining = [p[0] for p in progress], [p[1] for p in progress]
    assert ready == sorted(ready) and remaining == sorted(remaining, reverse=True), waits
    assert all(b - a <= 1 for a, b in zip(ready, ready[1:], strict=False)), waits
    assert all(new + old >= 3 for new, old, _ in progress), waits
    batches = iter((new, old) for new, old, _ in progress)
    assert all(batch in batches for batch in [(0, 3), (1, 3), (2, 2), (3, 1)]), waits  # in this order

    # Every old node's Draining event, and the pool back to RUNNING with 3 ready nodes.
    page.locator("#events tbody tr", has_text="Draining").nth(2).wait_for(timeout=WAIT * 1000)
    draining = page.locator("#events tbody tr", has_text="Draining")
    assert draining.count() == 3
    messages = " ".join(draining.nth(i).text_content() for i in range(3))
    assert all(instance in messages for instance in old), messages
    assert all(draining.nth(i).locator("td").nth(2).text_content() == "AWSNodePool/general" for i in range(3))
    pool = page.locator("#nodepools tr[data-nodepool='general']")
    pool.locator(".badge", has_text="RUNNING").wait_for(timeout=WAIT * 1000)
    pool.locator("td").nth(4).filter(has_text=re.compile("^3$")).wait_for(timeout=WAIT * 1000)
    _screenshot(page, "nodepool-rolled")


def test_a_failed_gate_leaves_the_cluster_degraded_with_the_warning_that_explains_it(
    page, running, api, runtime
) -> None:
    """A control-plane change whose gate fails on replica 1 (its new instance cannot join etcd):
    the roll stops there, the cluster is DEGRADED, and a Warning names the replica and the check.
    The module's last test: the cluster is deleted after it."""
    failure = runtime.simulator.fail_bootstrap(CLUSTER, replica=1, phase="etcd-join", times=1)
    try:
        operation = api.update_cluster(CLUSTER, {"controlPlane": {"instanceType": "m5.xlarge"}})
        _open(page, operation["id"])
        page.locator("#summary .badge", has_text="DEGRADED").wait_for(timeout=ROLL_WAIT * 1000)
    finally:
        if failure.remaining:
            runtime.simulator.clear_failures()
    ended = api.wait_operation(operation["id"], timeout=WAIT, poll=0.5)
    assert ended["status"] == "FAILED", ended
    # Both announced to screen readers, though one refresh may have seen both changes.
    page.wait_for_function(
        f"""(() => {{ const said = document.getElementById('announcer').textContent;
        return said.includes('is now DEGRADED') && said.includes('Operation {operation["id"]} FAILED'); }})()""",
        timeout=10_000,
    )
    warning = [e for e in api.events(CLUSTER) if e["type"] == "Warning"][-1]
    assert "replica 1" in warning["message"] and "etcd-join" in warning["message"], warning
    row = page.locator("#events tr.warning", has_text=warning["reason"])
    row.wait_for(timeout=WAIT * 1000)
    text = row.text_content()
    assert "replica 1" in text and "etcd-join" in text and warning["message"] in text
    assert row.locator("strong.warning-label").text_content().endswith("Warning")
    assert "replica 1" in _fact(page, "Last error") and "etcd-join" in _fact(page, "Last error")

    # The operation: replica 0 rolled, replica 1 failed its gate, replica 2 untouched.
    page.locator("#operation .operation-head .badge", has_text="FAILED").wait_for(timeout=WAIT * 1000)
    # (the table is final once the page has the history's last steps, maybe a poll after the badge)
    page.locator(f"{ROLL_ROWS}[data-iteration='0'][data-state='finished']").wait_for(timeout=WAIT * 1000)
    rows = page.evaluate(ITERATIONS, "RollReplicas")
    # Replica 2 never started: its row says so (the Map's item count is known), never "finished".
    assert [(r["item"], r["state"]) for r in rows] == [
        ("replica 0", "finished"),
        ("replica 1", "failed"),
        ("—", "not run"),
    ], rows
    _screenshot(page, "cluster-degraded")
    assert _serious_violations(page) == []
    page.goto(page.url.split("#")[0] + "#/")
    _row(page).locator(".badge", has_text="DEGRADED").wait_for(timeout=WAIT * 1000)
