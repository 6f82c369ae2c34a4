"""The dashboard during an upgrade, in a real browser against the session's runtime: the target
version next to the current one while the cluster is RECONCILING (in the summary, the fleet and
each node pool), each replica's version as its own instance reported it, the replica being
replaced shown as such (not `healthy` with its old instance), Map iterations final as soon as
they end, the fleet's row with the operation's progress; a timeline on a time axis where a Map's
iterations run side by side and the critical path is marked; ages with the absolute time on
hover, every AWS id a link to the console of the target's region, and an endpoint that wraps
only between its labels.

The upgrade is held where a test needs it: the instance simulator keeps replica 1's new instance
(and node pool general's new nodes) from booting until released, so the page is seen mid-roll
for as long as it takes, and no test sleeps. Screenshots go to `.artifacts/dashboard/`."""

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
    wait_until,
)

CLUSTER = "upg"
TIMELINE_CLUSTER = "upg-tl"


@pytest.fixture(scope="module")
def cluster(api: ApiClient, runtime: Any) -> Iterator[dict[str, Any]]:
    """The module's cluster, RUNNING; deleted when the module is done."""
    runtime.simulator.paused = False
    try:
        created = api.create_cluster(ha_request(CLUSTER))
        assert api.wait_operation(created["id"], timeout=WAIT, poll=0.5)["status"] == "SUCCEEDED"
        yield api.get_cluster(CLUSTER)
    finally:
        runtime.simulator.release_boots()
        delete_cluster(api, CLUSTER)


def _held_upgrade(api: ApiClient, runtime: Any, *, replica: int | None, node_pools: bool) -> Iterator[dict[str, Any]]:
    """An upgrade to the next version, held mid-roll: with `replica`, that replica's new instance
    launched but not booted, so its health gate waits (the replicas before it replaced, those
    after it untouched); with `node_pools`, node pool general's new nodes held too. The gate gives
    up at its deadline (20 minutes, about 24 s at the suite's time scale): a test reads the page
    at once. Released, and the upgrade waited for, when the test is done."""
    simulator = runtime.simulator
    status = api.get_cluster(CLUSTER)["status"]
    before = status["version"]
    pools = {p["metadata"]["name"]: p["status"]["version"] for p in status["nodePools"]}
    target = next_version(api, before)
    holds = {}
    if replica is not None:
        holds["replica"] = simulator.hold_boots(CLUSTER, replica=replica)
    if node_pools:
        holds["pool"] = simulator.hold_boots(CLUSTER, role="node", nodepool="general")
    operation = api.upgrade_cluster(CLUSTER, target, node_pools="all" if node_pools else None)
    try:
        if replica is not None:
            wait_until(lambda: simulator.held(), f"replica {replica}'s new instance", timeout=ROLL_WAIT)
        yield {"operation": operation, "from": before, "to": target, "pools": pools, "holds": holds}
    finally:
        simulator.release_boots()
        ended = api.wait_operation(operation["id"], timeout=ROLL_WAIT, poll=0.5)
        assert ended["status"] == "SUCCEEDED", ended


@pytest.fixture
def upgrade(cluster: dict[str, Any], api: ApiClient, runtime: Any) -> Iterator[dict[str, Any]]:
    """Held at replica 1: replica 0 replaced and through its gate, replica 2 untouched."""
    yield from _held_upgrade(api, runtime, replica=1, node_pools=False)


@pytest.fixture
def pool_upgrade(cluster: dict[str, Any], api: ApiClient, runtime: Any) -> Iterator[dict[str, Any]]:
    """With its node pools, held at node pool general's new nodes (the control plane done)."""
    yield from _held_upgrade(api, runtime, replica=None, node_pools=True)


def _replica(page: Any, index: int) -> Any:
    return page.locator(f"#replicas tr[data-replica='{index}']")


def _cell(row: Any, column: str) -> str:
    """The text of `row`'s cell under the column headed `column`."""
    headers = [h.strip() for h in row.locator("xpath=ancestor::table//thead//th").all_text_contents()]
    return (row.locator("th, td").nth(headers.index(column)).text_content() or "").strip()


def test_the_version_shows_the_target_next_to_the_current_one_while_reconciling(page, upgrade) -> None:
    open_cluster(page, CLUSTER, upgrade["operation"]["id"])
    page.locator("#summary .badge", has_text="RECONCILING").wait_for(timeout=WAIT * 1000)
    arrow = f"{upgrade['from']} → {upgrade['to']}"
    page.locator("#summary dd", has_text=arrow).wait_for(timeout=WAIT * 1000)
    assert fact(page, "Version") == arrow
    assert fact(page, "Target version") == upgrade["to"]
    assert serious_violations(page) == []


def test_replicas_show_their_versions_and_the_one_being_replaced(page, upgrade, api) -> None:
    """Replica 0 runs the new version (its new instance said so), replica 1 is being replaced (its
    old instance's report still reads ok: not `healthy`), replica 2 waits its turn."""
    open_cluster(page, CLUSTER, upgrade["operation"]["id"])
    page.locator("#replicas tr[data-replica='1'][data-health='being replaced']").wait_for(timeout=WAIT * 1000)
    view = {r["index"]: r for r in api.get_cluster(CLUSTER)["status"]["controlPlane"]["replicas"]}
    assert view[0]["version"] == upgrade["to"] and not view[0]["updatePending"]
    assert view[1]["updatePending"] and view[2]["updatePending"]
    arrow = f"{upgrade['from']} → {upgrade['to']}"
    expected = {
        0: ("healthy", upgrade["to"]),
        1: ("being replaced", arrow),
        2: ("waiting to be replaced", arrow),
    }
    for index, (health, version) in expected.items():
        row = _replica(page, index)
        assert (_cell(row, "Health"), _cell(row, "Version")) == (health, version), index
    # The instance a replica being replaced still shows is its old one, named as such by its health.
    assert _replica(page, 1).locator("td a.console-link").first.get_attribute("data-aws-id") == view[1]["instanceId"]
    screenshot(page, "upgrade-replica-being-replaced")
    assert serious_violations(page) == []


def test_finished_iterations_are_final_while_the_operation_runs(page, upgrade, api) -> None:
    open_cluster(page, CLUSTER, upgrade["operation"]["id"])
    rows = "#operation table.iterations[data-map='RollReplicas'] tbody tr"
    page.locator(f"{rows}[data-iteration='0'][data-state='finished']").wait_for(timeout=WAIT * 1000)
    page.locator(f"{rows}[data-iteration='1'][data-state='waiting']").wait_for(timeout=WAIT * 1000)
    states = page.eval_on_selector_all(rows, "(trs) => trs.map((tr) => [tr.dataset.iteration, tr.dataset.state])")
    # Replica 2 waits its turn: listed from the start, from the Map's item count.
    assert states == [["0", "finished"], ["1", "waiting"], ["2", "not started"]], states
    assert api.operation(upgrade["operation"]["id"])["status"] == "RUNNING", "the operation still runs"
    assert page.locator("#operation .operation-head .badge").text_content() == "RUNNING"


def test_the_fleet_shows_each_clusters_operation_with_its_progress(page, upgrade) -> None:
    open_fleet(page)
    row = page.locator(f"tr[data-cluster='{CLUSTER}']")
    operation = upgrade["operation"]["id"]
    progress = row.locator(f".op-progress[data-operation='{operation}']")
    # The Map's count, and the step running now (the gate of the replica held back).
    line = progress.locator(".progress-line", has_text="RollReplicas 1/3 · CheckReplicaHealth (replica 1)")
    line.wait_for(timeout=WAIT * 1000)
    assert progress.get_by_role("link").text_content() == f"UpdateCluster {operation}"
    bar = progress.locator("progress")
    assert (bar.get_attribute("value"), bar.get_attribute("max")) == ("1", "3")
    assert row.locator("td.version").text_content() == f"{upgrade['from']} → {upgrade['to']}"
    assert row.locator(".badge").first.text_content() == "RECONCILING"
    replicas = [" ".join(li.split()) for li in row.locator("td").nth(3).locator("li").all_text_contents()]
    assert [r.split(": ")[1] for r in replicas] == ["healthy", "being replaced", "waiting to be replaced"], replicas
    screenshot(page, "fleet-upgrade-in-progress")
    assert serious_violations(page) == []


def test_node_pools_show_the_version_they_roll_to(page, pool_upgrade) -> None:
    """Once the control plane is through, each node pool rolls to the new version in turn: the
    pool being rolled (its new nodes held) shows where it goes; a pool done shows the new one."""
    upgrade = pool_upgrade
    open_cluster(page, CLUSTER, upgrade["operation"]["id"])
    general = page.locator("#nodepools tr[data-nodepool='general']")
    arrow = f"{upgrade['pools']['general']} → {upgrade['to']}"
    general.locator("td.version", has_text=arrow).wait_for(timeout=ROLL_WAIT * 1000)
    assert general.locator(".badge").text_content() == "RECONCILING"
    batch = page.locator("#nodepools tr[data-nodepool='batch'] td.version").text_content()
    assert re.fullmatch(r"\d+\.\d+\.\d+( → \d+\.\d+\.\d+)?", batch), batch
    # The fleet says it too, pool by pool.
    screenshot(page, "upgrade-node-pools")
    open_fleet(page)
    pools = page.locator(f"tr[data-cluster='{CLUSTER}'] td").nth(4)
    pools.locator("li", has_text="general: ").filter(has_text=arrow).wait_for(timeout=WAIT * 1000)
    assert serious_violations(page) == []


# ---------------------------------------------------------------- the timeline


@pytest.fixture(scope="module")
def created(api: ApiClient, runtime: Any) -> Iterator[dict[str, Any]]:
    """A cluster of its own for the timeline: its create, whose replicas are made in parallel."""
    runtime.simulator.paused = False
    try:
        operation = api.create_cluster(ha_request(TIMELINE_CLUSTER))
        assert api.wait_operation(operation["id"], timeout=WAIT, poll=0.5)["status"] == "SUCCEEDED"
        yield operation
    finally:
        delete_cluster(api, TIMELINE_CLUSTER)


BARS = """() => [...document.querySelectorAll('.gantt .gantt-bar')].map((bar) => {
  const box = bar.getBoundingClientRect();
  return { step: bar.dataset.step, lane: bar.dataset.lane, start: Number(bar.dataset.start),
    end: Number(bar.dataset.end), critical: bar.dataset.critical === 'true',
    container: bar.classList.contains('container'), left: box.left, right: box.right, top: box.top };
})"""


def test_the_timeline_has_a_time_axis_parallel_lanes_and_the_critical_path(page, created, api) -> None:
    open_cluster(page, TIMELINE_CLUSTER, created["id"])
    page.locator("#operation .operation-head .badge", has_text="SUCCEEDED").wait_for(timeout=WAIT * 1000)
    page.locator(".gantt .gantt-bar[data-step='MarkRunning']").wait_for(timeout=WAIT * 1000)

    # A time axis: ticks at increasing times, left to right.
    ticks = page.eval_on_selector_all(
        ".gantt .tick", "(ts) => ts.map((t) => [Number(t.dataset.seconds), t.getBoundingClientRect().left])"
    )
    assert len(ticks) >= 3 and ticks == sorted(ticks), ticks
    bars = page.evaluate(BARS)
    # Every bar sits on that axis: later starts lie further right.
    by_start = sorted(bars, key=lambda b: b["start"])
    lefts = [b["left"] for b in by_start]
    assert all(later >= earlier - 1 for earlier, later in zip(lefts, lefts[1:], strict=False)), by_start

    # Parallel steps side by side: the three replicas are made at once, each in a lane of its own.
    lanes = {b["lane"] for b in bars if b["lane"].startswith("CreateReplicas #")}
    assert lanes == {"CreateReplicas #0", "CreateReplicas #1", "CreateReplicas #2"}
    spans = {
        lane: (min(b["left"] for b in bars if b["lane"] == lane), max(b["right"] for b in bars if b["lane"] == lane))
        for lane in lanes
    }
    assert max(s[0] for s in spans.values()) < min(s[1] for s in spans.values()), f"the lanes overlap in time: {spans}"
    assert len({b["top"] for b in bars if b["lane"] in lanes}) == 3, "one row per lane"

    # The critical path: a chain (each step starts after the one before it ends) to the last step,
    # through the slowest iteration of each Map it crosses (a Map ends when its last iteration
    # does). The replicas' chain and the node pools' run side by side: the path takes the slower.
    path = sorted((b for b in bars if b["critical"]), key=lambda b: b["start"])
    assert path and not any(b["container"] for b in path)
    assert path[-1]["end"] == max(b["end"] for b in bars if not b["container"])
    assert all(b["start"] >= a["end"] - 0.002 for a, b in zip(path, path[1:], strict=False)), path
    steps = api.request("GET", f"operations/{created['id']}/steps", query={"after": 1_000_000})
    critical_lanes = {b["lane"] for b in path if " #" in b["lane"]}
    maps = {lane.split(" #")[0] for lane in critical_lanes}
    assert maps & {"CreateReplicas", "WaitForControlPlane", "CreateNodePools"}, critical_lanes
    for name in maps:
        [lane] = [lane for lane in critical_lanes if lane.split(" #")[0] == name]
        iterations = [it for it in steps["iterations"] if it["map"] == name]
        slowest = max(it["endedSeconds"] for it in iterations)
        chosen = next(it for it in iterations if f"{name} #{it['iteration']}" == lane)
        assert chosen["endedSeconds"] >= slowest - 0.005, (lane, iterations)
    caption = page.locator(".gantt figcaption").text_content()
    assert f"the critical path (what set the end time): {len(path)} steps" in caption
    screenshot(page, "timeline-create")
    assert serious_violations(page) == []


# ---------------------------------------------------------------- ages, console links, endpoint

AGE = re.compile(r"^(just now|(\d+ (s|min|h \d+ min|d \d+ h)) ago|in \d+ (s|min|h \d+ min|d \d+ h))$")
TIMES = """(root) => [...document.querySelectorAll(root + ' time')].map((t) => ({
  datetime: t.getAttribute('datetime'), title: t.getAttribute('title'), text: t.textContent,
  iso: new Date(t.getAttribute('datetime')).toISOString() }))"""
# Where each character of an element's text lies: the line breaks, by the character before each.
BREAKS = """(element) => {
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  const chars = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (let i = 0; i < node.data.length; i += 1) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      chars.push([node.data[i], Math.round(range.getBoundingClientRect().top)]);
    }
  }
  const breaks = [];
  for (let i = 1; i < chars.length; i += 1) if (chars[i][1] > chars[i - 1][1] + 2) breaks.push(chars[i - 1][0]);
  return { text: chars.map((c) => c[0]).join(''), breaks };
}"""


def _console(region: str, path: str) -> str:
    return f"https://{region}.console.aws.amazon.com/{path}"


def test_ages_with_absolute_times_console_links_and_an_endpoint_unbroken(page, cluster, api, runtime) -> None:
    view = api.get_cluster(CLUSTER)
    status = view["status"]
    operations = api.list_operations(CLUSTER)
    open_cluster(page, CLUSTER, operations[-1]["id"])
    page.locator("#events tbody tr").first.wait_for(timeout=WAIT * 1000)
    for where in ("#operation .operation-head", "#replicas", "#nodepools", "#resources", "#summary"):
        page.locator(f"{where} a.console-link").first.wait_for(timeout=WAIT * 1000)

    # Ages, with the absolute time on hover.
    times = page.evaluate(TIMES, "main")
    assert len(times) >= 5, times
    for time_ in times:
        assert AGE.match(time_["text"]), time_
        assert time_["iso"] in time_["title"], time_

    # Every AWS id links to its console page, in the target's region (an ARN's own).
    region = runtime.region
    ec2 = f"ec2/home?region={region}#"
    replica = status["controlPlane"]["replicas"][0]
    pool = status["nodePools"][0]["status"]
    expected = {
        replica["instanceId"]: _console(region, f"{ec2}InstanceDetails:instanceId={replica['instanceId']}"),
        replica["etcdVolumeId"]: _console(region, f"{ec2}VolumeDetails:volumeId={replica['etcdVolumeId']}"),
        replica["autoScalingGroup"]: _console(
            region, f"{ec2}AutoScalingGroupDetails:id={replica['autoScalingGroup']};view=details"
        ),
        replica["launchTemplateId"]: _console(
            region, f"{ec2}LaunchTemplateDetails:launchTemplateId={replica['launchTemplateId']}"
        ),
        replica["subnetId"]: _console(
            region, f"vpcconsole/home?region={region}#SubnetDetails:subnetId={replica['subnetId']}"
        ),
        pool["autoScalingGroup"]: _console(
            region, f"{ec2}AutoScalingGroupDetails:id={pool['autoScalingGroup']};view=details"
        ),
        status["vpcId"]: _console(region, f"vpcconsole/home?region={region}#VpcDetails:VpcId={status['vpcId']}"),
        status["resources"]["sg-controlplane"]: _console(
            region, f"{ec2}SecurityGroup:groupId={status['resources']['sg-controlplane']}"
        ),
        status["resources"]["nlb"]: _console(region, f"{ec2}LoadBalancer:loadBalancerArn={status['resources']['nlb']}"),
        status["resources"]["target-group"]: _console(
            region, f"{ec2}TargetGroup:targetGroupArn={status['resources']['target-group']}"
        ),
        operations[-1]["executionArn"]: _console(
            region, f"states/home?region={region}#/v2/executions/details/{operations[-1]['executionArn']}"
        ),
    }
    links = dict(
        page.eval_on_selector_all(
            "main a.console-link", "(links) => links.map((a) => [a.dataset.awsId, a.getAttribute('href')])"
        )
    )
    for aws_id, url in expected.items():
        assert links.get(aws_id) == url, aws_id
    # ...every one of them: an id shown without a link is one the console has no page for.
    unlinked = page.eval_on_selector_all(
        "main code.aws-id", "(codes) => codes.filter((c) => !c.closest('a')).map((c) => c.textContent)"
    )
    assert all(":instance-profile/" in text for text in unlinked), unlinked
    for a in page.locator("main a.console-link").all()[:3]:
        assert a.get_attribute("target") == "_blank" and "noopener" in a.get_attribute("rel")

    # The endpoint wraps only after a dot, never inside a label: on a narrow screen, in the fleet
    # and in the summary.
    page.set_viewport_size({"width": 480, "height": 900})
    # An AWS id never wraps inside itself, an ARN only after a `:` or `/`; wide tables scroll in
    # their box, the page stays as wide as the screen.
    instance = page.locator(f"#replicas a.console-link[data-aws-id='{replica['instanceId']}'] code")
    assert instance.evaluate(BREAKS) == {"text": replica["instanceId"], "breaks": []}
    listener = status["resources"]["listener"]
    layout = page.locator(f"#resources a.console-link[data-aws-id='{listener}'] code").evaluate(BREAKS)
    assert layout["text"] == listener and set(layout["breaks"]) <= {":", "/"}, layout
    assert page.evaluate("document.documentElement.scrollWidth") <= 480
    summary_endpoint = page.locator("#summary code.endpoint")
    layout = summary_endpoint.evaluate(BREAKS)
    assert layout["text"] == status["endpoint"]
    assert layout["breaks"] and set(layout["breaks"]) == {"."}, layout
    open_fleet(page)
    endpoint = page.locator(f"tr[data-cluster='{CLUSTER}'] td").nth(2)
    endpoint.locator("code").wait_for(timeout=WAIT * 1000)
    layout = endpoint.evaluate(BREAKS)
    assert layout["text"] == status["endpoint"]
    assert layout["breaks"] and set(layout["breaks"]) == {"."}, layout
    screenshot(page, "fleet-narrow-endpoint")
    assert serious_violations(page) == []
