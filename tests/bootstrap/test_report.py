"""The report item the store writes (the local instance simulator plays the instance with it)
has the attributes the instance's script writes, under the keys the store defines."""

from __future__ import annotations

import re

from kubestep.bootstrap import cloud_init
from kubestep.store import keys
from kubestep.store.records import BootstrapReport, VersionClaim
from kubestep.store.reports import INIT_CLAIM_ATTRIBUTES, REPORT_ATTRIBUTES, VERSION_CLAIM_ATTRIBUTES


def test_the_script_writes_the_attributes_the_store_reads():
    script = cloud_init.script("bootstrap.sh")
    body = script[script.index("report() {") : script.index("on_error() {")]
    written = set(re.findall(r'\\"(\w+)\\":\{\\"[SMN]', body))
    stored = {BootstrapReport.attribute(f) for f in BootstrapReport.model_fields if f != "key"}
    assert written == {"pk", "sk", *stored}, written
    # Exactly what the instance roles may write into a report (dynamodb:Attributes).
    assert written == set(REPORT_ATTRIBUTES)


def test_the_claims_the_script_writes_have_the_attributes_the_roles_may_write():
    """A claim's conditional put, then its outcome (`mark_claim`: the init claim's
    `initializedAt`, a version claim's `doneAt`): the attributes the control-plane role's
    policy lists for each partition, and for a version claim the store's VersionClaim."""
    script = cloud_init.script("bootstrap.sh")
    body = script[script.index("put_claim() {") : script.index("claim_initialisation() {")]
    put = set(re.findall(r'\\"(\w+)\\":\{\\"[SMN]', body))
    assert put == {"pk", "sk", "status", "replica", "instanceId", "claimedAt"}, put
    assert 'mark_claim "$INIT_CLAIM_PK" "$INIT_CLAIM_SK" initialized initializedAt' in script
    assert "${4:-doneAt}" in script
    assert set(INIT_CLAIM_ATTRIBUTES) == put | {"initializedAt"}
    assert set(VERSION_CLAIM_ATTRIBUTES) == put | {"doneAt"}
    claim = {VersionClaim.attribute(f) for f in VersionClaim.model_fields}
    assert set(VERSION_CLAIM_ATTRIBUTES) == {"pk", "sk"} | claim


def test_the_script_takes_its_keys_from_the_store():
    script = cloud_init.script("bootstrap.sh")
    for literal in ("BOOTSTRAP#", "REPLICA#", "NODE#", "UPGRADE#", "ADDONS#", "#VERSION", "#INIT"):
        assert literal not in script
    for variable in (
        "REPORT_PK",
        "REPLICA_REPORT_PREFIX",
        "NODE_REPORT_PREFIX",
        "NODE_REPORT_PK_PREFIX",
        "INIT_CLAIM_PK",
        "INIT_CLAIM_SK",
        "VERSION_CLAIM_PK",
        "UPGRADE_CLAIM_PREFIX",
        "ADDONS_CLAIM_PREFIX",
    ):
        assert f"${variable}" in script
    assert keys.INIT_CLAIM_SK == "INIT"


def test_the_rendered_keys_are_the_ones_the_store_reads():
    """A node's report partition is the store's for its instance ARN (the script appends its
    instance id to the rendered prefix); a replica's, the init claim's and the version claims'
    are the store's, three distinct partitions; a node gets no claim's key."""
    from tests.bootstrap.conftest import control_plane, node

    env = cloud_init.environment(node())
    arn = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"
    assert env["NODE_REPORT_PK_PREFIX"] + "i-0abc" == keys.node_report_pk(node().uid, arn)
    replica = cloud_init.environment(control_plane(1))
    assert replica["REPORT_PK"] == keys.bootstrap_pk(control_plane().uid)
    assert replica["INIT_CLAIM_PK"] == keys.init_claim_pk(control_plane().uid) != replica["REPORT_PK"]
    assert replica["VERSION_CLAIM_PK"] == keys.version_claim_pk(control_plane().uid)
    assert len({replica["REPORT_PK"], replica["INIT_CLAIM_PK"], replica["VERSION_CLAIM_PK"]}) == 3
    assert replica["UPGRADE_CLAIM_PREFIX"] == keys.UPGRADE_CLAIM_PREFIX
    assert replica["ADDONS_CLAIM_PREFIX"] == keys.ADDONS_CLAIM_PREFIX
    assert not {"INIT_CLAIM_PK", "VERSION_CLAIM_PK", "UPGRADE_CLAIM_PREFIX", "ADDONS_CLAIM_PREFIX"} & set(env)
