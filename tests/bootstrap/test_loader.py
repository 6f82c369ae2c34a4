"""The loader, the user-data's one program, run for real with bash in the sandbox: it installs the
AWS CLI if the image lacks it, downloads the instance's bundle (retrying while S3 or IAM do not
answer yet), refuses a bundle whose SHA-256 is not the one its settings carry (nothing unpacked,
`failed:bundle` reported), unpacks a good one in place and runs the bootstrap; a later boot
that already unpacked this bundle does not download it again."""

from __future__ import annotations

import json

from kubestep.bootstrap.cloud_init import bundled_files
from kubestep.store import keys
from tests.bootstrap.conftest import SECRETS, control_plane, node
from tests.bootstrap.harness import Sandbox

LOADER = "/usr/local/sbin/kubestep-loader"


def _sandbox(tmp_path, params=None, **options) -> Sandbox:
    scenario = {"secrets": SECRETS, **options.pop("scenario", {})}
    return Sandbox(tmp_path, params or control_plane(0), scenario, via_loader=True, **options)


def _report(box: Sandbox, pk: str, sk: str) -> dict:
    return box.dynamodb_items()[f"{pk}|{sk}"]


def test_the_user_data_alone_has_no_bootstrap_until_the_loader_runs(tmp_path):
    box = _sandbox(tmp_path)
    assert box.file(LOADER).exists() and not box.file("/usr/local/sbin/kubestep-bootstrap").exists()


def test_the_loader_fetches_checks_unpacks_and_runs_the_bootstrap(tmp_path):
    box = _sandbox(tmp_path, node(), aws_preinstalled=False)
    run = box.run(LOADER)
    assert run.returncode == 0, run.stderr
    gets = run.aws("s3api", "get-object")
    assert gets == [
        [
            "s3api",
            "get-object",
            "--region",
            "us-east-1",
            "--bucket",
            box.bundle_ref.bucket,
            "--key",
            box.bundle_ref.key,
            str(box.file("/var/lib/kubestep/bundle.tar.gz")),
        ]
    ]
    # The AWS CLI was installed before the download needed it.
    assert run.index(lambda c: c["cmd"] == "snap") < run.index(lambda c: c["cmd"] == "aws")
    for f in bundled_files(box.params):
        assert box.read(f.path) == f.content, f.path
        assert oct(box.file(f.path).stat().st_mode & 0o777) == oct(int(f.permissions, 8) & 0o755), f.path
    assert box.read("/var/lib/kubestep/bundle.sha256").strip() == box.bundle_ref.sha256
    assert not box.file("/var/lib/kubestep/bundle.tar.gz").exists()
    # The bootstrap ran: the node joined and reported.
    assert run.kubeadm("join")
    pk = keys.node_report_pk(box.params.uid, "arn:aws:ec2:us-east-1:123456789012:instance/i-0aaaaaaaaaaaaaaa1")
    assert _report(box, pk, f"{keys.NODE_REPORT_PREFIX}i-0aaaaaaaaaaaaaaa1")["status"] == {"S": "ok"}


def test_the_loader_retries_while_the_bundle_cannot_be_read_yet(tmp_path):
    box = _sandbox(tmp_path, node(), scenario={"s3_unavailable_attempts": 3})
    run = box.run(LOADER)
    assert run.returncode == 0, run.stderr
    assert len(run.aws("s3api", "get-object")) == 4
    assert box.file("/usr/local/sbin/kubestep-bootstrap").exists()


def test_a_bundle_whose_digest_differs_is_refused_unpacked_nothing_and_reported(tmp_path):
    tampered = tmp_path / "tampered.tar.gz"
    box = _sandbox(tmp_path / "box", control_plane(1))
    tampered.write_bytes(box.bundle.data[:-1] + bytes([box.bundle.data[-1] ^ 1]))
    box.scenario["objects"] = {f"{box.bundle_ref.bucket}/{box.bundle_ref.key}": str(tampered)}
    (box.base / "scenario.json").write_text(json.dumps(box.scenario))
    run = box.run(LOADER)
    assert run.returncode == 1
    assert f"not {box.bundle_ref.sha256}: refused, nothing unpacked" in run.stderr
    assert not box.file("/usr/local/sbin/kubestep-bootstrap").exists()
    assert not box.file("/etc/kubestep/addons").exists()
    assert not box.file("/var/lib/kubestep/bundle.sha256").exists()
    report = _report(box, keys.bootstrap_pk(box.params.uid), f"{keys.REPLICA_REPORT_PREFIX}1")
    assert report["status"] == {"S": "failed:bundle"} and report["instanceId"] == {"S": "i-0aaaaaaaaaaaaaaa1"}
    assert set(report) <= {"pk", "sk", "status", "instanceId", "reportedAt", "source"}


def test_a_missing_bundle_is_reported_after_the_retries(tmp_path):
    box = _sandbox(tmp_path, node(), scenario={"objects": {}})
    run = box.run(LOADER, KUBESTEP_BUNDLE_ATTEMPTS="2")
    assert run.returncode == 1 and "could not download" in run.stderr
    assert len(run.aws("s3api", "get-object")) == 2
    pk = keys.node_report_pk(box.params.uid, "arn:aws:ec2:us-east-1:123456789012:instance/i-0aaaaaaaaaaaaaaa1")
    assert _report(box, pk, f"{keys.NODE_REPORT_PREFIX}i-0aaaaaaaaaaaaaaa1")["status"] == {"S": "failed:bundle"}


def test_a_later_boot_runs_the_unpacked_bundle_without_s3(tmp_path):
    box = _sandbox(tmp_path, node())
    assert box.run(LOADER).returncode == 0
    box.scenario["objects"] = {}  # the object is gone: a reboot must not need it
    (box.base / "scenario.json").write_text(json.dumps(box.scenario))
    again = box.run(LOADER)
    assert again.returncode == 0, again.stderr
    assert not again.aws("s3api", "get-object")
