"""An open dashboard follows the local runtime through `kubestep local down && kubestep local up
--detach` on other ports, in a real browser: `kubestep dashboard` (run as a user runs it, its
target the local runtime found through `$KUBESTEP_HOME/local.json`) shows the fleet; the runtime
stops (the page says it cannot reach it) and starts again elsewhere; the page shows the fleet
again from the new endpoint, with the cluster the runtime kept, without a reload. The local
runtime's ids are shown plain, never as links to a real account's console. Screenshots go to
`.artifacts/dashboard/`."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubestep import versions

from ..deployed_stack import saved_state, seed_home

ROOT = Path(__file__).resolve().parents[2]
SHARED_HOME = Path(os.environ.get("KUBESTEP_TEST_HOME", ROOT / ".build" / "test-home"))
HOME = SHARED_HOME / f"dashboard-restart-{os.getpid()}"
CHROMIUM = Path(os.environ.get("KUBESTEP_CHROMIUM", "/usr/bin/chromium"))
AXE = ROOT / ".build" / "node" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / ".artifacts" / "dashboard"
CLUSTER = "restart"
WAIT = 180  # seconds: the page backs off to 30 s between tries while the runtime is down


def kubestep(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, as a user runs it, with this test's home."""
    return subprocess.run(
        [sys.executable, "-m", "kubestep.cli.main", *args],
        env=_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def _env() -> dict[str, str]:
    """No endpoint, context or AWS setting of the caller's: the target is this home's runtime."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBESTEP_", "AWS_"))}
    if versions.TODAY_ENV in os.environ:  # the suite's date for the version catalog
        env[versions.TODAY_ENV] = os.environ[versions.TODAY_ENV]
    return {**env, "KUBESTEP_HOME": str(HOME)}


def _up() -> dict[str, Any]:
    up = kubestep("local", "up", "--detach", "--port", "0", "--api-port", "0", "--time-scale", "0.02")
    assert up.returncode == 0, up.stderr + up.stdout
    return json.loads((HOME / "local.json").read_text())


@pytest.fixture(scope="module")
def runtime_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    shutil.rmtree(HOME, ignore_errors=True)
    if (SHARED_HOME / "local" / "cdk.out").is_dir():  # the synthesized assembly, reused
        shutil.copytree(SHARED_HOME / "local" / "cdk.out", HOME / "local" / "cdk.out")
    HOME.mkdir(parents=True, exist_ok=True)
    # The first `local up` restores the session's deployed stack, as after a `local down`, instead
    # of deploying it again (tests/cli/test_first_hour.py runs a home's very first `local up`).
    seed_home(HOME, saved_state(tmp_path_factory))
    try:
        yield HOME
    finally:
        kubestep("local", "down", "--force", timeout=120)
        shutil.rmtree(HOME, ignore_errors=True)


@pytest.fixture
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: run `bash scripts/setup.sh` as root")
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing ({AXE}): run `bash scripts/setup.sh` (it installs it with npm)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield chromium
        chromium.close()


def _serious_violations(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_an_open_dashboard_follows_the_local_runtime_to_its_new_ports(runtime_home, browser) -> None:
    first = _up()
    applied = kubestep("apply", "-f", str(ROOT / "examples" / "cluster-ha.yaml"), "--wait")
    assert applied.returncode == 0, applied.stderr + applied.stdout  # cluster `prod`
    # Ctrl-C as at a terminal: a test run started in the background (`&`, nohup) ignores SIGINT,
    # and the dashboard would inherit that, never stop, and outlive the test.
    ctrl_c = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)"
    dashboard = subprocess.Popen(
        [sys.executable, "-c", f"{ctrl_c}; from kubestep.cli.main import main; main()", "dashboard"]
        + ["--port", "0", "--no-open", "--interval", "0.5s"],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        line = dashboard.stdout.readline()
        match = re.match(r"kubestep dashboard: (http://127\.0\.0\.1:\d+/#token=\S+)$", line.strip())
        assert match, line
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(match.group(1))
        meta = page.locator("section[data-target='local'] p.meta")
        # The page starts with the endpoint alone; its first answer adds what the service says.
        meta.filter(has_text="local runtime").filter(has_text=first["api_url"]).wait_for(timeout=WAIT * 1000)
        page.locator("tr[data-cluster='prod'] .badge", has_text="RUNNING").wait_for(timeout=WAIT * 1000)

        # The local runtime's ids are plain: they exist only in its emulator.
        page.get_by_role("link", name="prod", exact=True).click()
        page.locator("#replicas tbody tr").first.wait_for(timeout=WAIT * 1000)
        assert page.locator("main a.console-link").count() == 0
        assert page.locator("#replicas code.aws-id").count() >= 9
        page.go_back()
        page.locator("tr[data-cluster='prod']").wait_for(timeout=WAIT * 1000)

        down = kubestep("local", "down", timeout=180)
        assert down.returncode == 0, down.stderr
        page.locator("section[data-target='local'] .error-note", has_text="cannot reach").wait_for(timeout=WAIT * 1000)
        second = _up()
        assert second["api_url"] != first["api_url"], "the runtime came back on other ports"

        # Without a reload: the page reaches the runtime where it is now, and says so.
        meta.filter(has_text="local runtime").filter(has_text=second["api_url"]).wait_for(timeout=WAIT * 1000)
        page.locator("tr[data-cluster='prod'] .badge", has_text="RUNNING").wait_for(timeout=WAIT * 1000)
        page.locator("#refresh-state", has_text="Updated").wait_for(timeout=WAIT * 1000)
        page.wait_for_function(
            f"document.getElementById('announcer').textContent.includes('local now answers at {second['api_url']}')",
            timeout=10_000,
        )
        _screenshot(page, "local-runtime-followed")
        assert _serious_violations(page) == []
        assert errors == [], errors
        context.close()
    finally:
        dashboard.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            dashboard.communicate(timeout=30)
        finally:
            if dashboard.poll() is None:  # it did not stop: the test fails, and leaves no process
                dashboard.kill()
                dashboard.communicate()
        deleted = kubestep("delete", "cluster", "prod", "--wait")
        assert deleted.returncode == 0, deleted.stderr + deleted.stdout
