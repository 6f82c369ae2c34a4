"""In-process moto for domain-level tests: the task functions called in the order the state
machines call them, without Step Functions. The workflow tests run the real ASL."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
import yaml
from moto import mock_aws

from kubestep import settings as settings_module
from kubestep.models import AWSManagementService, dump
from kubestep.store import Store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TABLE = "unit-kubestep"
BUCKET = "unit-kubestep-state"


def create_bucket(region: str = "us-east-1") -> None:
    """The service's bucket (infra/backups.py): backups and the instances' bootstrap bundles."""
    boto3.client("s3", region).create_bucket(Bucket=BUCKET)


def create_table(region: str = "us-east-1") -> None:
    """The table as infra/state_table.py declares it (keys, two GSIs)."""
    names = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
    boto3.client("dynamodb", region).create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in names],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": f"{index}pk", "KeyType": "HASH"},
                    {"AttributeName": f"{index}sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in ("gsi1", "gsi2")
        ],
    )


def load_service(path: Path) -> AWSManagementService:
    return AWSManagementService.model_validate(yaml.safe_load(path.read_text()))


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    from kubestep import aws as aws_module

    aws_module.client.cache_clear()

    aws_module.session.cache_clear()
    from kubestep_local import moto_compat

    # The emulator's moto performance patches (the same answers, tests/local/test_moto_speed.py),
    # as the embedded runtime applies them: moto's generic serializer walking every DynamoDB item
    # cost more than the tests' own work.
    patches = moto_compat.PatchSet()
    moto_compat.fix_moto_performance(patches)
    try:
        with mock_aws():
            create_table()
            create_bucket()
            moto_compat.publish_ubuntu_images("123456789012", "us-east-1")
            yield
    finally:
        patches.undo()
    aws_module.client.cache_clear()
    aws_module.session.cache_clear()
    settings_module.settings.cache_clear()


def configure(monkeypatch, service: AWSManagementService) -> settings_module.Settings:
    monkeypatch.setenv("KUBESTEP_MANAGEMENT_SERVICE", json.dumps(dump(service)))
    monkeypatch.setenv("KUBESTEP_TABLE_NAME", TABLE)
    monkeypatch.setenv("KUBESTEP_BACKUP_BUCKET", BUCKET)
    monkeypatch.setenv("KUBESTEP_TABLE_ARN", f"arn:aws:dynamodb:us-east-1:123456789012:table/{TABLE}")
    monkeypatch.setenv("KUBESTEP_INSTANCE_ROLE_PATH", "/kubestep/unit/")
    monkeypatch.setenv("KUBESTEP_STATE_MACHINE_ARN_PREFIX", "arn:aws:states:us-east-1:123456789012:stateMachine:unit-")
    monkeypatch.setenv("KUBESTEP_SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/unit-upgrade-scheduler")
    settings_module.settings.cache_clear()
    return settings_module.settings()


@pytest.fixture
def store(aws) -> Store:
    return Store.for_table(TABLE)
