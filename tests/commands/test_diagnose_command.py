"""`kubestep diagnose snapshot` through the API alone (`--no-aws`), and its bad input: an
existing output file or a missing directory is refused before anything is read (exit 2), an
unknown cluster fails in one line (exit 1)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from kubestep.store import ClusterRecord, Operation
from tests.api.conftest import body_named, register
from tests.commands.conftest import Service
from tests.special_files import dangling, fifo, fingerprint, null_device

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")


@pytest.fixture(scope="module")
def broken(service: Service) -> ClusterRecord:
    """A cluster whose create is recorded as failed, with the Warning event it left."""
    record = register(service.store, body_named("broken"), "create-broken01-1")
    service.store.clusters.update("broken", phase="ERROR")
    service.store.events.record(
        "broken", "Warning", "CreateFailed", "replica 2 reported failed:kubeadm-init", "AWSCluster/broken"
    )
    service.store.operations.create(
        Operation(operation_id="create-broken01-1", kind="CreateCluster", target="broken", uid=record.uid)
    )
    service.store.operations.finish("create-broken01-1", "FAILED", error="BootstrapFailed", cause="replica 2")
    return record


def test_snapshot_through_the_api_alone(service: Service, broken: ClusterRecord, tmp_path: Path) -> None:
    output = tmp_path / "broken.tar.gz"
    result = service.run("diagnose", "snapshot", "broken", "--no-aws", "--output", str(output))
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {output} (")
    assert "ERROR    cluster phase is ERROR" in result.output
    assert "not collected: AWS inventory and raw execution histories: skipped (no direct AWS access)" in result.output
    with tarfile.open(output) as tar:
        names = {m.name.split("/", 1)[1]: m for m in tar.getmembers()}
        summary = json.load(tar.extractfile(names["summary.json"]))
    assert "inventory.json" not in names and "operations/create-broken01-1/steps.json" in names
    titles = [f["title"] for f in summary["findings"]]
    assert "operation create-broken01-1 (CreateCluster) FAILED" in titles
    assert "Warning event CreateFailed on AWSCluster/broken" in titles
    requests = service.sent()
    assert all(method == "GET" for method, _ in requests[-6:]), "a snapshot only reads"


@pytest.mark.parametrize(
    ("args", "expect", "code"),
    [
        (["--output", "{existing}"], "exists: it is never overwritten", 2),
        (["--output", "{tmp}/no/such/dir/x.tar.gz"], "does not exist", 2),
        # Once "unexpected error: FileExistsError" after the whole snapshot was read.
        (["--output", "{dangling}"], "is a symlink to", 2),
        (["--output", "{device}"], "is a character device, not a regular file", 2),
        (["--output", "{fifo}"], "is a FIFO (named pipe), not a regular file", 2),
        (["--operations", "0"], "Invalid value for '--operations'", 2),
    ],
)
def test_bad_output_and_flags_are_refused_before_anything_is_read(
    service: Service, tmp_path: Path, args: list[str], expect: str, code: int
) -> None:
    existing = tmp_path / "existing.tar.gz"
    existing.write_bytes(b"keep me")
    specials = {"dangling": dangling(tmp_path), "device": null_device(tmp_path), "fifo": fifo(tmp_path)}
    fingerprints = {name: fingerprint(path) for name, path in specials.items()}
    before = len(service.gateway.requests)
    filled = [a.format(existing=existing, tmp=tmp_path, **specials) for a in args]
    result = service.run("diagnose", "snapshot", "prod", *filled)
    assert result.exit_code == code, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and expect in line
    assert len(service.gateway.requests) == before
    assert existing.read_bytes() == b"keep me"
    assert {name: fingerprint(path) for name, path in specials.items()} == fingerprints
    assert not (tmp_path / "missing").exists()


def test_an_unknown_cluster_fails_in_one_line(service: Service, tmp_path: Path) -> None:
    output = tmp_path / "none.tar.gz"
    result = service.run("diagnose", "snapshot", "nowhere", "--no-aws", "--output", str(output))
    assert result.exit_code == 1
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: nothing to snapshot for cluster 'nowhere'")
    assert not output.exists()
