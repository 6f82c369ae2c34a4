"""What a Lambda function (or the CLI acting as one) knows about its management service,
read once from the environment the CDK stack sets (docs/contracts.md)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache

from kubestep.models import AWSManagementService


@dataclass(frozen=True)
class Settings:
    service: AWSManagementService
    table_name: str
    state_machine_arn_prefix: str
    control_plane_instance_profile_arn: str
    node_instance_profile_arn: str
    kms_key_arn: str
    # The local runtime compresses time; deadlines in handlers scale with it.
    time_scale: float = 1.0

    @property
    def service_name(self) -> str:
        return self.service.name

    def state_machine_arn(self, workflow: str) -> str:
        return f"{self.state_machine_arn_prefix}{workflow}"

    @property
    def region(self) -> str:
        return self.service.spec.region


@cache
def settings() -> Settings:
    env = os.environ
    return Settings(
        service=AWSManagementService.model_validate(json.loads(env["KUBESTEP_MANAGEMENT_SERVICE"])),
        table_name=env["KUBESTEP_TABLE_NAME"],
        state_machine_arn_prefix=env.get("KUBESTEP_STATE_MACHINE_ARN_PREFIX", ""),
        control_plane_instance_profile_arn=env.get("KUBESTEP_CONTROL_PLANE_INSTANCE_PROFILE_ARN", ""),
        node_instance_profile_arn=env.get("KUBESTEP_NODE_INSTANCE_PROFILE_ARN", ""),
        kms_key_arn=env.get("KUBESTEP_KMS_KEY_ARN", ""),
        time_scale=float(env.get("KUBESTEP_LOCAL_TIME_SCALE", "1")),
    )
