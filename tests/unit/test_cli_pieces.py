"""The CLI's building blocks: the YAML 1.2 loader and its limits, the field diff, durations,
relative times, the progress summary of an execution history."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import click
import pytest
import yaml

from kubestep import diff
from kubestep.api.client import ApiError
from kubestep.cli import safe_yaml
from kubestep.cli.manifests import MAX_REQUEST_BYTES
from kubestep.cli.options import DURATION, Duration
from kubestep.cli.output import age
from kubestep.durations import parse_duration
from kubestep.execution_history import summarize


def load(text: str) -> list:
    return [data for _, data in safe_yaml.load_all(text)]


def test_yaml_1_2_core_schema() -> None:
    [doc] = load(
        "a: 13:30\nb: yes\nc: off\nd: 1.30\ne: 010\nf: 0o10\ng: 2024-01-01\nh: ~\ni: true\nj: 0x1F\nk: -5\nl: .inf"
    )
    assert doc == {
        "a": "13:30",  # YAML 1.1: 810
        "b": "yes",  # YAML 1.1: True
        "c": "off",  # YAML 1.1: False
        "d": 1.3,  # a number in both: the manifest reader hints at quoting it
        "e": 10,  # YAML 1.1: 8
        "f": 8,
        "g": "2024-01-01",  # YAML 1.1: a date
        "h": None,
        "i": True,
        "j": 31,
        "k": -5,
        "l": float("inf"),
    }
    assert yaml.safe_load("a: 13:30") == {"a": 810}  # what PyYAML's YAML 1.1 loader does


def test_merge_keys_may_override_but_keys_may_not_repeat() -> None:
    assert load("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  x: 3\n")[0]["c"] == {"x": 3, "y": 2}
    with pytest.raises(safe_yaml.DuplicateKey, match="'x' appears twice"):
        load("c:\n  x: 1\n  x: 2\n")


def test_an_alias_bomb_is_measured_not_expanded() -> None:
    levels = ["a0: &a0 [" + ",".join(['"lol"'] * 9) + "]"]
    levels += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    bomb = "\n".join(levels)
    assert len(bomb) < 500
    with pytest.raises(safe_yaml.LimitExceeded, match="through YAML aliases"):
        load(bomb)
    # A few aliases that stay small are fine.
    assert load("a: &a [1, 2]\nb: [*a, *a]\n") == [{"a": [1, 2], "b": [[1, 2], [1, 2]]}]


def test_depth_counts_through_aliases() -> None:
    chain = ["l0: &l0 [x]"] + [f"l{i}: &l{i} [[[*l{i - 1}]]]" for i in range(1, 12)]
    with pytest.raises(safe_yaml.LimitExceeded, match="nested deeper than 32 levels"):
        load("\n".join(chain))


def test_field_diff() -> None:
    old = {"a": 1, "b": {"c": "x", "d": [1, 2]}, "e": True, "gone": 1}
    new = {"a": 1, "b": {"c": "y", "d": [1, 2, 3]}, "e": 1, "added": {"k": "v"}}
    found = diff.changes(old, new, "spec")
    assert [c.line() for c in found] == [
        '+ spec.added: {"k": "v"}',
        '~ spec.b.c: "x" -> "y"',
        "~ spec.b.d: [1, 2] -> [1, 2, 3]",
        "~ spec.e: true -> 1",
        "- spec.gone: 1",
    ]
    assert diff.changes({"l": [{"k": 1}]}, {"l": [{"k": 2}]}) == [diff.Change("l[0].k", 1, 2)]
    assert diff.changes(old, old) == []


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("90s", 90),
        ("10m", 600),
        ("1h30m", 5400),
        ("2", 2),
        ("1.5h", 5400),
        ("250ms", 0.25),
        # Go's time.ParseDuration forms, which kubectl's flags take.
        ("1h30m45s", 5445),
        (".5h", 1800),
        ("2h45m", 9900),
        ("1m0.5s", 60.5),
        ("1500us", 0.0015),
        ("1500µs", 0.0015),
        ("2d", 172800),
        ("1D2H", 93600),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert DURATION.convert(text, None, None) == pytest.approx(seconds)
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["10x", "m", "-5s", "+5s", "0s", "1h-2m", "", "1h 30m", "h1", "1.2.3s", "0"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(click.BadParameter):
        DURATION.convert(text, None, None)


def test_a_duration_that_may_be_zero() -> None:
    assert Duration(minimum=0).convert("0s", None, None) == 0
    assert Duration(minimum=0).convert("0", None, None) == 0
    with pytest.raises(click.BadParameter, match="has a sign"):
        Duration(minimum=0).convert("-1s", None, None)


def test_relative_times_like_kubectl() -> None:
    now = datetime(2026, 1, 10, tzinfo=UTC)
    stamp = lambda delta: (now - delta).isoformat().replace("+00:00", "Z")  # noqa: E731
    assert age(stamp(timedelta(seconds=45)), now) == "45s"
    assert age(stamp(timedelta(minutes=12, seconds=5)), now) == "12m"
    assert age(stamp(timedelta(hours=5)), now) == "5h"
    assert age(stamp(timedelta(days=3, hours=2)), now) == "3d"
    assert age(stamp(timedelta(days=800)), now) == "2y"
    assert age(None, now) == "-"


def test_progress_summary_of_a_history() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    pending = {"error": "ResourcePending", "cause": '{"errorMessage": "NLB provisioning"}'}

    def event(i: int, previous: int, kind: str, second: float, **details: object) -> dict:
        return {
            "id": i,
            "previousEventId": previous,
            "type": kind,
            "timestamp": t0 + timedelta(seconds=second),
            **details,
        }

    def entered(name: str, **state: object) -> dict:
        return {"stateEnteredEventDetails": {"name": name, "input": json.dumps(state)}}

    def exited(name: str) -> dict:
        return {"stateExitedEventDetails": {"name": name}}

    events = [
        event(1, 0, "ExecutionStarted", 0),
        event(2, 1, "TaskStateEntered", 1, **entered("EnsureLoadBalancer")),
        event(3, 2, "TaskStateExited", 3, **exited("EnsureLoadBalancer")),
        # Two Map iterations in parallel: each exit pairs with its own entry (previousEventId).
        event(4, 3, "TaskStateEntered", 3, **entered("EnsureEtcdVolume", clusterName="prod", replica=0)),
        event(5, 3, "TaskStateEntered", 3.5, **entered("EnsureEtcdVolume", clusterName="prod", replica=1)),
        event(6, 5, "TaskStateExited", 4, **exited("EnsureEtcdVolume")),
        event(7, 4, "TaskStateExited", 5, **exited("EnsureEtcdVolume")),
        event(8, 7, "TaskStateEntered", 5, **entered("WaitForLoadBalancer")),
        event(9, 8, "LambdaFunctionFailed", 6, lambdaFunctionFailedEventDetails=pending),
        event(10, 9, "LambdaFunctionFailed", 7, lambdaFunctionFailedEventDetails=pending),
        event(11, 10, "TaskFailed", 8, taskFailedEventDetails={"error": "ResourceTimeout", "cause": "late"}),
        event(12, 11, "ExecutionFailed", 9, executionFailedEventDetails={"error": "ResourceTimeout"}),
    ]
    items = summarize(events)
    assert [(i["type"], i["step"], i["message"], i["elapsedSeconds"]) for i in items] == [
        ("done", "EnsureLoadBalancer", "EnsureLoadBalancer (2.0s)", 3.0),
        ("done", "EnsureEtcdVolume", "EnsureEtcdVolume (0.5s)", 4.0),
        ("done", "EnsureEtcdVolume", "EnsureEtcdVolume (2.0s)", 5.0),
        ("wait", "WaitForLoadBalancer", "NLB provisioning", 6.0),  # once, not at every retry
        ("error", "WaitForLoadBalancer", "ResourceTimeout: late", 8.0),
        ("error", None, "ResourceTimeout", 9.0),
    ]
    assert summarize(events[:6]) == items[:2]  # the summary only grows with the history


def test_progress_items_name_their_map_iteration() -> None:
    """A roll's items say which replica (or node pool, or batch) each step belongs to, from the
    MapIteration* events (inline Map: its iterations' events chain to MapIterationStarted)."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def event(i: int, previous: int, kind: str, **details: object) -> dict:
        return {"id": i, "previousEventId": previous, "type": kind, "timestamp": t0 + timedelta(seconds=i), **details}

    def entered(name: str, payload: dict) -> dict:
        return {"stateEnteredEventDetails": {"name": name, "input": json.dumps(payload)}}

    def exited(name: str) -> dict:
        return {"stateExitedEventDetails": {"name": name}}

    def iteration(index: int) -> dict:
        return {"mapIterationStartedEventDetails": {"name": "RollReplicas", "index": index}}

    pending = {"error": "ResourcePending", "cause": '{"errorMessage": "replica 2 has not reported"}'}
    events = [
        event(1, 0, "ExecutionStarted"),
        event(2, 1, "MapStateEntered", **entered("RollReplicas", {"clusterName": "prod"})),
        event(3, 2, "MapStateStarted"),
        event(4, 3, "MapIterationStarted", **iteration(0)),
        event(5, 4, "TaskStateEntered", **entered("ReplaceReplica", {"clusterName": "prod", "replica": 2})),
        event(6, 5, "TaskStateExited", **exited("ReplaceReplica")),
        event(7, 6, "TaskStateEntered", **entered("GateReplica", {"clusterName": "prod", "replica": 2})),
        event(8, 7, "LambdaFunctionFailed", lambdaFunctionFailedEventDetails=pending),
        event(9, 8, "TaskStateExited", **exited("GateReplica")),
        event(10, 9, "MapIterationSucceeded"),
        event(11, 3, "MapIterationStarted", **iteration(1)),
        event(12, 11, "TaskStateEntered", **entered("ReplaceReplica", {"clusterName": "prod", "replica": 0})),
        event(13, 12, "TaskFailed", taskFailedEventDetails={"error": "GateFailed", "cause": "etcd unhealthy"}),
        event(14, 13, "MapIterationFailed"),
        event(15, 14, "MapStateFailed"),
        event(16, 15, "MapStateExited", **exited("RollReplicas")),
    ]
    items = summarize(events)
    assert [(i["type"], i["step"], i["map"], i["iteration"], i["item"]) for i in items] == [
        ("done", "ReplaceReplica", "RollReplicas", 0, "replica 2"),
        ("wait", "GateReplica", "RollReplicas", 0, "replica 2"),
        ("done", "GateReplica", "RollReplicas", 0, "replica 2"),
        ("error", "ReplaceReplica", "RollReplicas", 1, "replica 0"),
        ("done", "RollReplicas", None, None, None),  # the Map itself, outside its iterations
    ]
    # The line the CLI prints while waiting names the item too.
    assert items[0]["message"] == "ReplaceReplica [replica 2] (1.0s)"


def test_iterations_one_after_another_do_not_nest_and_the_map_ends_outside_them() -> None:
    """Sequential iterations as moto records them: the next MapIterationStarted, the Map's end
    and its exit name the previous iteration's last event as `previousEventId`. The step after
    the Map belongs to no iteration."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def event(i: int, previous: int, kind: str, **details: object) -> dict:
        return {"id": i, "previousEventId": previous, "type": kind, "timestamp": t0 + timedelta(seconds=i), **details}

    def entered(name: str, payload: dict) -> dict:
        return {"stateEnteredEventDetails": {"name": name, "input": json.dumps(payload)}}

    def exited(name: str) -> dict:
        return {"stateExitedEventDetails": {"name": name}}

    def started(index: int) -> dict:
        return {"mapIterationStartedEventDetails": {"name": "RollReplicas", "index": index}}

    def succeeded(index: int) -> dict:
        return {"mapIterationSucceededEventDetails": {"name": "RollReplicas", "index": index}}

    events = [
        event(1, 0, "ExecutionStarted"),
        event(2, 1, "MapStateEntered", **entered("RollReplicas", {"clusterName": "prod"})),
        event(3, 2, "MapStateStarted"),
        event(4, 3, "MapIterationStarted", **started(0)),
        event(5, 4, "TaskStateEntered", **entered("ReplaceReplica", {"clusterName": "prod", "replica": 0})),
        event(6, 5, "TaskStateExited", **exited("ReplaceReplica")),
        event(7, 6, "MapIterationSucceeded", **succeeded(0)),
        event(8, 6, "MapIterationStarted", **started(1)),
        event(9, 8, "TaskStateEntered", **entered("ReplaceReplica", {"clusterName": "prod", "replica": 1})),
        event(10, 9, "TaskStateExited", **exited("ReplaceReplica")),
        event(11, 10, "MapIterationSucceeded", **succeeded(1)),
        event(12, 11, "MapStateSucceeded"),
        event(13, 11, "MapStateExited", **exited("RollReplicas")),
        event(14, 13, "TaskStateEntered", **entered("MarkRunning", {"clusterName": "prod"})),
        event(15, 14, "TaskStateExited", **exited("MarkRunning")),
    ]
    assert [(i["message"], i["iteration"]) for i in summarize(events)] == [
        ("ReplaceReplica [replica 0] (1.0s)", 0),
        ("ReplaceReplica [replica 1] (1.0s)", 1),
        ("RollReplicas (11.0s)", None),
        ("MarkRunning (1.0s)", None),
    ]


def test_manifest_limit_is_the_api_body_limit() -> None:
    from kubestep.api.app import MAX_BODY_BYTES

    assert MAX_REQUEST_BYTES == safe_yaml.MAX_DOCUMENT_BYTES == MAX_BODY_BYTES


def test_api_errors_say_their_details_once() -> None:
    error = ApiError(
        400,
        "InvalidSpec",
        "cluster.spec.controlPlane.version: bad; nodePools[0].spec: min > max",
        [
            {"field": "cluster.spec.controlPlane.version", "rule": "bad"},
            {"field": "nodePools[0].spec", "rule": "min > max"},
        ],
    )
    assert error.one_line() == (
        "cluster.spec.controlPlane.version: bad; nodePools[0].spec: min > max (InvalidSpec, HTTP 400)"
    )
    terse = ApiError(400, "InvalidRequest", "the request is invalid", [{"field": "limit", "rule": "must be <= 100"}])
    assert terse.one_line() == "the request is invalid: limit: must be <= 100 (InvalidRequest, HTTP 400)"


def test_local_up_names_the_operations_a_crash_lost(capsys: pytest.CaptureFixture[str]) -> None:
    from kubestep.cli.local import _print_restore

    lost = [{"name": "create-k3x9-1", "stateMachine": "svc-CreateCluster", "cluster": "prod", "startedAt": "T"}]
    _print_restore({"restored": False, "nothingSaved": True, "lostOperations": lost})
    err = capsys.readouterr().err
    assert err == (
        "warning: the previous local runtime stopped without saving after these operations started; what they did "
        "is lost: create-k3x9-1 (svc-CreateCluster of cluster prod, started T)\n"
    )
    _print_restore({"restored": True, "savedAt": "S", "clusters": ["a"], "abortedExecutions": [], "lostOperations": []})
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.startswith("Restored:")


def test_describe_says_which_replica_cannot_read_the_administrators() -> None:
    from kubestep.cli.commands.describe import _access_pairs

    arn = "arn:aws:iam::123456789012:user/alice"
    replicas = [
        {"index": 0, "adminsGeneration": 2},
        {"index": 1, "adminsGeneration": 1, "adminsError": "the item does not exist"},
    ]
    status = {
        "admins": {"identityARNs": [arn], "creator": arn, "generation": 2, "appliedBy": 1},
        "controlPlane": {"replicas": replicas},
    }
    mapping = dict(_access_pairs(status))["Admin mapping"]
    assert mapping == "generation 2, served by 1/2 replicas; replica 1: the item does not exist"
    replicas[1] = {"index": 1, "adminsGeneration": 2}
    assert dict(_access_pairs(status))["Admin mapping"] == "generation 2, served by 1/2 replicas"


@pytest.mark.parametrize(
    ("args", "rule"),
    [
        (["demo", "--time-scale", "-1"], "'--time-scale': -1.0 is not in the range x>0"),
        (["demo", "--time-scale", "0"], "'--time-scale': 0.0 is not in the range x>0"),
        (["bench", "--time-scale", "0"], "'--time-scale': 0.0 is not in the range x>0"),
        (["bench", "--concurrent-time-scale", "0"], "'--concurrent-time-scale': 0.0 is not in the range x>0"),
        (["local", "up", "--time-scale", "-0.5"], "'--time-scale': -0.5 is not in the range x>=0"),
    ],
)
def test_a_time_scale_out_of_range_is_refused_before_anything_starts(args: list[str], rule: str) -> None:
    """The demo and the bench divide by it (modelled time, "N x faster"); no command takes one
    below 0. Refused by the option itself: a usage error naming it, before any runtime starts."""
    from click.testing import CliRunner

    from kubestep.cli.main import main

    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert rule in result.output


def _commands(group: click.Command, path: str = "kubestep"):
    yield path, group
    if isinstance(group, click.Group):  # click's Group API: `kubestep`'s commands load lazily
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            yield from _commands(group.get_command(ctx, name), f"{path} {name}")


def test_each_output_option_describes_only_the_formats_it_accepts() -> None:
    """`kubestep sweep -o` accepts text, json and yaml; its help once offered `name` too."""
    from kubestep.cli.main import main as cli
    from kubestep.cli.options import FORMAT_USES

    checked = 0
    for path, command in _commands(cli):
        for param in command.params:
            if param.name != "fmt" or not isinstance(param.type, click.Choice):
                continue
            accepted = {str(c) for c in param.type.choices}
            described = set(FORMAT_USES) & set(re.findall(r"[a-z]+", param.help or ""))
            assert described <= accepted, (path, param.help, accepted)
            checked += 1
    assert checked > 10
