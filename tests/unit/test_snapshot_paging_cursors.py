"""The local runtime's state snapshots survive the paging cursors moto keeps between two pages.

moto's Resource Groups Tagging API keeps the generator behind a PaginationToken in its backend
(moto/resourcegroupstaggingapi/models.py `_pages`); once DeleteCluster had looked for what
Kubernetes left (GetResources), every later snapshot failed with "cannot pickle 'generator'
object" and `kubestep local down` refused to stop without losing the clusters."""

from __future__ import annotations

import io
import pickle

import boto3
from moto import mock_aws

from kubestep_local.moto_compat import snapshot_state
from kubestep_local.moto_compat.snapshots import _StatePickler


@mock_aws
def test_a_snapshot_taken_between_two_pages_of_get_resources_succeeds() -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    for i in range(3):
        ec2.create_vpc(
            CidrBlock=f"10.{i}.0.0/16",
            TagSpecifications=[
                {"ResourceType": "vpc", "Tags": [{"Key": "kubernetes.io/cluster/abcd1234", "Value": "owned"}]}
            ],
        )
    tagging = boto3.client("resourcegroupstaggingapi", region_name="us-east-1")
    page = tagging.get_resources(TagFilters=[{"Key": "kubernetes.io/cluster/abcd1234"}], ResourcesPerPage=1)
    assert page["PaginationToken"], "a cursor is left in moto's backend"
    assert snapshot_state()  # raised SnapshotError ("cannot pickle 'generator' object") before


def test_a_cursor_comes_back_exhausted() -> None:
    cursor = (n for n in range(3))
    buffer = io.BytesIO()
    _StatePickler(buffer, []).dump({"gen": cursor})
    assert list(pickle.loads(buffer.getvalue())["gen"]) == []
