"""What a Lambda function knows about its management service, read once per execution
environment from what the CDK stack sets (docs/contracts.md).

The management-service manifest lives in an SSM parameter (Lambda's 4 KB environment limit is
too small for a manifest with many tags), read with Powertools Parameters; tests and the local
runtime may set it inline (KUBESTEP_MANAGEMENT_SERVICE)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache

from kubestep.iam_policies import Account
from kubestep.models import AWSManagementService


@dataclass(frozen=True)
class Settings:
    service: AWSManagementService
    table_name: str
    state_machine_arn_prefix: str
    kms_key_arn: str
    table_arn: str = ""
    # Per-cluster instance roles (kubestep.resources.instance_roles): their IAM path and the
    # permissions boundary every one of them is created under.
    instance_role_path: str = "/"
    instance_role_boundary_arn: str = ""
    # The local runtime compresses time; deadlines in handlers scale with it.
    time_scale: float = 1.0
    # Only the local runtime sets it: the upgrade planner then takes "now" from its input (the
    # scheduled event's time), so `kubestep local tick --at TIME` can try any maintenance window.
    local_clock: bool = False
    # The role EventBridge Scheduler assumes to start one-off upgrades.
    scheduler_role_arn: str = ""
    # The service's etcd backup bucket (kubestep/backups.py).
    backup_bucket: str = ""

    @property
    def service_name(self) -> str:
        return self.service.name

    def state_machine_arn(self, workflow: str) -> str:
        return f"{self.state_machine_arn_prefix}{workflow}"

    @property
    def region(self) -> str:
        return self.service.spec.region

    @property
    def account(self) -> Account:
        """Partition, region and account, from the table's ARN (arn:<partition>:dynamodb:<region>:<account>:…)."""
        parts = (self.table_arn or self.state_machine_arn_prefix).split(":")
        if len(parts) < 5:
            return Account("aws", self.region, "000000000000")
        return Account(parts[1], parts[3], parts[4])


def _manifest(env: os._Environ) -> AWSManagementService:
    inline = env.get("KUBESTEP_MANAGEMENT_SERVICE")
    if inline:
        return AWSManagementService.model_validate(json.loads(inline))
    from aws_lambda_powertools.utilities.parameters import SSMProvider

    from kubestep.aws import client

    # Cached for the execution environment's life: the stack changes it only with a deploy,
    # which also updates the functions (and so starts new environments). Through the process's
    # own client: Powertools' default provider would start a session of its own.
    provider = SSMProvider(boto3_client=client("ssm"))
    text = provider.get(env["KUBESTEP_MANAGEMENT_SERVICE_PARAMETER"], max_age=3600)
    return AWSManagementService.model_validate(json.loads(text))


@cache
def settings() -> Settings:
    env = os.environ
    return Settings(
        service=_manifest(env),
        table_name=env["KUBESTEP_TABLE_NAME"],
        table_arn=env.get("KUBESTEP_TABLE_ARN", ""),
        state_machine_arn_prefix=env.get("KUBESTEP_STATE_MACHINE_ARN_PREFIX", ""),
        kms_key_arn=env.get("KUBESTEP_KMS_KEY_ARN", ""),
        instance_role_path=env.get("KUBESTEP_INSTANCE_ROLE_PATH", "/"),
        instance_role_boundary_arn=env.get("KUBESTEP_INSTANCE_ROLE_BOUNDARY_ARN", ""),
        time_scale=float(env.get("KUBESTEP_LOCAL_TIME_SCALE", "1")),
        local_clock=env.get("KUBESTEP_LOCAL_CLOCK") == "1",
        scheduler_role_arn=env.get("KUBESTEP_SCHEDULER_ROLE_ARN", ""),
        backup_bucket=env.get("KUBESTEP_BACKUP_BUCKET", ""),
    )
