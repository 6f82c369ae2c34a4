"""One name per surface, and errors that help: node-pool operations and events name their cluster,
a node pool's events are asked for as CLUSTER/POOL, names are refused with their rule in words
before anything is sent, mistyped kinds, fields and flags get a "did you mean", `-o` takes the
same formats on every command that prints objects, and a missing credential is not blamed on the
region."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubestep.store import ClusterRecord
from tests.api.conftest import body_named, register
from tests.commands.conftest import ROOT, Service

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

EXAMPLE = ROOT / "examples" / "cluster-ha.yaml"
FORMATS = ("text", "wide", "name", "json", "yaml")


@pytest.fixture(scope="module")
def prod(service: Service) -> ClusterRecord:
    register(service.store, body_named("prod"), "create-prod0001-1")
    return service.store.clusters.update("prod", phase="RUNNING", current_operation=None)


def _release(service: Service) -> None:
    lock = service.store.locks.get("prod")
    if lock:
        service.store.locks.release("prod", lock.operation_id)


def test_node_pool_operations_and_events_name_their_cluster(service: Service, prod: ClusterRecord) -> None:
    scaled = service.run("scale", "nodepool", "prod/general", "--max", "9", "-o", "json")
    assert scaled.exit_code == 0, scaled.output
    operation_id = json.loads(scaled.stdout)["id"]
    _release(service)
    rows = [line.split() for line in service.run("get", "operations", "-c", "prod").stdout.splitlines()]
    (row,) = [r for r in rows if r[0] == operation_id]
    assert row[1:3] == ["UpdateNodePool", "prod/general"]
    described = service.run("describe", "operation", operation_id).stdout
    assert "Target:    prod/general" in described

    service.store.events.record("prod", "Normal", "NodePoolUpdated", "pool moved", "AWSNodePool/general", "op-1")
    service.store.events.record("prod", "Normal", "ClusterRunning", "all good", "AWSCluster/prod", "op-2")
    everything = service.run("events", "prod")
    assert "AWSNodePool/prod/general" in everything.stdout and "AWSCluster/prod" in everything.stdout
    for args in (["events", "prod/general"], ["get", "events", "general", "-c", "prod"]):
        pool = service.run(*args)
        assert pool.exit_code == 0, pool.output
        objects = {line.split()[3] for line in pool.stdout.splitlines()[1:]}
        assert objects == {"AWSNodePool/prod/general"}, pool.stdout
    as_json = json.loads(service.run("events", "prod/general", "-o", "json").stdout)
    assert {(e["cluster"], e["involvedObject"]) for e in as_json} == {("prod", "AWSNodePool/general")}
    assert "NodePoolUpdated" in service.run("describe", "nodepool", "prod/general").stdout


def test_names_are_refused_with_their_rule_in_words_before_anything_is_sent(
    service: Service, prod: ClusterRecord, tmp_path: Path
) -> None:
    service.gateway.requests.clear()
    rule = "lower-case letters, digits and '-', starting with a letter and ending with a letter or digit"
    for args, what in (
        (["get", "cluster", "Prod_X"], "'Prod_X' is not a cluster name: "),
        (["describe", "nodepool", "prod/Gen_1"], "'Gen_1' is not a node pool name: "),
        (["get", "nodepools", "-c", "prod!"], "'prod!' is not a cluster name: "),
    ):
        result = service.run(*args)
        assert result.exit_code == 2, result.output
        assert result.stderr.startswith(f"error: {what}{rule}"), result.stderr
    slash = service.run("describe", "cluster", "prod/general")
    assert slash.exit_code == 2 and slash.stderr.rstrip().endswith("a node pool is named CLUSTER/POOL")
    assert service.sent() == []
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(EXAMPLE.read_text().replace("name: prod", "name: Prod_X", 1))
    refused = service.run("apply", "-f", str(manifest))
    assert refused.exit_code == 2 and f"metadata.name: 'Prod_X' is not valid: {rule}" in refused.stderr
    assert "^[a-z]" not in refused.stderr  # never the raw pattern


def test_did_you_mean(service: Service, prod: ClusterRecord, tmp_path: Path) -> None:
    kind = service.run("get", "clustr")
    assert kind.exit_code == 2 and "unknown resource type 'clustr' (did you mean 'cluster'?)" in kind.stderr
    explained = service.run("explain", "cluster.spec.controlPlane.instanceTyp")
    assert "has no field 'instanceTyp' (did you mean 'instanceType'?)" in explained.stderr
    manifest = tmp_path / "typo.yaml"
    manifest.write_text(EXAMPLE.read_text().replace("    instanceType: m5.large", "    instanceTyp: m5.large", 1))
    typo = service.run("apply", "-f", str(manifest))
    assert typo.exit_code == 2
    assert "spec.controlPlane.instanceTyp: is not a known field (did you mean 'instanceType'?)" in typo.stderr
    zone = service.run("get", "clusters", "--zone", "us-east-1a")
    assert zone.exit_code == 2 and zone.stderr == "error: No such option: --zone (see 'kubestep get -h')\n"
    near = service.run("get", "clusters", "--contxt", "prod")
    assert "No such option: --contxt (did you mean '--context'?)" in near.stderr
    context = service.run("--context", "locl", "get", "clusters")
    assert "no context named 'locl' (did you mean 'local'?)" in context.stderr


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_command_that_prints_objects_takes_the_same_formats(
    service: Service, prod: ClusterRecord, fmt: str
) -> None:
    commands = [
        ["get", "clusters"],
        ["get", "nodepool", "prod/general"],
        ["get", "operations", "-c", "prod"],
        ["describe", "cluster", "prod"],
        ["describe", "nodepool", "prod/general"],
        ["config", "get-contexts"],
        ["apply", "-f", str(EXAMPLE), "--dry-run"],
        ["scale", "nodepool", "prod/general", "--max", "7", "--dry-run"],
        ["upgrade", "cluster", "prod", "--version", "1.36.5", "--dry-run"],
        ["create", "nodepool", "prod/extra", "--dry-run"],
    ]
    for command in commands:
        result = service.run(*command, "-o", fmt)
        assert result.exit_code == 0, (command, result.output)
        if fmt == "name":
            assert all("/" in line for line in result.stdout.splitlines()), (command, result.stdout)
        if fmt == "json":
            json.loads(result.stdout)
    # `table`, what get called its text form, still works (the AGE column aside, which ticks).
    table, text = (service.run("get", "clusters", "-o", f).stdout.splitlines() for f in ("table", "text"))
    assert [line.split()[:5] for line in table] == [line.split()[:5] for line in text]


def test_missing_credentials_are_not_blamed_on_the_region(service: Service, tmp_path: Path) -> None:
    no_credentials = {
        "KUBESTEP_API_URL": None,
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SESSION_TOKEN": None,
        "AWS_PROFILE": None,
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
    }
    result = service.run("--service", "prod", "--region", "eu-west-1", "get", "clusters", env=no_credentials)
    assert result.exit_code == 2
    assert result.stderr == (
        "error: cannot read stack kubestep-prod: no AWS credentials found in the environment, ~/.aws or "
        "--profile (aws configure)\n"
    )
