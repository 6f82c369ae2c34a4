"""Run as a script by test_isolation: a runtime started from another's snapshot has its stack,
executions and records, and runs workflows as the first did."""

from __future__ import annotations

import sys
from pathlib import Path


def main(home: str, template: str) -> None:
    from kubestep_local.runtime import LocalRuntime, RuntimeConfig

    state = Path(home) / "deployed.pickle"
    config = RuntimeConfig(port=0, api_port=0, home=Path(home) / "first", time_scale=0.01)
    with LocalRuntime(config) as first:
        outputs = first.deploy(template)
        done = first.run_execution("Fanout", {"items": [0.1]}, name="before-snapshot")
        assert first.snapshot(state) == state
    config = RuntimeConfig(port=0, api_port=0, home=Path(home) / "second", time_scale=0.01, start_from=state)
    with LocalRuntime(config) as second:
        assert second.deploy(template) == outputs  # the stack in place: nothing created again
        sfn = second.boto3_client("stepfunctions")
        assert sfn.describe_execution(executionArn=done["executionArn"])["status"] == "SUCCEEDED"
        assert second.run_execution("Fanout", {"items": [0.1, 0.1]})["status"] == "SUCCEEDED"
        stacks = second.boto3_client("cloudformation").describe_stacks()["Stacks"]
        assert [s["StackStatus"] for s in stacks] == ["CREATE_COMPLETE"]
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
