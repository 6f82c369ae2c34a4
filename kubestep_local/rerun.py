"""A finished operation's steps run again, to count what they change: every step must find what
it made and keep it, so a re-run of a finished create makes no mutating AWS call.

The steps are the deployed state machine's own Task states, in the order of its success path
(a Map's items from the outputs of the steps before it, as the interpreter passes them), each
invoked on its deployed function with the payload the state renders and the finished
execution's own name and id (the same operation: its idempotency tokens and deadlines). The
states that read the execution's input (validation, the lock: `request.$`) are left out: a
finished cluster's lock is refused by design, and they make no AWS resource.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kubestep_local.bench import is_read

# The management service's own records (a step re-writes its cluster's phase, a deadline): not
# an AWS resource a re-run could duplicate or change.
RECORD_SERVICES = ("dynamodb:",)


@dataclass
class Rerun:
    """What the re-run did: the steps it invoked, their errors, the mutating calls by action."""

    steps: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    mutating: Counter[str] = field(default_factory=Counter)
    record_writes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "steps": len(self.steps),
            "mutatingCalls": sum(self.mutating.values()),
            "mutatingByAction": dict(self.mutating.most_common()),
            "recordWrites": self.record_writes,
            "errors": self.errors,
        }


def rerun_steps(runtime: Any, execution_arn: str, cluster_name: str) -> Rerun:
    """Invoke every Task of the finished execution's success path again; count what mutated."""
    sfn = runtime.boto3_client("stepfunctions")
    execution = sfn.describe_execution(executionArn=execution_arn)
    machine = sfn.describe_state_machine(stateMachineArn=execution["stateMachineArn"])
    definition = json.loads(machine["definition"])
    context = {"Execution": {"Name": execution["name"], "Id": execution_arn}}
    before = len(runtime.recorder.call_records())
    result = Rerun()
    _walk(runtime.boto3_client("lambda"), definition, {"clusterName": cluster_name}, context, result)
    for call in runtime.recorder.call_records()[before:]:
        if call.operation_id != execution["name"] or is_read(call):
            continue
        if call.action.startswith(RECORD_SERVICES):
            result.record_writes += 1
        else:
            result.mutating[call.action] += 1
    return result


def _walk(lambda_: Any, branch: dict[str, Any], data: dict[str, Any], context: dict, result: Rerun) -> None:
    states, name = branch["States"], branch["StartAt"]
    while name is not None:
        state = states[name]
        kind = state["Type"]
        if kind == "Task" and "request.$" not in state["Parameters"]["Payload"]:
            output = _invoke(lambda_, name, state, data, context, result)
            if output is not None and state.get("ResultPath"):
                _put(data, state["ResultPath"], _select(state.get("ResultSelector"), {"Payload": output}))
        elif kind == "Map":
            for item in _get(data, state["ItemsPath"]) or []:
                selected = {
                    key.removesuffix(".$"): (item if path == "$$.Map.Item.Value" else _get(data, path))
                    for key, path in state["ItemSelector"].items()
                }
                _walk(lambda_, state["ItemProcessor"], selected, context, result)
        elif kind == "Parallel":
            for inner in state["Branches"]:
                _walk(lambda_, inner, data, context, result)
        elif kind in ("Succeed", "Fail"):
            return
        name = state.get("Default") if kind == "Choice" else state.get("Next")


def _invoke(lambda_: Any, name: str, state: dict, data: dict, context: dict, result: Rerun) -> Any:
    payload = {}
    for key, value in state["Parameters"]["Payload"].items():
        if key.endswith(".$"):
            payload[key.removesuffix(".$")] = _context(context, value) if value.startswith("$$.") else _get(data, value)
        else:
            payload[key] = value
    answer = lambda_.invoke(FunctionName=state["Parameters"]["FunctionName"], Payload=json.dumps(payload))
    body = json.loads(answer["Payload"].read() or b"null")
    result.steps.append(name)
    if answer.get("FunctionError"):
        result.errors[name] = f"{body.get('errorType')}: {body.get('errorMessage')}"
        return None
    return body


def _context(context: dict, path: str) -> Any:
    value: Any = context
    for part in path.removeprefix("$$.").split("."):
        value = value[part]
    return value


def _get(data: dict, path: str) -> Any:
    value: Any = data
    for part in path.removeprefix("$").strip(".").split("."):
        if not part:
            continue
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _put(data: dict, path: str, value: Any) -> None:
    parts = path.removeprefix("$").strip(".").split(".")
    target = data
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def _select(selector: dict | None, output: dict) -> Any:
    if not selector:
        return output
    return {key.removesuffix(".$"): _get(output, path) for key, path in selector.items()}
