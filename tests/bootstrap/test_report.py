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
    for variable in ("REPORT_PK", "REPLICA_REPORT_PREFIX", "NODE_REPORT_PREFIX", "INIT_CLAIM_SK"):
        assert f"${variable}" in script
    assert keys.INIT_CLAIM_SK == "INIT"
