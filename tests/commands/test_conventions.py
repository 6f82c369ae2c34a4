"""The CLI's conventions (issue 7, "a CLI that feels like kubectl and the AWS CLI"), each as
command -> expected output shape and exit code, against the API function in-process."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path

import boto3
import pytest
import yaml

from kubestep.store import ClusterRecord, EtcdMember, Operation
from kubestep.versions import supported_minors
from tests.api.conftest import body_named, execution_input, register
from tests.commands.conftest import ROOT, Service

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

EXAMPLE = ROOT / "examples" / "cluster-ha.yaml"
AGE = re.compile(r"^\d+[smhdy]$")


@pytest.fixture(scope="module")
def prod(service: Service) -> ClusterRecord:
    """Cluster prod as CreateCluster records it, with three replicas, two of them reported ok."""
    record = register(service.store, body_named("prod"), "create-prod0001-1")
    for index, zone in enumerate(["us-east-1a", "us-east-1b", "us-east-1c"]):
        member = EtcdMember(
            index=index,
            zone=zone,
            subnet_id=f"subnet-0000000{index}",
            name=f"etcd-{index}",
            peer_name=f"cp-{index}.{record.uid}.demo.kubestep.internal",
            asg_name=f"gke-{record.uid}-cp-{index}",
        )
        service.store.etcd.plan_member("prod", member)
    for index in (0, 1):
        service.store.reports.write(record.uid, status="ok", instance_id=f"i-0000000{index}", replica=index)
    service.store.operations.create(
        Operation(operation_id="create-prod0001-1", kind="CreateCluster", target="prod", uid=record.uid)
    )
    return record


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# ---------------------------------------------------------------- help and names


def test_h_is_help_everywhere(service: Service) -> None:
    import click

    from kubestep.cli.main import main

    commands = [[]] + [[name] for name in main.list_commands(click.Context(main))]
    commands += [["operations", sub] for sub in ("list", "get", "wait", "cancel")]
    commands += [["config", sub] for sub in ("get-contexts", "use-context", "set-context", "current-context")]
    for command in commands:
        result = service.run(*command, "-h")
        assert result.exit_code == 0 and result.stdout.startswith("Usage: kubestep"), (command, result.output)
    assert service.sent() == [] or all(m == "GET" for m, _ in service.sent())


def test_singular_plural_and_short_names_are_the_same(service: Service, prod: ClusterRecord) -> None:
    outputs = {
        name: service.run("get", name, "-o", "name").stdout for name in ("clusters", "cluster", "cl", "awsclusters")
    }
    assert set(outputs.values()) == {"awscluster/prod\n"}
    one = service.run("get", "cluster", "prod", "-o", "json")
    assert one.exit_code == 0 and json.loads(one.stdout)["metadata"]["name"] == "prod"
    missing = service.run("get", "cluster", "nope")
    assert missing.exit_code == 1 and lines(missing.stderr) == [
        "error: cluster 'nope' does not exist (NotFound, HTTP 404)"
    ]


def test_node_pools_are_named_cluster_slash_pool(service: Service, prod: ClusterRecord) -> None:
    by_slash = service.run("get", "nodepool", "prod/general", "-o", "json")
    by_flag = service.run("get", "np", "general", "-c", "prod", "-o", "json")
    assert by_slash.exit_code == by_flag.exit_code == 0
    assert json.loads(by_slash.stdout) == json.loads(by_flag.stdout)
    listed = service.run("get", "nodepools", "-c", "prod", "-o", "name")
    assert listed.stdout.split() == ["awsnodepool/prod/batch", "awsnodepool/prod/general"]
    everywhere = service.run("get", "nodepools")
    header, *rows = lines(everywhere.stdout)
    assert header.split()[:3] == ["CLUSTER", "NAME", "PHASE"] and len(rows) == 2


# ---------------------------------------------------------------- output formats


def test_table_wide_name_json_yaml(service: Service, prod: ClusterRecord) -> None:
    table = service.run("get", "clusters")
    header, row = lines(table.stdout)
    assert header.split() == ["NAME", "PHASE", "VERSION", "REPLICAS", "NODEPOOLS", "AGE"]
    name, phase, version, replicas, pools, age = row.split()
    assert (name, phase, version, replicas, pools) == ("prod", "PROVISIONING", "1.35.4", "2/3", "2")
    assert AGE.match(age), age

    wide_header = lines(service.run("get", "clusters", "-o", "wide").stdout)[0]
    assert wide_header.split()[-3:] == ["ENDPOINT", "UID", "OPERATION"]

    [cluster] = json.loads(service.run("get", "clusters", "-o", "json").stdout)
    assert len(cluster["status"]["controlPlane"]["replicas"]) == 3
    assert sorted(p["metadata"]["name"] for p in cluster["status"]["nodePools"]) == ["batch", "general"]
    assert yaml.safe_load(service.run("get", "clusters", "-o", "yaml").stdout) == [cluster]

    no_headers = service.run("get", "clusters", "--no-headers")
    assert [line.split()[:-1] for line in lines(no_headers.stdout)] == [row.split()[:-1]]


def test_query_is_jmespath_on_the_json_form(service: Service, prod: ClusterRecord) -> None:
    names = service.run("get", "clusters", "--query", "[?status.phase=='PROVISIONING'].metadata.name")
    assert names.exit_code == 0 and json.loads(names.stdout) == ["prod"]
    as_yaml = service.run("get", "cluster", "prod", "--query", "spec.controlPlane.version", "-o", "yaml")
    assert yaml.safe_load(as_yaml.stdout) == "1.35.4"
    as_text = service.run("get", "clusters", "-o", "table", "--query", "[].[metadata.name, status.phase]")
    assert as_text.stdout == "prod\tPROVISIONING\n"


def test_operations_are_read_with_get_and_describe(service: Service, prod: ClusterRecord) -> None:
    listed = service.run("get", "operations", "-c", "prod")
    header, *rows = lines(listed.stdout)
    assert header.split() == ["ID", "KIND", "TARGET", "STATUS", "AGE", "DURATION"]
    assert any(row.split()[:4] == ["create-prod0001-1", "CreateCluster", "prod", "RUNNING"] for row in rows)
    described = service.run("describe", "operation", "create-prod0001-1")
    assert "Steps" in described.stdout
    # The earlier names are hidden aliases that say what replaced them.
    alias = service.run("operations", "get", "create-prod0001-1")
    steady = lambda text: [line for line in lines(text) if not line.startswith("Started:")]  # noqa: E731 - its age ticks
    assert steady(alias.stdout) == steady(described.stdout)
    assert alias.stderr == (
        "note: `kubestep operations get` is deprecated and will be removed: use `kubestep describe operation ID`\n"
    )
    names = service.run("get", "operations", "-c", "prod", "-o", "name").stdout
    old = service.run("operations", "list", "-c", "prod", "-o", "name")
    assert old.stdout == names and "use `kubestep get operations`" in old.stderr
    assert "list" not in service.run("operations", "-h").stdout


def test_events_have_relative_times(service: Service, prod: ClusterRecord) -> None:
    service.store.events.record("prod", "Normal", "Creating", "creating the cluster", "AWSCluster/prod", "x")
    for args in (["get", "events", "-c", "prod"], ["events", "prod"]):
        header, *rows = lines(service.run(*args).stdout)
        assert header.startswith("LAST SEEN   TYPE")
        assert any("Creating" in r and AGE.match(r.split()[0]) for r in rows)


def test_describe_cluster_nodepool_operation(service: Service, prod: ClusterRecord) -> None:
    cluster = service.run("describe", "cluster", "prod")
    assert cluster.exit_code == 0
    for text in ("Phase:", "Control plane replicas", "us-east-1c", "Node pools", "general", "Events"):
        assert text in cluster.stdout
    pool = service.run("describe", "nodepool", "prod/batch")
    assert pool.exit_code == 0 and "dedicated=batch:NoSchedule" in pool.stdout and "c5.xlarge" in pool.stdout
    operation = service.run("describe", "operation", "create-prod0001-1")
    assert operation.exit_code == 0 and "Steps" in operation.stdout
    as_json = json.loads(service.run("describe", "cluster", "prod", "-o", "json").stdout)
    assert as_json["metadata"]["name"] == "prod" and "events" in as_json


def test_watch_prints_each_change(service: Service, prod: ClusterRecord) -> None:
    def reads() -> int:
        return service.sent().count(("GET", "/v1/clusters/prod"))

    before = reads()

    def change_after_the_first_answer() -> None:
        # The watch's first poll is sent only once the first answer is printed: the phase changes
        # after what the first line shows, however slow the machine (a fixed sleep raced it).
        deadline = time.monotonic() + 30
        while reads() < before + 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        service.store.clusters.update("prod", phase="RUNNING")

    changer = threading.Thread(target=change_after_the_first_answer)
    changer.start()
    try:
        result = service.run("get", "cluster", "prod", "-w", "--interval", "0.2s", "--timeout", "5s")
    finally:
        changer.join()
        service.store.clusters.update("prod", phase="PROVISIONING")
    header, first, *changes = lines(result.stdout)
    assert result.exit_code == 0 and "PROVISIONING" in first
    assert [c.split()[1] for c in changes] == ["RUNNING"]


# ---------------------------------------------------------------- apply, diff, delete


def test_apply_refuses_a_node_pool_of_a_cluster_that_exists_nowhere(
    service: Service, prod: ClusterRecord, tmp_path: Path
) -> None:
    extra_pool = EXAMPLE.read_text().split("\n---\n")[1].replace("name: general", "name: extra")
    orphan = tmp_path / "orphan.yaml"
    orphan.write_text(extra_pool.replace("clusterName: prod", "clusterName: ghost"))
    before = service.executions()
    result = service.run("apply", "-f", str(orphan))
    assert result.exit_code == 1 and "cluster 'ghost' does not exist" in result.stderr
    assert service.executions() == before


def test_apply_dry_run_asks_the_server_and_starts_nothing(service: Service, tmp_path: Path) -> None:
    manifest = tmp_path / "staging.yaml"
    manifest.write_text(EXAMPLE.read_text().replace("prod", "staging"))
    result = service.run("apply", "-f", str(manifest), "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout == "awscluster/staging created (server dry run: nothing was started)\n"
    assert ("POST", "/v1/clusters") in service.sent()
    assert service.executions() == []


def test_apply_creates_then_cancel_aborts_and_releases_the_lock(service: Service, tmp_path: Path) -> None:
    manifest = tmp_path / "dev.yaml"
    manifest.write_text(EXAMPLE.read_text().replace("prod", "dev"))
    created = service.run("apply", "-f", str(manifest), "-o", "json")
    assert created.exit_code == 0, created.output
    [result] = json.loads(created.stdout)
    operation = result["operation"]
    assert result["action"] == "creating" and operation["kind"] == "CreateCluster"
    assert service.store.locks.get("dev").operation_id == operation["id"]

    cancelled = service.run("operations", "cancel", operation["id"])
    assert cancelled.exit_code == 0 and cancelled.stdout.startswith(f"operation/{operation['id']} cancelling")
    got = json.loads(service.run("get", "operation", operation["id"], "-o", "json").stdout)
    assert got["status"] == "CANCELLING"  # the create stops at its next step and compensates
    # What the workflow's last state does then (tests/workflows/test_failures.py runs it for real).
    service.store.locks.release("dev", operation["id"])
    service.store.operations.finish(operation["id"], "ABORTED", "OperationCancelled", "cancelled")
    got = json.loads(service.run("get", "operation", operation["id"], "-o", "json").stdout)
    assert got["status"] == "ABORTED"
    again = service.run("operations", "cancel", operation["id"])
    assert again.exit_code == 1 and "already ended ABORTED" in again.stderr


def test_delete_by_file_and_dry_run(service: Service, prod: ClusterRecord, tmp_path: Path) -> None:
    dry = service.run("delete", "cluster", "prod", "--dry-run")
    assert (
        dry.exit_code == 0
        and "awscluster/prod deleted (server dry run: nothing was started; 2 node pools" in dry.stdout
    )
    assert service.executions("DeleteCluster") == []
    missing = service.run("delete", "cluster", "nope", "--ignore-not-found")
    assert missing.exit_code == 0 and missing.stderr == ""
    # The create of prod holds its lock in this module (executions stay RUNNING): a conflict, exit 1.
    service.store.locks.release("prod", "create-prod0001-1")
    result = service.run("delete", "-f", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    assert re.fullmatch(r"awscluster/prod deleting \(operation delete-[\w-]+\)\n", result.stdout)
    assert len(service.executions("DeleteCluster")) == 1
    busy = service.run("delete", "cluster", "prod")
    assert busy.exit_code == 1 and "LockHeld" in busy.stderr and len(lines(busy.stderr)) == 1


# ---------------------------------------------------------------- flags, contexts, versions, completion


def test_global_flags_follow_the_subcommand(service: Service, prod: ClusterRecord) -> None:
    result = service.run(
        "get",
        "clusters",
        "-o",
        "name",
        "--endpoint",
        service.gateway.url,
        "--region",
        "us-east-1",
        env={"KUBESTEP_API_URL": None},
    )
    assert result.exit_code == 0 and result.stdout == "awscluster/prod\n"
    before = service.run(
        "--endpoint", service.gateway.url, "get", "clusters", "-o", "name", env={"KUBESTEP_API_URL": None}
    )
    assert before.stdout == result.stdout


def test_durations(service: Service, prod: ClusterRecord) -> None:
    for value in ("90s", "10m", "1h30m", "2"):
        result = service.run("get", "clusters", "-w", "--timeout", value, "--interval", "1ms", "-h")
        assert result.exit_code == 0
    waited = service.run("operations", "wait", "create-prod0001-1", "--timeout", "1s")
    assert waited.exit_code == 1
    *progress, error = lines(waited.stderr)
    assert error == (
        "error: operation create-prod0001-1 still RUNNING after 1s; it goes on "
        "(kubestep operations wait create-prod0001-1)"
    )


def test_every_duration_flag_reads_go_durations(service: Service, prod: ClusterRecord, tmp_path: Path) -> None:
    """`--grace-period 1h30m` was refused though documented, and `local down --timeout` took only
    seconds: every duration flag reads kubectl's (Go's) form, one parser."""
    before = len(service.executions("SweepOrphans"))
    swept = service.run("sweep", "--grace-period", "1h30m", "--timeout", "1s")
    assert swept.exit_code == 1, swept.output  # the stand-in state machine never ends: only the request matters
    assert "still RUNNING after 1s" in swept.stderr
    runs = sorted(service.executions("SweepOrphans"), key=lambda e: e["startDate"])
    assert len(runs) == before + 1
    assert execution_input(runs[-1]["executionArn"])["gracePeriodSeconds"] == 5400
    zero = service.run("sweep", "--grace-period", "0s", "--timeout", "1s")
    assert zero.exit_code == 1 and "still RUNNING" in zero.stderr
    bad = service.run("sweep", "--grace-period", "-1h")
    assert bad.exit_code == 2 and "has a sign" in bad.stderr
    down = service.run("local", "down", "--timeout", "1h30m", env={"KUBESTEP_HOME": str(tmp_path)})
    assert down.exit_code == 0 and down.stdout == "the local runtime is not running\n", down.output


def test_empty_api_url_means_the_local_runtime(service: Service, prod: ClusterRecord, tmp_path: Path) -> None:
    """What get-credentials writes into a local cluster's kubeconfig exec environment: the local
    runtime, even with a current context elsewhere."""
    home = {"KUBESTEP_HOME": str(tmp_path), "KUBESTEP_API_URL": None}
    assert service.run("config", "set-context", "lab", "--endpoint", service.gateway.url, env=home).exit_code == 0
    assert service.run("get", "clusters", "-o", "name", env=home).stdout == "awscluster/prod\n"
    local = service.run("get", "clusters", env={**home, "KUBESTEP_API_URL": ""})
    assert local.exit_code == 2 and "no management API to talk to" in local.stderr


def test_contexts(service: Service, prod: ClusterRecord, tmp_path: Path) -> None:
    home = {"KUBESTEP_HOME": str(tmp_path), "KUBESTEP_API_URL": None}
    assert service.run("config", "current-context", env=home).exit_code == 1
    created = service.run(
        "config", "set-context", "lab", "--endpoint", service.gateway.url, "--region", "us-east-1", env=home
    )
    assert created.exit_code == 0 and created.stdout == 'Context "lab" created.\n'
    assert service.run("config", "set-context", "other", "--service", "other", env=home).exit_code == 0
    listed = lines(service.run("config", "get-contexts", env=home).stdout)
    assert listed[0].split() == ["CURRENT", "NAME", "ENDPOINT", "SERVICE", "REGION", "PROFILE"]
    assert listed[1].startswith("*") and "lab" in listed[1]
    assert service.run("config", "current-context", env=home).stdout == "lab\n"
    assert service.run("get", "clusters", "-o", "name", env=home).stdout == "awscluster/prod\n"
    assert service.run("config", "use-context", "other", env=home).exit_code == 0
    assert service.run("get", "clusters", "-o", "name", "--context", "lab", env=home).stdout == "awscluster/prod\n"
    assert (tmp_path / "config").stat().st_mode & 0o077 == 0
    assert service.run("config", "delete-context", "other", env=home).exit_code == 0
    # `local`, the local runtime's context, is built in.
    assert service.run("config", "get-contexts", "-o", "name", env=home).stdout == "context/lab\ncontext/local\n"


def test_service_finds_the_api_from_the_stack_output(service: Service, prod: ClusterRecord) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"ApiUrl": {"Value": service.gateway.url}},
    }
    boto3.client("cloudformation", "us-east-1").create_stack(
        StackName="kubestep-demo", TemplateBody=json.dumps(template)
    )
    result = service.run(
        "get", "clusters", "-o", "name", "--service", "demo", "--region", "us-east-1", env={"KUBESTEP_API_URL": None}
    )
    assert result.exit_code == 0 and result.stdout == "awscluster/prod\n"
    missing = service.run(
        "get", "clusters", "--service", "nope", "--region", "us-east-1", env={"KUBESTEP_API_URL": None}
    )
    assert missing.exit_code == 1 and lines(missing.stderr)[0].startswith(
        "error: no stack kubestep-nope in region us-east-1"
    )


def test_version_shows_client_server_and_kubernetes_versions(service: Service) -> None:
    result = service.run("version")
    assert result.exit_code == 0
    client, server, kubernetes = lines(result.stdout)
    assert client == "Client Version: kubestep 0.1.0"
    assert server.startswith("Server Version: kubestep 0.1.0 (management service demo, us-east-1")
    assert kubernetes == "Kubernetes versions: " + ", ".join(f"1.{m}" for m in supported_minors())
    data = json.loads(service.run("version", "-o", "json").stdout)
    assert data["server"]["kubernetesVersions"][-1] == f"1.{supported_minors()[-1]}"
    assert service.run("version", "--client", env={"KUBESTEP_API_URL": "http://127.0.0.1:9"}).exit_code == 0


def test_completion_scripts_and_cluster_names(service: Service, prod: ClusterRecord) -> None:
    for shell in ("bash", "zsh", "fish"):
        script = service.run("completion", shell)
        assert script.exit_code == 0 and "_KUBESTEP_COMPLETE" in script.stdout
    words = service.run(
        env={"_KUBESTEP_COMPLETE": "bash_complete", "COMP_WORDS": "kubestep get cluster p", "COMP_CWORD": "3"}
    )
    assert "plain,prod" in words.stdout.splitlines()
    pools = service.run(
        env={"_KUBESTEP_COMPLETE": "bash_complete", "COMP_WORDS": "kubestep describe nodepool ", "COMP_CWORD": "3"}
    )
    assert {"plain,prod/general", "plain,prod/batch"} <= set(pools.stdout.splitlines())


def test_unexpected_errors_are_one_line_unless_debugging(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubestep.cli import kinds

    def boom(*args: object) -> list:
        raise RuntimeError("boom")

    monkeypatch.setattr(kinds.BY_NAME["clusters"], "list_items", boom)
    quiet = service.run("get", "clusters")
    assert quiet.exit_code == 1
    assert lines(quiet.stderr) == ["error: unexpected error: RuntimeError: boom (run with --debug for the traceback)"]
    loud = service.run("get", "clusters", "--debug")
    assert loud.exit_code == 1 and "Traceback (most recent call last)" in loud.stderr
    assert loud.stderr.rstrip().endswith("RuntimeError: boom (run with --debug for the traceback)")
    assert "Traceback" in service.run("get", "clusters", env={"KUBESTEP_DEBUG": "1"}).stderr


def test_explain_and_schema(service: Service) -> None:
    explained = service.run("explain", "cluster.spec.controlPlane")
    assert explained.exit_code == 0
    assert "FIELD:    spec.controlPlane <Object>" in explained.stdout
    assert re.search(r"^  version\t<string> -required-$", explained.stdout, re.M)
    assert service.run("explain", "nodepool.spec.taints.effect").stdout.count("NoExecute") >= 1
    schema = json.loads(service.run("schema", "cluster").stdout)
    assert schema["properties"]["spec"]["description"]
