"""Round trips, as kubectl users expect them: what `kubestep get -o yaml|json` prints applies back
unchanged (the fields the API sets are ignored, a uid is checked), and `apply -f DIR` applies a
directory's manifest files in name order (.yaml, .yml, .json; subdirectories with -R)."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
import yaml

from kubestep.store import ClusterRecord
from tests.api.conftest import body_named, register
from tests.commands.conftest import ROOT, Service

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")


@pytest.fixture(scope="module")
def prod(service: Service) -> ClusterRecord:
    register(service.store, body_named("prod"), "create-prod0001-1")
    return service.store.clusters.update("prod", phase="RUNNING", current_operation=None)


def _mutations(service: Service) -> list[tuple[str, str]]:
    return [(method, path) for method, path in service.sent() if method != "GET"]


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_get_output_applies_back_unchanged(service: Service, prod: ClusterRecord, fmt: str) -> None:
    printed = service.run("get", "cluster", "prod", "-o", fmt)
    assert printed.exit_code == 0 and "createdAt" in printed.stdout and "status" in printed.stdout
    service.gateway.requests.clear()
    applied = service.run("apply", "-f", "-", input=printed.stdout)
    assert applied.exit_code == 0, applied.output
    assert applied.stdout == "awscluster/prod unchanged\n"
    assert _mutations(service) == []
    differs = service.run("diff", "-f", "-", input=printed.stdout)
    assert differs.exit_code == 0 and differs.stdout == "", differs.output


def test_a_listing_applies_back_unchanged(service: Service, prod: ClusterRecord) -> None:
    """`get nodepools -o yaml` prints a list of objects: each applies."""
    printed = service.run("get", "nodepools", "-c", "prod", "-o", "yaml")
    service.gateway.requests.clear()
    applied = service.run("apply", "-f", "-", input=printed.stdout)
    assert applied.exit_code == 0, applied.output
    assert sorted(applied.stdout.splitlines()) == [
        "awsnodepool/prod/batch unchanged",
        "awsnodepool/prod/general unchanged",
    ]
    assert _mutations(service) == []


def test_a_uid_names_the_incarnation_it_was_read_from(service: Service, prod: ClusterRecord) -> None:
    exported = yaml.safe_load(service.run("get", "cluster", "prod", "-o", "yaml").stdout)
    exported["metadata"]["uid"] = "zzzz9999"
    exported["spec"]["controlPlane"]["instanceType"] = "m5.xlarge"
    service.gateway.requests.clear()
    refused = service.run("apply", "-f", "-", input=yaml.safe_dump(exported))
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"error: awscluster/prod: metadata.uid: zzzz9999 names an earlier cluster prod (this one is {prod.uid}); "
        "remove metadata.uid to apply the file to it; nothing was applied\n"
    )
    assert _mutations(service) == []


def _write(path: Path, *documents: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(documents))
    return path


def test_apply_a_directory_in_name_order(service: Service, prod: ClusterRecord, tmp_path: Path) -> None:
    body = body_named("fromdir")
    cluster, pool = body["cluster"], body["nodePools"][0]
    deeper = body_named("deeper")["cluster"]
    manifests = tmp_path / "manifests"
    _write(manifests / "20-pool.yml", pool)
    _write(manifests / "10-cluster.yaml", cluster)
    (manifests / "README.txt").write_text("not a manifest")
    _write(manifests / "sub" / "30-deeper.json", deeper)

    dry = service.run("apply", "-f", str(manifests), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.splitlines() == ["awscluster/fromdir created (server dry run: nothing was started)"]
    recursive = service.run("apply", "-f", str(manifests), "-R", "--dry-run")
    assert recursive.stdout.splitlines() == [
        "awscluster/fromdir created (server dry run: nothing was started)",
        "awscluster/deeper created (server dry run: nothing was started)",
    ], recursive.output

    applied = service.run("apply", "-f", str(manifests))
    assert applied.exit_code == 0, applied.output
    assert applied.stdout.startswith("awscluster/fromdir creating (operation create-")
    sfn = boto3.client("stepfunctions", "us-east-1")
    (execution,) = [
        e for e in service.executions() if "fromdir" in sfn.describe_execution(executionArn=e["executionArn"])["input"]
    ]
    started = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert [p["metadata"]["name"] for p in started["nodePools"]] == [pool["metadata"]["name"]]


def test_several_files_name_the_file_of_each_problem(service: Service, tmp_path: Path) -> None:
    good = _write(tmp_path / "a.yaml", body_named("named")["cluster"])
    bad_cluster = body_named("other")["cluster"]
    bad_cluster["spec"]["controlPlane"]["instanceTyp"] = "m5.large"
    bad = _write(tmp_path / "b.yaml", bad_cluster)
    service.gateway.requests.clear()
    refused = service.run("apply", "-f", str(good), "-f", str(bad))
    assert refused.exit_code == 2
    assert refused.stderr.startswith(f"error: {bad}: AWSCluster other, line ")
    assert "spec.controlPlane.instanceTyp" in refused.stderr
    assert _mutations(service) == []
    twice = service.run("apply", "-f", str(good), "-f", str(good), "--dry-run")
    assert twice.exit_code == 2 and f"AWSCluster named appears twice ({good} line 1 and {good} line 1)" in twice.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = service.run("apply", "-f", str(empty))
    assert nothing.exit_code == 2
    assert nothing.stderr == (
        f"error: {empty}: no manifest files (.yaml, .yml, .json) in this directory; -R reads its subdirectories too\n"
    )


def test_the_examples_directory_applies_its_cluster_and_leaves_the_management_services(
    service: Service, tmp_path: Path
) -> None:
    dry = service.run("apply", "-f", str(ROOT / "examples"), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "awscluster/prod" in dry.stdout
    notes = [line for line in dry.stderr.splitlines() if line.startswith("note: ")]
    assert len(notes) == 2 and all("AWSManagementService" in n and "cdk deploy" in n for n in notes)
