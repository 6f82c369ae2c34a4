"""The report item the store writes (the local instance simulator plays the instance with it)
has the attributes the instance's script writes, under the keys the store defines."""

from __future__ import annotations

import re

from kubestep.bootstrap import cloud_init
from kubestep.store import keys
from kubestep.store.records import BootstrapReport


def test_the_script_writes_the_attributes_the_store_reads():
    script = cloud_init.script("bootstrap.sh")
    body = script[script.index("report() {") : script.index("on_error() {")]
    written = set(re.findall(r'\\"(\w+)\\":\{\\"[SMN]', body))
    stored = {BootstrapReport.attribute(f) for f in BootstrapReport.model_fields if f != "key"}
    assert written == {"pk", "sk", *stored}, written


def test_the_script_takes_its_keys_from_the_store():
    script = cloud_init.script("bootstrap.sh")
    for literal in ("BOOTSTRAP#", "REPLICA#", "NODE#"):
        assert literal not in script
    for variable in (
        "REPORT_PK",
        "REPLICA_REPORT_PREFIX",
        "NODE_REPORT_PREFIX",
        "NODE_REPORT_PK_PREFIX",
        "INIT_CLAIM_PK",
        "INIT_CLAIM_SK",
    ):
        assert f"${variable}" in script
    assert keys.INIT_CLAIM_SK == "INIT"


def test_the_rendered_keys_are_the_ones_the_store_reads():
    """A node's report partition is the store's for its instance ARN (the script appends its
    instance id to the rendered prefix); a replica's and the init claim's are the store's."""
    from tests.bootstrap.conftest import control_plane, node

    env = cloud_init.environment(node())
    arn = "arn:aws:ec2:us-east-1:123456789012:instance/i-0abc"
    assert env["NODE_REPORT_PK_PREFIX"] + "i-0abc" == keys.node_report_pk(node().uid, arn)
    replica = cloud_init.environment(control_plane(1))
    assert replica["REPORT_PK"] == keys.bootstrap_pk(control_plane().uid)
    assert replica["INIT_CLAIM_PK"] == keys.init_claim_pk(control_plane().uid) != replica["REPORT_PK"]
