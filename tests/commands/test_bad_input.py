"""Bad files and flags (issue 7, defects 3, 5 and 6): each ends with exit code 2 and exactly
one line on stderr, no traceback, nothing sent to the API and nothing created."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from kubestep.cli.safe_yaml import MAX_FILE_BYTES
from tests.commands.conftest import ROOT, Service

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

EXAMPLE = (ROOT / "examples" / "cluster-ha.yaml").read_text()
CLUSTER, GENERAL, BATCH = EXAMPLE.split("\n---\n")

# The 461-byte file of the report: nine levels of nine aliases (9^9 = 387 million strings once
# serialized). yaml.safe_load builds it in microseconds; json.dumps of it never finishes.
ALIAS_BOMB = "\n".join(
    [
        "apiVersion: kubestep.io/v1",
        "kind: AWSCluster",
        "metadata: {name: bomb}",
        'a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ]
    + [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    + ["spec: {controlPlane: {version: '1.35.4'}, x: *a8}"]
)


def edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


@dataclass
class Case:
    args: list[str]  # FILE in args is replaced by the file's path
    content: str | bytes | Callable[[Path], Path] | None = None
    expect: str = ""  # a piece of the error line
    stdin: str | None = None


def _directory(tmp: Path) -> Path:
    (tmp / "dir").mkdir()
    return tmp / "dir"


CASES: dict[str, Case] = {
    # ---- files that hold nothing, or are not text
    "empty file": Case(["apply", "-f", "FILE"], "", "no documents"),
    "comments only": Case(["apply", "-f", "FILE"], "# a cluster, some day\n# not yet\n", "no documents"),
    "separators only": Case(["apply", "-f", "FILE"], "---\n---\n...\n", "no documents"),
    "empty stdin": Case(["apply", "-f", "-"], None, "no documents", stdin=""),
    "missing file": Case(["apply", "-f", "/nonexistent/cluster.yaml"], None, "no such file"),
    "a directory without manifests": Case(["apply", "-f", "FILE"], _directory, "no manifest files (.yaml, .yml"),
    "binary file": Case(["apply", "-f", "FILE"], b"\x7fELF\x02\x01\x01\x00\x00\x00", "not a text file"),
    "not UTF-8": Case(["apply", "-f", "FILE"], "name: caf\xe9\n".encode("latin-1"), "not UTF-8"),
    "YAML syntax": Case(["apply", "-f", "FILE"], "kind: AWSCluster\nmetadata: name: prod\n", "line 2: not valid YAML"),
    "unknown YAML tag": Case(["apply", "-f", "FILE"], "kind: !shell AWSCluster\n", "not valid YAML"),
    "python object tag": Case(
        ["apply", "-f", "FILE"], "kind: !!python/object/apply:os.system ['true']\n", "not valid YAML"
    ),
    # ---- limits, before anything is expanded
    "alias bomb": Case(["apply", "-f", "FILE"], ALIAS_BOMB, "expands to more than 256 KiB"),
    "recursive alias": Case(["apply", "-f", "FILE"], "kind: AWSCluster\nspec: &s {x: *s}\n", "recursive alias"),
    "too many aliases": Case(
        ["apply", "-f", "FILE"], "a: &a x\nb: [" + ", ".join(["*a"] * 101) + "]\n", "more than 100 YAML aliases"
    ),
    "nested too deep": Case(["apply", "-f", "FILE"], "a: " + "[" * 40 + "]" * 40 + "\n", "nested deeper than 32"),
    "too many documents": Case(["apply", "-f", "FILE"], "---\n{}\n" * 101, "more than 100 documents"),
    "file too large": Case(["apply", "-f", "FILE"], "#" * (MAX_FILE_BYTES + 1), "more than a manifest file may hold"),
    "document too large": Case(
        ["apply", "-f", "FILE"],
        edit(CLUSTER, "env: prod", "env: " + "x" * (300 * 1024)),
        "expands to more than 256 KiB",
    ),
    # ---- duplicates
    "duplicate key": Case(
        ["apply", "-f", "FILE"],
        edit(CLUSTER, "instanceType: m5.large", "instanceType: m5.large\n    instanceType: c5.large"),
        "appears twice",
    ),
    "duplicate top-level key": Case(["apply", "-f", "FILE"], CLUSTER + "\nkind: AWSNodePool\n", "'kind' appears twice"),
    "duplicate JSON key": Case(
        ["apply", "-f", "FILE"],
        '{"apiVersion": "kubestep.io/v1", "kind": "AWSCluster", "kind": "AWSNodePool"}',
        "appears twice",
    ),
    "same cluster twice": Case(["apply", "-f", "FILE"], CLUSTER + "\n---\n" + CLUSTER, "AWSCluster prod appears twice"),
    "same node pool twice": Case(
        ["apply", "-f", "FILE"], "\n---\n".join([CLUSTER, GENERAL, GENERAL]), "AWSNodePool prod/general appears twice"
    ),
    # ---- documents that are not manifests
    "a list": Case(["apply", "-f", "FILE"], "- AWSCluster\n- prod\n", "must be a mapping"),
    # A list of objects (what `get -o yaml` prints for several) is its objects.
    "a list of objects": Case(["apply", "-f", "FILE"], "- kind: AWSCluster\n", "apiVersion: is required"),
    "a string": Case(["apply", "-f", "FILE"], "just some words\n", "must be a mapping"),
    "no kind": Case(["apply", "-f", "FILE"], edit(CLUSTER, "kind: AWSCluster", ""), "kind: is required"),
    "unknown kind": Case(["apply", "-f", "FILE"], edit(CLUSTER, "kind: AWSCluster", "kind: Pod"), "cannot be applied"),
    "management service": Case(
        ["apply", "-f", "FILE"], (ROOT / "examples" / "management-service.yaml").read_text(), "cdk deploy"
    ),
    "no apiVersion": Case(
        ["apply", "-f", "FILE"], edit(CLUSTER, "apiVersion: kubestep.io/v1", ""), "apiVersion: is required"
    ),
    "wrong apiVersion": Case(
        ["apply", "-f", "FILE"], edit(CLUSTER, "apiVersion: kubestep.io/v1", "apiVersion: v1"), "apiVersion"
    ),
    # ---- null and empty fields (tracebacks before)
    "null name": Case(["apply", "-f", "FILE"], edit(CLUSTER, "name: prod", "name:"), "metadata.name"),
    "empty name": Case(["apply", "-f", "FILE"], edit(CLUSTER, "name: prod", 'name: ""'), "metadata.name"),
    "null metadata": Case(
        ["apply", "-f", "FILE"], edit(CLUSTER, "metadata:\n  name: prod", "metadata:"), "it is empty"
    ),
    "null spec": Case(["apply", "-f", "FILE"], CLUSTER.split("spec:")[0] + "spec:\n", "spec"),
    "spec is a list": Case(["apply", "-f", "FILE"], CLUSTER.split("spec:")[0] + "spec: [1, 2]\n", "spec"),
    # ---- invalid documents: the whole file is refused, the valid first document too
    "second document invalid": Case(
        ["apply", "-f", "FILE"],
        "\n---\n".join([CLUSTER, edit(GENERAL, "minNodeCount: 2", "minNodeCount: 9")]),
        "minNodeCount",
    ),
    "unknown field": Case(
        ["apply", "-f", "FILE"], edit(CLUSTER, "instanceType:", "instanceTyp:"), "is not a known field"
    ),
    "unquoted version": Case(
        ["apply", "-f", "FILE"],
        edit(CLUSTER, "version: 1.35.4", "version: 1.30"),
        "YAML read the unquoted 1.30 as a number",
    ),
    "number label": Case(
        ["apply", "-f", "FILE"], edit(GENERAL, "labels: {workload: general}", "labels: {gpu: 1}"), "quote it"
    ),
    "numeric start time": Case(
        ["apply", "-f", "FILE"],
        edit(CLUSTER, "autoUpgrade: false", "autoUpgrade: false\n    maintenanceWindow: {start: 1330}"),
        "start",
    ),
    "node pool newer than control plane": Case(
        ["apply", "-f", "FILE"],
        "\n---\n".join([CLUSTER, edit(GENERAL, "version: 1.35.4", "version: 1.36.0")]),
        "newer than",
    ),
    "bad taint effect": Case(
        ["apply", "-f", "FILE"], "\n---\n".join([CLUSTER, edit(BATCH, "NoSchedule", "Never")]), "effect"
    ),
    "21 node pools": Case(
        ["apply", "-f", "FILE"],
        "\n---\n".join([CLUSTER] + [edit(GENERAL, "name: general", f"name: pool{i}") for i in range(21)]),
        "at most 20 node pools per cluster (the file has 21)",
    ),
    "stdin invalid": Case(["apply", "-f", "-"], None, "metadata.name", stdin=edit(CLUSTER, "name: prod", "name: Prod")),
    "delete -f without names": Case(
        ["delete", "-f", "FILE"], edit(CLUSTER, "name: prod", "labels: {}"), "metadata.name"
    ),
    "diff of a bad file": Case(["diff", "-f", "FILE"], "", "no documents"),
    # ---- flags and arguments
    "unknown flag": Case(["get", "clusters", "--bogus"], None, "No such option"),
    "unknown output": Case(["get", "clusters", "-o", "xml"], None, "'xml' is not one of"),
    "bad duration": Case(["apply", "-f", "FILE", "--timeout", "10x"], CLUSTER, "is not a duration"),
    "zero duration": Case(["delete", "cluster", "prod", "--wait", "--timeout", "0s"], None, "longer than zero"),
    "unknown resource type": Case(["get", "widgets"], None, "unknown resource type"),
    "events without a cluster": Case(["get", "events"], None, "-c CLUSTER"),
    "node pool without a cluster": Case(["get", "nodepool", "general"], None, "name the cluster too"),
    "node pool with two slashes": Case(["get", "nodepool", "a/b/c"], None, "CLUSTER/NAME"),
    "cluster option for clusters": Case(["get", "cluster", "prod", "-c", "prod"], None, "-c/--cluster"),
    "bad JMESPath": Case(["get", "clusters", "--query", "[["], None, "--query"),
    "apply without a file": Case(["apply"], None, "Missing option '-f'"),
    "delete a file and names": Case(["delete", "cluster", "prod", "-f", "FILE"], CLUSTER, "not both"),
    "delete nothing": Case(["delete"], None, "name what to delete"),
    "delete an operation": Case(["delete", "operation", "create-x-1"], None, "operations cancel"),
    "unknown shell": Case(["completion", "tcsh"], None, "'tcsh' is not one of"),
    "explain unknown field": Case(["explain", "cluster.spec.nope"], None, "has no field 'nope'"),
    "explain unknown kind": Case(["explain", "widget"], None, "unknown kind"),
    "schema unknown kind": Case(["schema", "widget"], None, "unknown kind"),
    "unknown context": Case(["get", "clusters", "--context", "nope"], None, "no context named 'nope'"),
    "cancel without an id": Case(["operations", "cancel"], None, "Missing argument 'ID'"),
    "describe events": Case(["describe", "events", "x", "-c", "prod"], None, "describe shows"),
    "unknown command": Case(["gett", "clusters"], None, "No such command 'gett'"),
    "bad context name": Case(["config", "set-context", "no spaces"], None, "1 to 63 characters: letters, digits"),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_is_one_line_exit_2_and_changes_nothing(service: Service, tmp_path: Path, case: Case) -> None:
    path = tmp_path / "manifest.yaml"
    if callable(case.content):
        path = case.content(tmp_path)
    elif isinstance(case.content, bytes):
        path.write_bytes(case.content)
    elif isinstance(case.content, str):
        path.write_text(case.content)
    args = [str(path) if arg == "FILE" else arg for arg in case.args]
    before = len(service.gateway.requests)

    result = service.run(*args, input=case.stdin)

    lines = result.stderr.splitlines()
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert case.expect in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    # Refused before a single request: nothing sent, nothing created.
    assert service.gateway.requests[before:] == []
    assert service.executions() == [] and service.store.clusters.get("prod") is None


def test_at_least_forty_cases() -> None:
    assert len(CASES) >= 40


SERVER_CASES = {
    # Rules that need the management service: the server's dry run refuses them, nothing starts.
    "zone outside the service": (edit(CLUSTER, "us-east-1c]", "us-east-1d]"), "availabilityZones"),
    "pod CIDR inside the VPC": (
        edit(CLUSTER, "podAddressCIDRBlocks: [192.168.0.0/16]", "podAddressCIDRBlocks: [10.0.0.0/16]"),
        "overlaps the VPC",
    ),
}


@pytest.mark.parametrize("content, expect", list(SERVER_CASES.values()), ids=list(SERVER_CASES))
def test_server_side_refusals_start_nothing(service: Service, tmp_path: Path, content: str, expect: str) -> None:
    path = tmp_path / "cluster.yaml"
    path.write_text(content)
    before = len(service.gateway.requests)

    result = service.run("apply", "-f", str(path))

    assert result.exit_code == 2, result.output
    [line] = result.stderr.splitlines()
    assert expect in line and "(InvalidSpec, HTTP 400)" in line
    # The message names each field once (the API's details are not repeated after it).
    assert line.count(expect) == 1
    methods = [(r["method"], r["path"]) for r in service.gateway.requests[before:]]
    assert ("POST", "/v1/clusters") in methods and service.executions() == []


def test_yaml_1_2_reads_times_and_words_as_strings(service: Service, tmp_path: Path) -> None:
    """`start: 13:30` (YAML 1.1: the number 810) and `autoUpgrade: off` (YAML 1.1: false;
    YAML 1.2: the word, which the model reads as false) are what the user meant."""
    path = tmp_path / "cluster.yaml"
    path.write_text(edit(CLUSTER, "autoUpgrade: false", "autoUpgrade: off\n    maintenanceWindow: {start: 13:30}"))

    result = service.run("apply", "-f", str(path), "--dry-run", "-o", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["action"] == "created (server dry run)"
    assert service.executions() == []
    assert yaml.safe_load("t: 13:30")["t"] == 810  # what PyYAML's YAML 1.1 loader would have sent
