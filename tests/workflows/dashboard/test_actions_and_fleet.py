"""What a user does from the dashboard, in a real browser against the session's runtime: upgrade
to a version chosen from the service's list (end-of-life minors flagged, the service's refusal
shown in the dialog), scale a node pool, cancel an operation and delete a cluster, each behind a
confirmation that names the cluster (a delete asks for the name typed, as the GitHub and AWS
consoles do); a cluster's page shows its current incarnation only, earlier clusters of the same
name behind a toggle; the fleet sorts and filters by phase, name and version and flags end-of-life
versions and drift. Each page state is checked with axe-core; screenshots go to
`.artifacts/dashboard/`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from kubestep.api.client import ApiClient

from ..conftest import ha_request
from .pages import (
    ROLL_WAIT,
    WAIT,
    delete_cluster,
    fact,
    next_version,
    open_cluster,
    open_fleet,
    screenshot,
    serious_violations,
    settle,
    wait_until,
)

CLUSTER = "act"
OPERATIONS = "#operation li[data-operation]"


def _create(api: ApiClient, name: str) -> dict[str, Any]:
    operation = api.create_cluster(ha_request(name))
    assert api.wait_operation(operation["id"], timeout=WAIT, poll=0.5)["status"] == "SUCCEEDED"
    return operation


@pytest.fixture(scope="module")
def cluster(api: ApiClient, runtime: Any) -> Iterator[dict[str, Any]]:
    runtime.simulator.paused = False
    try:
        _create(api, CLUSTER)
        yield api.get_cluster(CLUSTER)
    finally:
        delete_cluster(api, CLUSTER)


def _dialog(page: Any) -> Any:
    dialog = page.locator("dialog.confirm[open]")
    dialog.wait_for(timeout=WAIT * 1000)
    return dialog


def _operation_ends(page: Any, status: str, timeout: float = ROLL_WAIT) -> None:
    page.locator("#operation .operation-head .badge", has_text=status).wait_for(timeout=timeout * 1000)


def test_upgrade_to_a_version_chosen_from_the_service_behind_a_confirmation(page, cluster, api) -> None:
    current = cluster["status"]["version"]
    target = next_version(api, current)
    open_cluster(page, CLUSTER)
    page.locator("#summary .badge", has_text="RUNNING").wait_for(timeout=WAIT * 1000)
    page.get_by_role("button", name="Upgrade…").click()
    dialog = _dialog(page)
    assert dialog.get_by_role("heading").text_content() == f"Upgrade cluster {CLUSTER}"
    # The choices: the service's versions above the current one, up to one minor up.
    offered = [o.split(" ")[0] for o in dialog.locator("#upgrade-version option").all_text_contents()]
    config = api.request("GET", "serverconfig")
    minor = int(current.split(".")[1])
    expected = [
        v
        for v in config["validVersions"]
        if v.split(".")[0] == "1" and minor <= int(v.split(".")[1]) <= minor + 1 and _newer(v, current)
    ]
    assert offered == expected and target in offered, offered
    dialog.get_by_label("Version").select_option(target)
    dialog.get_by_label("Then upgrade its node pools, one pool at a time").uncheck()
    assert f"{current} → {target}" in dialog.locator("#dialog-body").text_content()
    assert serious_violations(page) == []
    screenshot(page, "action-upgrade-dialog")
    dialog.get_by_role("button", name=f"Upgrade {CLUSTER}").click()
    # The page goes to the operation it started, and says so.
    page.wait_for_url(re.compile(rf"/c/{CLUSTER}/op/update-"))
    page.wait_for_function(
        "document.getElementById('announcer').textContent.includes('started: operation update-')", timeout=10_000
    )
    _operation_ends(page, "SUCCEEDED")
    page.locator("#summary dd", has_text=re.compile(f"^{re.escape(target)}$")).wait_for(timeout=WAIT * 1000)
    assert fact(page, "Version") == target
    assert api.get_cluster(CLUSTER)["status"]["version"] == target


def _newer(version: str, than: str) -> bool:
    return tuple(int(x) for x in version.split(".")) > tuple(int(x) for x in than.split("."))


def test_scale_a_node_pool_behind_a_confirmation(page, cluster, api) -> None:
    settle(api, CLUSTER)
    open_cluster(page, CLUSTER)
    row = page.locator("#nodepools tr[data-nodepool='general']")
    row.get_by_role("button", name="Scale… node pool general").click()
    dialog = _dialog(page)
    assert dialog.get_by_role("heading").text_content() == f"Scale node pool general of cluster {CLUSTER}"
    dialog.get_by_label("Minimum nodes").fill("3")
    dialog.get_by_label("Maximum nodes").fill("7")
    assert serious_violations(page) == []
    dialog.get_by_role("button", name=f"Scale general of {CLUSTER}").click()
    page.wait_for_url(re.compile(rf"/c/{CLUSTER}/op/"))
    _operation_ends(page, "SUCCEEDED")
    row.locator("td").nth(2).filter(has_text=re.compile("^3$")).wait_for(timeout=WAIT * 1000)
    assert row.locator("td").nth(3).text_content() == "7"
    spec = api.request("GET", f"clusters/{CLUSTER}/nodepools/general")["spec"]
    assert (spec["minNodeCount"], spec["maxNodeCount"]) == (3, 7)


def test_a_refused_action_says_why_in_its_dialog(page, cluster, api) -> None:
    """A minimum above the maximum is refused before anything is sent; the API's own refusal
    (the pool at its current bounds is no change) would show the same way."""
    settle(api, CLUSTER)
    open_cluster(page, CLUSTER)
    page.locator("#nodepools tr[data-nodepool='batch']").get_by_role("button", name="Scale… node pool batch").click()
    dialog = _dialog(page)
    dialog.get_by_label("Minimum nodes").fill("5")
    dialog.get_by_label("Maximum nodes").fill("2")
    dialog.get_by_role("button", name=f"Scale batch of {CLUSTER}").click()
    problem = dialog.get_by_role("alert")
    problem.wait_for()
    assert "no larger than the maximum" in problem.text_content()
    dialog.get_by_role("button", name="Keep it as it is").click()
    page.locator("dialog.confirm").wait_for(state="detached")
    assert not [o for o in api.list_operations(CLUSTER) if o["status"] == "RUNNING"]


def test_cancel_an_operation_behind_a_confirmation_that_names_the_cluster(page, api, runtime) -> None:
    """A create held at its health gate, cancelled from its page: it rolls back and frees the name."""
    name = "act-cancel"
    hold = runtime.simulator.hold_boots(name)
    try:
        operation = api.create_cluster(ha_request(name))
        open_cluster(page, name, operation["id"])
        page.locator("#operation li.step-wait[data-step='CheckReplicaHealth']").first.wait_for(timeout=WAIT * 1000)
        page.get_by_role("button", name="Cancel operation…").click()
        dialog = _dialog(page)
        assert dialog.get_by_role("heading").text_content() == f"Cancel operation on cluster {name}"
        assert operation["id"] in dialog.locator("#dialog-body").text_content()
        assert serious_violations(page) == []
        screenshot(page, "action-cancel-dialog")
        dialog.get_by_role("button", name=f"Cancel CreateCluster on {name}").click()
        page.wait_for_function(
            f"document.getElementById('announcer').textContent.includes('Cancellation of {operation['id']}')",
            timeout=10_000,
        )
        _operation_ends(page, "ABORTED")
        page.locator("#summary", has_text=f"Cluster {name} does not exist").wait_for(timeout=WAIT * 1000)
    finally:
        runtime.simulator.release_boots(hold)
        settle(api, name)
        delete_cluster(api, name)
    assert api.operation(operation["id"])["status"] == "ABORTED"


def test_delete_asks_for_the_cluster_name_typed(page, api, runtime) -> None:
    name = "act-delete"
    runtime.simulator.paused = False
    try:
        _create(api, name)
        open_cluster(page, name)
        page.locator("#summary .badge", has_text="RUNNING").wait_for(timeout=WAIT * 1000)
        page.get_by_role("button", name=f"Delete cluster {name}…").click()
        dialog = _dialog(page)
        assert dialog.get_by_role("heading").text_content() == f"Delete cluster {name}"
        confirm = dialog.get_by_role("button", name=f"Delete {name}")
        typed = dialog.get_by_label(f"Type {name} to confirm")
        assert confirm.is_disabled()
        typed.fill(name[:-1])
        assert confirm.is_disabled(), "a name almost typed deletes nothing"
        typed.fill(name.upper())
        assert confirm.is_disabled()
        typed.fill(name)
        assert confirm.is_enabled()
        assert serious_violations(page) == []
        screenshot(page, "action-delete-dialog")
        confirm.click()
        page.wait_for_url(re.compile(rf"/c/{name}/op/delete-"))
        _operation_ends(page, "SUCCEEDED")
        page.locator("#summary", has_text=f"Cluster {name} does not exist").wait_for(timeout=WAIT * 1000)
        assert name not in {c["metadata"]["name"] for c in api.list_clusters()}
    finally:
        delete_cluster(api, name)


def test_only_the_current_incarnation_with_earlier_ones_behind_a_toggle(page, api, runtime) -> None:
    """A cluster deleted and created again under the same name has another uid: its page shows
    the new one's events and operations; the earlier one's are one checkbox away, marked."""
    name = "act-again"
    runtime.simulator.paused = False
    try:
        first = _create(api, name)
        old_uid = api.get_cluster(name)["status"]["uid"]
        deletion = api.delete_cluster(name)
        assert api.wait_operation(deletion["id"], timeout=ROLL_WAIT, poll=0.5)["status"] == "SUCCEEDED"
        second = _create(api, name)
        new_uid = api.get_cluster(name)["status"]["uid"]
        assert new_uid != old_uid
        events = api.events(name)
        assert {e["uid"] for e in events} == {old_uid, new_uid}, "each event names its incarnation"
        old_events = [e for e in events if e["uid"] == old_uid]

        open_cluster(page, name)
        page.locator("#events tbody tr").first.wait_for(timeout=WAIT * 1000)
        page.locator(f"#operation a[data-key='op:{second['id']}']").wait_for(timeout=WAIT * 1000)
        shown_ops = page.eval_on_selector_all(OPERATIONS, "(lis) => lis.map((li) => li.dataset.operation)")
        assert shown_ops == [second["id"]], shown_ops
        uids = page.eval_on_selector_all("#events tbody tr", "(trs) => trs.map((tr) => tr.dataset.uid)")
        assert uids and set(uids) == {new_uid}, uids
        toggle = page.get_by_label(
            f"Show {len(old_events)} events and 2 operations of earlier clusters named {name} (other uids)"
        )
        assert not toggle.is_checked()
        assert serious_violations(page) == []
        toggle.check()
        page.locator(f"#operation li[data-operation='{deletion['id']}'][data-incarnation='earlier']").wait_for()
        shown_ops = page.eval_on_selector_all(OPERATIONS, "(lis) => lis.map((li) => li.dataset.operation)")
        assert set(shown_ops) == {first["id"], deletion["id"], second["id"]}
        earlier = page.locator("#events tbody tr[data-incarnation='earlier']")
        assert earlier.count() == len(old_events)
        assert all(f"earlier uid {old_uid}" in text for text in earlier.all_text_contents())
        assert serious_violations(page) == []
        screenshot(page, "incarnations-earlier-shown")
    finally:
        delete_cluster(api, name)


# ---------------------------------------------------------------- the fleet

FLEET = ("act-fleet-a", "act-fleet-b")
END_OF_LIFE = "1.34.2"


@pytest.fixture(scope="module")
def fleet(cluster: dict[str, Any], api: ApiClient, store: Any, runtime: Any) -> Iterator[list[str]]:
    """Two more clusters beside the module's: one whose records say it runs an end-of-life
    version (as one created before its minor's end of life would), one with drift found."""
    runtime.simulator.paused = False
    try:
        operations = [api.create_cluster(ha_request(name)) for name in FLEET]
        for operation in operations:
            assert api.wait_operation(operation["id"], timeout=WAIT, poll=0.5)["status"] == "SUCCEEDED"
        store.clusters.update(FLEET[0], version=END_OF_LIFE)
        store.clusters.update(FLEET[1], drift={"nlb": "missing (deleted outside kubestep)"})
        yield [CLUSTER, *FLEET]
    finally:
        for name in FLEET:
            if store.clusters.get(name) is not None:
                store.clusters.update(name, version=cluster["status"]["version"], drift={})
            delete_cluster(api, name)


def _fleet_rows(page: Any) -> list[str]:
    return page.eval_on_selector_all("table.fleet tbody tr", "(trs) => trs.map((tr) => tr.dataset.cluster)")


def test_the_fleet_sorts_filters_and_flags_end_of_life_and_drift(page, fleet, api) -> None:
    open_fleet(page)
    for name in fleet:
        page.locator(f"tr[data-cluster='{name}']").wait_for(timeout=WAIT * 1000)
    rows = {name: page.locator(f"tr[data-cluster='{name}']") for name in fleet}
    eol = rows[FLEET[0]].locator("[data-warning='end-of-life']")
    assert eol.first.text_content().endswith("end of life")
    assert "1.34" in eol.first.get_attribute("title")
    assert rows[FLEET[1]].locator("[data-warning='drift']").get_attribute("title").startswith("nlb: missing")
    assert rows[CLUSTER].locator("td").last.text_content() == "none"
    summary = page.locator("#fleet-summary").text_content()
    assert summary.startswith(f"{len(fleet)} clusters") or "clusters:" in summary
    assert "2 with warnings" in summary, summary
    assert serious_violations(page) == []
    screenshot(page, "fleet-warnings")

    # Sort by version (either way), by name.
    page.get_by_role("button", name="Version").click()
    versions = {name: api.get_cluster(name)["status"]["version"] for name in fleet}
    ascending = sorted(fleet, key=lambda n: (tuple(int(x) for x in versions[n].split(".")), n))
    wait_until(lambda: [n for n in _fleet_rows(page) if n in fleet] == ascending, "ascending versions", timeout=10)
    assert page.locator("th[aria-sort='ascending']").text_content().startswith("Version")
    page.get_by_role("button", name="Version").click()
    wait_until(lambda: [n for n in _fleet_rows(page) if n in fleet] == ascending[::-1], "descending", timeout=10)
    assert page.locator("th[aria-sort='descending']").text_content().startswith("Version")

    # Filters: clusters with warnings; by name or version; by phase.
    page.get_by_label("Only clusters with warnings").check()
    wait_until(lambda: set(_fleet_rows(page)) == set(FLEET), "the clusters with warnings", timeout=10)
    page.get_by_label("Only clusters with warnings").uncheck()
    page.get_by_label("Name or version").fill(END_OF_LIFE)
    wait_until(lambda: _fleet_rows(page) == [FLEET[0]], "the end-of-life cluster", timeout=10)
    page.get_by_label("Name or version").fill("")
    page.get_by_label("Phase").select_option("ERROR")
    wait_until(lambda: not any(n in fleet for n in _fleet_rows(page)), "no ERROR cluster", timeout=10)
    page.get_by_label("Phase").select_option("RUNNING")
    wait_until(lambda: set(fleet) <= set(_fleet_rows(page)), "the RUNNING clusters", timeout=10)
    assert serious_violations(page) == []


def test_an_upgrade_to_an_end_of_life_minor_is_flagged_and_its_refusal_shown(page, fleet) -> None:
    name = FLEET[0]  # its records say 1.34.2: the choices include 1.34 patches, past their end of life
    open_cluster(page, name)
    page.locator("#summary dt", has_text="Warnings").wait_for(timeout=WAIT * 1000)
    page.get_by_role("button", name="Upgrade…").click()
    dialog = _dialog(page)
    options = dialog.locator("#upgrade-version option").all_text_contents()
    eol_options = [o for o in options if "end of life" in o]
    assert eol_options and all(o.startswith("1.34.") for o in eol_options), options
    dialog.get_by_label("Version").select_option(eol_options[0].split(" ")[0])
    warning = dialog.locator("#upgrade-warning")
    assert warning.is_visible() and "reached its end of life" in warning.text_content()
    assert serious_violations(page) == []
    screenshot(page, "action-upgrade-end-of-life")
    dialog.get_by_role("button", name=f"Upgrade {name}").click()
    problem = dialog.get_by_role("alert").filter(has_text="HTTP 4")
    problem.wait_for(timeout=WAIT * 1000)
    assert "1.34" in problem.text_content()
    # A supported choice clears the warning.
    supported = next(o for o in options if "end of life" not in o).split(" ")[0]
    dialog.get_by_label("Version").select_option(supported)
    assert not warning.is_visible()
    dialog.get_by_role("button", name="Keep it as it is").click()
