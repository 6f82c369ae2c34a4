"""The report item the local instance simulator writes has the shape the script writes."""

from __future__ import annotations

from kubestep.bootstrap.report import record_report, report_item
from kubestep.bootstrap_report import record_report as compat_record_report


class Recorder:
    def __init__(self):
        self.items = []

    def put_item(self, TableName, Item):  # noqa: N803 - boto3's argument names
        self.items.append((TableName, Item))


def test_record_report_writes_status_version_and_checks():
    dynamodb = Recorder()
    record_report(
        "svc-kubestep",
        "abcd1234",
        "control-plane",
        "REPLICA#1",
        "ok",
        "i-0123",
        dynamodb=dynamodb,
        version="1.32.4",
        checks={"etcdMembers": 3, "etcdHealthy": True, "apiserverReady": True},
    )
    table, item = dynamodb.items[0]
    assert table == "svc-kubestep"
    assert item["pk"] == {"S": "BOOTSTRAP#abcd1234"} and item["sk"] == {"S": "REPLICA#1"}
    assert item["checks"] == {
        "M": {"etcdMembers": {"N": "3"}, "etcdHealthy": {"BOOL": True}, "apiserverReady": {"BOOL": True}}
    }
    assert item["version"] == {"S": "1.32.4"} and item["reportedAt"]["S"].endswith("Z")


def test_the_old_module_still_records():
    dynamodb = Recorder()
    compat_record_report("t", "abcd1234", "node", "NODE#i-1", "failed:kubeadm-join", "i-1", dynamodb=dynamodb)
    assert set(dynamodb.items[0][1]) == {"pk", "sk", "status", "instanceId", "reportedAt"}


def test_same_attributes_as_the_script_report():
    # The script's report (tests/bootstrap/test_script_*.py) carries exactly these attributes.
    assert set(report_item("u", "NODE#i", "ok", "i", version="1", checks={"nodeReady": True})) == {
        "pk",
        "sk",
        "status",
        "instanceId",
        "reportedAt",
        "version",
        "checks",
    }
