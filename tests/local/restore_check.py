"""Run as a script by test_isolation: start and stop a runtime, check moto is restored."""

from __future__ import annotations

import os
import sys
import threading
import time

import moto.stepfunctions.models as sfn_models
from moto.awslambda.models import LambdaFunction
from moto.core.config import default_user_config
from moto.stepfunctions.models import StepFunctionBackend
from moto.stepfunctions.parser.models import StepFunctionsParserBackend


def snapshot() -> tuple:
    return (
        sfn_models.stepfunctions_backends,
        dict(default_user_config.get("stepfunctions", {})),
        LambdaFunction.__dict__["_invoke_lambda"],
        StepFunctionsParserBackend.__dict__["start_execution"],
        os.environ.get("MOTO_PORT"),
    )


def main(home: str, template: str) -> None:
    from kubestep_local.runtime import LocalRuntime, RuntimeConfig

    before = snapshot()
    threads_before = set(threading.enumerate())
    runtime = LocalRuntime(RuntimeConfig(port=0, api_port=0, home=home))
    runtime.start()
    assert default_user_config["stepfunctions"]["execute_state_machine"] is True
    assert LambdaFunction.__dict__["_invoke_lambda"] is not before[2]
    runtime.deploy(template)
    runtime.run_execution("Fanout", {"items": [0.1, 0.1, 0.1]})
    runtime.run_execution("Failing", {}, check=False)
    # One still running when the runtime stops (a 30 s Wait at scale 1.0).
    runtime.start_execution("RetryCatch", {})
    runtime.stop()
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - threads_before and time.monotonic() < deadline:
        time.sleep(0.05)
    leaked = set(threading.enumerate()) - threads_before
    assert not leaked, [t.name for t in leaked]
    after = snapshot()
    for index, (old, new) in enumerate(zip(before, after, strict=True)):
        assert old is new or old == new, (index, old, new)
    # Step Functions requests mock_aws answers after the runtime reach the plain backends (the
    # responses module, imported by the runtime's first request, keeps what it bound then).
    from moto.stepfunctions import responses

    assert responses.get_backend("123456789012", "us-east-1").__class__ is StepFunctionBackend
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
