"""The CLI against the real API function in-process: in-process moto (the table, the state
machines as Pass states whose executions stay RUNNING, a READY network) behind a loopback HTTP
gateway, one per test module so a module's many cases share it. The CLI runs in-process too
(click's runner), as a user runs it: it only knows the gateway's URL.

The emulator-backed end-to-end path (real workflows) is tests/cli/."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result
from moto import mock_aws

from kubestep.cli.main import main
from kubestep.store import Store
from tests.api.conftest import PASS, PREFIX, WORKFLOWS, _clear_caches
from tests.api.helpers import LocalGateway
from tests.unit.conftest import EXAMPLES, TABLE, configure, create_table, load_service

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Service:
    store: Store
    gateway: LocalGateway
    home: Path

    def executions(self, workflow: str = "CreateCluster") -> list[dict[str, Any]]:
        sfn = boto3.client("stepfunctions", "us-east-1")
        return sfn.list_executions(stateMachineArn=f"{PREFIX}{workflow}")["executions"]

    def sent(self) -> list[tuple[str, str]]:
        return [(r["method"], r["path"]) for r in self.gateway.requests]

    def run(self, *args: str, input: str | bytes | None = None, env: dict[str, str | None] | None = None) -> Result:
        """`kubestep ARGS` against this service, with its own $KUBESTEP_HOME (env None: unset)."""
        environment = {
            "KUBESTEP_HOME": str(self.home),
            "KUBESTEP_API_URL": self.gateway.url,
            "KUBESTEP_CONTEXT": "",
            "KUBESTEP_DEBUG": "",
            **(env or {}),
        }
        return CliRunner().invoke(main, list(args), input=input, env=environment, prog_name="kubestep")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "POWERTOOLS_SERVICE_NAME": "kubestep",
            "POWERTOOLS_METRICS_NAMESPACE": "kubestep",
            "POWERTOOLS_TRACE_DISABLED": "true",
            # The API function runs in this process: its logs and metrics must not land in the
            # CLI's captured stdout.
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
        }.items():
            patch.setenv(key, value)
        for key in ("AWS_PROFILE", "AWS_REGION", "KUBESTEP_API_URL", "KUBESTEP_CONTEXT"):
            patch.delenv(key, raising=False)
        _clear_caches()
        with mock_aws():
            create_table()
            sfn = boto3.client("stepfunctions", "us-east-1")
            for workflow in WORKFLOWS:
                sfn.create_state_machine(
                    name=f"unit-{workflow}", definition=PASS, roleArn="arn:aws:iam::123456789012:role/unit-sfn"
                )
            configure(patch, load_service(EXAMPLES / "management-service.yaml"))
            store = Store.for_table(TABLE)
            store.network.update(status="READY")
            with LocalGateway() as gateway:
                yield Service(store, gateway, tmp_path_factory.mktemp("kubestep-home"))
        _clear_caches()
