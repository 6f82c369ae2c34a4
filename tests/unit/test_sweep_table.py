"""`kubestep sweep`'s table says exactly what the sweep did with each orphaned uid: what a delete
kept (retained etcd volumes, never swept), what it deleted and what it left with the reason."""

from __future__ import annotations

from rich.console import Console

from kubestep.cli.reliability import orphan_table


def _render(result: dict) -> str:
    console = Console(width=400, record=True)
    console.print(orphan_table(result))
    return console.export_text()


def _orphan(uid: str, **overrides: object) -> dict:
    return {
        "uid": uid,
        "clusterName": "e4",
        "resources": {"securityGroups": ["sg-1"]},
        "retained": {},
        "count": 1,
        "ageSeconds": 7200,
        "old": True,
        **overrides,
    }


def test_retained_volumes_are_shown_and_never_counted_as_deleted() -> None:
    result = {
        "dryRun": False,
        "orphans": [_orphan("abc12345", retained={"volumes": ["vol-1", "vol-2", "vol-3"]})],
        "deleted": ["abc12345"],
        "deletedResources": {"abc12345": {"securityGroups": ["sg-1"]}},
        "left": {},
    }
    (row,) = [line for line in _render(result).splitlines() if "abc12345" in line]
    assert "3 volumes" in row and "deleted 1 securityGroups" in row and "vol" not in row.split("deleted")[1]


def test_what_a_sweep_left_is_shown_with_its_reason() -> None:
    left = {"resources": {"securityGroups": ["sg-2"]}, "reason": "lacks identity tags"}
    result = {
        "dryRun": False,
        "orphans": [_orphan("def67890", resources={"securityGroups": ["sg-1", "sg-2"]}, count=2)],
        "deleted": [],
        "deletedResources": {"def67890": {"securityGroups": ["sg-1"]}},
        "left": {"def67890": left},
    }
    text = _render(result)
    assert "deleted 1 securityGroups; left 1 securityGroups: lacks identity tags" in text


def test_a_dry_run_says_what_it_would_delete_and_what_it_keeps_for_its_age() -> None:
    result = {"dryRun": True, "orphans": [_orphan("aaa11111"), _orphan("bbb22222", old=False, ageSeconds=60)]}
    lines = _render(result).splitlines()
    assert any("aaa11111" in line and "would delete (--yes)" in line for line in lines)
    assert any("bbb22222" in line and "kept (younger than the grace period)" in line for line in lines)
