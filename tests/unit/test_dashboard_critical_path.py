"""The dashboard timeline's critical path (static/app.js `criticalPath`), run by Node.js on bars
shaped as the timeline builds them: a Parallel whose two branches each hold a Map must not put a
step of the other branch's Map, still running, on the path (the path then crossed that Map
through an iteration that was not its slowest)."""

from __future__ import annotations

import json

from tests.dashboard_script import app_source, run_printing_json


def _critical(bars: list[dict]) -> list[str]:
    script = app_source("function criticalPath(bars)")
    script += f"const bars = {json.dumps(bars)};\nconst path = criticalPath(bars);\n"
    script += "console.log(JSON.stringify(bars.filter((b) => path.has(b)).map((b) => b.name)));"
    return run_printing_json(script)


def _bar(name: str, start: float, end: float, map_name: str | None = None, iteration: int | None = None) -> dict:
    bar = {"name": name, "start": start, "end": end, "container": False}
    if map_name is not None:
        bar |= {"map": map_name, "iteration": iteration, "runStart": start if name.endswith("first") else None}
    return bar


def _validate_then_pools() -> list[dict]:
    """A first step, then the node pools' Map: two iterations, the slower (#1) ending at 4.2."""
    return [
        _bar("Validate", 0.0, 0.5),
        _bar("pool0 first", 0.5, 1.0, "CreateNodePools", 0),
        _bar("pool0 last", 1.0, 2.9, "CreateNodePools", 0),
        _bar("pool1 first", 0.5, 1.1, "CreateNodePools", 1),
        _bar("pool1 last", 1.1, 4.2, "CreateNodePools", 1),
    ]


def test_a_step_after_a_parallel_waits_for_its_own_branch_not_the_other_maps_middle() -> None:
    bars = [
        *_validate_then_pools(),  # Branch 1: the node pools' Map
        # Branch 2: the control plane's gate, a Map whose iteration starts while pools still run.
        _bar("gate first", 3.0, 4.0, "WaitForControlPlane", 0),
        _bar("gate last", 4.0, 5.0, "WaitForControlPlane", 0),
        _bar("MarkRunning", 5.0, 5.2),
    ]
    path = _critical(bars)
    assert path == ["Validate", "gate first", "gate last", "MarkRunning"], path


def test_a_step_after_a_map_waits_for_its_slowest_iteration() -> None:
    bars = [
        *_validate_then_pools(),
        _bar("gate first", 4.3, 4.6, "WaitForControlPlane", 0),
        _bar("MarkRunning", 4.6, 5.0),
    ]
    assert _critical(bars) == ["Validate", "pool1 first", "pool1 last", "gate first", "MarkRunning"]
