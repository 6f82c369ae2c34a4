"""A replica serves its cluster's administrators item as aws-iam-authenticator's DynamicFile: the
real rendered script, its boot and then its report timer, against the DynamoDB stand-in.

The file's shape is upstream's (kubernetes-sigs/aws-iam-authenticator):
`pkg/mapper/dynamicfile/dynamicfile.go` `DynamicFileData` (`mapRoles`, `mapUsers`,
`mapAccounts`, `Version`, `LastUpdatedDateTime`) with `pkg/config/types.go` `RoleMapping`
(`rolearn`, `username`, `groups`) and `UserMapping` (`userarn`, `username`, `groups`); its
`CallBackForFileLoad` refuses a file in which a mapping has no ARN. The authenticator reloads the
file when it is written or replaced (`pkg/fileutil/util.go`), so a replaced file is a served one."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from kubestep.bootstrap import authenticator_mapping, components
from kubestep.store import keys
from tests.bootstrap.conftest import ACCOUNT, ADMIN_ROLE, ADMIN_USER, SECRETS, admins_item, control_plane
from tests.bootstrap.harness import FIXTURES, Run, Sandbox

UID = "abcd1234"
SCRIPT = "/usr/local/sbin/kubestep-bootstrap"
MAPPING = "/etc/kubestep/aws-iam-authenticator/admins.json"
ADMINS_KEY = f"{keys.cluster_access_pk(UID)}|{keys.ADMINS_SK}"
# Upstream's JSON field names (the Go struct tags), exactly.
FILE_FIELDS = {"Version", "LastUpdatedDateTime", "mapRoles", "mapUsers", "mapAccounts"}
ROLE_FIELDS = {"rolearn", "username", "groups", "userid", "sso"}
USER_FIELDS = {"userarn", "username", "groups", "userid"}


@pytest.fixture(autouse=True)
def calico_fixture_checksum(monkeypatch):
    # The stubbed download serves an excerpt of the pinned manifest; pin the excerpt's checksum.
    digest = hashlib.sha256((FIXTURES / "calico-vxlan-standin.yaml").read_bytes()).hexdigest()
    pinned = components.calico_manifest
    monkeypatch.setattr(components, "calico_manifest", lambda minor: (pinned(minor)[0], digest))


def booted(tmp_path: Path, items: dict, **scenario) -> tuple[Sandbox, Run]:
    box = Sandbox(tmp_path, control_plane(0), {"secrets": SECRETS, "state": {"items": items}, **scenario})
    link = box.file("/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0")
    link.parent.mkdir(parents=True)
    box.file("/dev/nvme1n1").write_text("")
    link.symlink_to(box.file("/dev/nvme1n1"))
    run = box.run()
    assert run.returncode == 0, run.stderr
    return box, run


def set_items(box: Sandbox, change) -> None:
    state = json.loads(box.state.read_text())
    change(state["items"])
    box.state.write_text(json.dumps(state))


def set_scenario(box: Sandbox, **changes) -> None:
    path = box.base / "scenario.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def checks(run: Run) -> dict:
    """The checks of the run's report (its last AWS call; only the report's pacing, a systemctl
    call, follows it)."""
    last = [call for call in run.calls if call["cmd"] != "systemctl"][-1]
    assert last["cmd"] == "aws" and last["args"][:2] == ["dynamodb", "put-item"], last
    return json.loads(last["args"][last["args"].index("--item") + 1])["checks"]["M"]


def assert_upstream_shape(document: dict) -> None:
    assert set(document) <= FILE_FIELDS and {"Version", "mapRoles", "mapUsers"} <= set(document)
    assert isinstance(document["Version"], str)
    for role in document["mapRoles"]:
        assert set(role) <= ROLE_FIELDS and role["rolearn"] and role["username"] and role["groups"]
    for user in document["mapUsers"]:
        assert set(user) <= USER_FIELDS and user["userarn"] and user["username"] and user["groups"]


def test_the_boot_serves_the_item_and_a_new_generation_replaces_the_file(tmp_path):
    box, boot = booted(tmp_path, admins_item(1, uid=UID))
    served = box.file(MAPPING)
    first = json.loads(served.read_text())
    assert_upstream_shape(first)
    assert first == authenticator_mapping.render(admins_item(1, uid=UID)[ADMINS_KEY])
    assert first["Version"] == "1"
    assert first["mapRoles"] == [
        {"rolearn": ADMIN_ROLE, "username": f"{ADMIN_ROLE}/{{{{SessionName}}}}", "groups": ["kubestep:cluster-admins"]}
    ]
    assert first["mapUsers"] == [{"userarn": ADMIN_USER, "username": ADMIN_USER, "groups": ["kubestep:cluster-admins"]}]
    assert checks(boot)["adminsGeneration"] == {"N": "1"} and "adminsError" not in checks(boot)

    # The same generation again: the file is not touched (the authenticator sees no event).
    before = served.stat()
    again = box.run(SCRIPT, "report")
    assert again.returncode == 0, again.stderr
    after = served.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert checks(again)["adminsGeneration"] == {"N": "1"}

    # A new generation (another role, the user gone): a new file renamed over the old one.
    operator = f"arn:aws:iam::{ACCOUNT}:role/Operator"
    newer = admins_item(2, roles=(ADMIN_ROLE, operator), users=(), uid=UID)
    set_items(box, lambda items: items.update(newer))
    changed = box.run(SCRIPT, "report")
    assert changed.returncode == 0, changed.stderr
    second = json.loads(served.read_text())
    assert_upstream_shape(second)
    assert second == authenticator_mapping.render(newer[ADMINS_KEY])
    assert second["Version"] == "2" and [r["rolearn"] for r in second["mapRoles"]] == [ADMIN_ROLE, operator]
    assert second["mapUsers"] == []
    assert served.stat().st_ino != before.st_ino  # replaced, never rewritten in place
    assert served.stat().st_mode & 0o777 == 0o644  # the authenticator runs as a non-root user
    assert sorted(p.name for p in served.parent.iterdir() if p.name.startswith("admins")) == ["admins.json"]
    assert checks(changed)["adminsGeneration"] == {"N": "2"}


def test_an_unreadable_or_missing_item_keeps_the_mapping_served(tmp_path):
    box, _ = booted(tmp_path, admins_item(3, uid=UID))
    served = box.file(MAPPING)
    kept, before = served.read_text(), served.stat()

    set_scenario(box, fail=[r"dynamodb get-item .*ACCESS#.*ADMINS"])  # e.g. the role's grant missing
    refused = box.run(SCRIPT, "report")
    assert refused.returncode == 0, refused.stderr
    assert served.read_text() == kept and served.stat().st_ino == before.st_ino
    found = checks(refused)
    assert found["adminsGeneration"] == {"N": "3"}  # still served
    assert "stub: aws fails as the scenario asks" in found["adminsError"]["S"]
    assert found["apiserverReady"] == {"BOOL": True}  # the rest of the report as ever

    set_scenario(box, fail=[])
    set_items(box, lambda items: items.pop(ADMINS_KEY))
    missing = box.run(SCRIPT, "report")
    assert missing.returncode == 0, missing.stderr
    assert served.read_text() == kept
    assert checks(missing)["adminsGeneration"] == {"N": "3"}
    assert checks(missing)["adminsError"] == {"S": "the item does not exist"}


def test_a_boot_that_cannot_read_the_item_serves_no_mapping_rather_than_an_empty_one(tmp_path):
    """No file at all: the authenticator waits for it (upstream `waitUntilFileAvailable`) and maps
    nobody meanwhile; the report says why, and the next report writes it once the item reads."""
    box, boot = booted(tmp_path, admins_item(1, uid=UID), fail=[r"dynamodb get-item .*ACCESS#.*ADMINS"])
    assert not box.file(MAPPING).exists()
    found = checks(boot)
    assert "adminsGeneration" not in found and "adminsError" in found

    set_scenario(box, fail=[])
    recovered = box.run(SCRIPT, "report")
    assert recovered.returncode == 0, recovered.stderr
    assert json.loads(box.file(MAPPING).read_text())["Version"] == "1"
    assert checks(recovered)["adminsGeneration"] == {"N": "1"} and "adminsError" not in checks(recovered)
