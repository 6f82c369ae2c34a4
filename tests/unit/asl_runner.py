"""A small in-process interpreter of the rendered ASL, for fast domain tests against
in-process moto: the steps run in exactly the order the workflow declaration renders (Task,
Pass, Choice, Map, Parallel, Succeed, Fail; Retry of `ResourcePending` without sleeping; Catch), and a
test may hook a state to play an instance's part. The workflow tests run the same definitions
through moto's real ASL interpreter."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubestep.flow.dispatch import run_step
from kubestep.settings import Settings
from kubestep.store import Store
from kubestep.workflows import dispatch_table, workflow


class ExecutionFailed(Exception):
    def __init__(self, error: str, cause: str):
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


@dataclass
class Run:
    name: str
    arn: str
    input: Any
    entered: list[str] = field(default_factory=list)
    output: Any = None


def resolve(path: str, data: Any, context: dict) -> Any:
    if path == "$":
        return data
    if path.startswith("$$."):
        value: Any = context
        parts = path[3:].split(".")
    else:
        value = data
        parts = path[2:].split(".")
    for part in parts:
        value = value[part]
    return value


def render(template: Any, data: Any, context: dict) -> Any:
    if isinstance(template, dict):
        out = {}
        for key, value in template.items():
            if key.endswith(".$"):
                out[key[:-2]] = resolve(value, data, context)
            else:
                out[key] = render(value, data, context)
        return out
    if isinstance(template, list):
        return [render(v, data, context) for v in template]
    return template


def put(data: Any, path: str | None, value: Any) -> Any:
    if path is None:
        return data
    if path == "$":
        return value
    out = copy.deepcopy(data)
    target = out
    parts = path[2:].split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value
    return out


class Interpreter:
    def __init__(
        self,
        workflow_name: str,
        settings: Settings,
        store: Store,
        *,
        hooks: dict[str, Callable[[dict], None]] | None = None,
    ):
        self.workflow = workflow(workflow_name)
        self.definition = self.workflow.render()
        self.settings = settings
        self.store = store
        self.hooks = hooks or {}

    def run(self, execution_input: Any, name: str) -> Run:
        arn = f"arn:aws:states:us-east-1:123456789012:execution:unit-{self.workflow.name}:{name}"
        run = Run(name, arn, execution_input)
        context = {
            "Execution": {"Name": name, "Id": arn, "Input": execution_input, "StartTime": "2026-12-05T03:30:00Z"}
        }
        try:
            run.output = self._states(self.definition, execution_input, context, run)
        except ExecutionFailed as exc:
            exc.run = run  # type: ignore[attr-defined]
            raise
        return run

    def _states(self, machine: dict, data: Any, context: dict, run: Run) -> Any:
        name = machine["StartAt"]
        states = machine["States"]
        while True:
            state = states[name]
            run.entered.append(name)
            kind = state["Type"]
            try:
                if kind == "Task":
                    result = self._task(name, state, data, context)
                    if "ResultSelector" in state:
                        result = render(state["ResultSelector"], {"Payload": result}, context)
                    data = put(data, state.get("ResultPath", "$"), result)
                elif kind == "Pass":
                    value = render(state["Parameters"], data, context) if "Parameters" in state else data
                    data = put(data, state.get("ResultPath", "$"), value)
                elif kind == "Map":
                    items = resolve(state["ItemsPath"], data, context)
                    for index, item in enumerate(items):
                        item_context = {**context, "Map": {"Item": {"Value": item, "Index": index}}}
                        item_input = render(state["ItemSelector"], data, item_context)
                        try:
                            self._states(state["ItemProcessor"], item_input, item_context, run)
                        except ExecutionFailed as failed:
                            # A failed iteration fails the Map state itself, whose Catch applies.
                            raise _StepError(failed.error, failed.cause) from None
                    data = put(data, state.get("ResultPath", "$"), items)
                elif kind == "Parallel":
                    # One branch after the other, in order: the first branch's instances have
                    # "booted" (the tests' hooks) before the next one needs them.
                    outputs = []
                    for branch in state["Branches"]:
                        try:
                            outputs.append(self._states(branch, data, context, run))
                        except ExecutionFailed as failed:
                            raise _StepError(failed.error, failed.cause) from None
                    data = put(data, state.get("ResultPath", "$"), outputs)
                elif kind == "Choice":
                    name = self._choose(state, data)
                    continue
                elif kind == "Succeed":
                    return data
                elif kind == "Fail":
                    error = resolve(state["ErrorPath"], data, context) if "ErrorPath" in state else state.get("Error")
                    cause = resolve(state["CausePath"], data, context) if "CausePath" in state else state.get("Cause")
                    raise ExecutionFailed(str(error), str(cause))
            except ExecutionFailed:
                raise
            except _StepError as exc:
                catch = next(
                    (c for c in state.get("Catch", []) if {"States.ALL", exc.error} & set(c["ErrorEquals"])), None
                )
                if catch is None:
                    raise ExecutionFailed(exc.error, exc.cause) from None
                data = put(data, catch.get("ResultPath", "$"), {"Error": exc.error, "Cause": exc.cause})
                name = catch["Next"]
                continue
            if state.get("End"):
                return data
            name = state["Next"]

    def _task(self, name: str, state: dict, data: Any, context: dict) -> Any:
        payload = render(state["Parameters"]["Payload"], data, context)
        # A task may name another function than its workflow's (`${ClusterTasksFunctionArn}`).
        function = state["Parameters"]["FunctionName"].removeprefix("${").removesuffix("FunctionArn}")
        spec = dispatch_table(function)[payload["task"]]
        retries = [r for r in state.get("Retry", []) if {"ResourcePending", "ResourceSettling"} & set(r["ErrorEquals"])]
        attempts = 1 + sum(r["MaxAttempts"] for r in retries)
        for attempt in range(attempts):
            if name in self.hooks:
                self.hooks[name](payload)
            try:
                return json.loads(json.dumps(run_step(spec, payload, self.settings, self.store)))
            except Exception as exc:  # noqa: BLE001 - surfaces as a Step Functions error
                error = type(exc).__name__
                if error in ("ResourcePending", "ResourceSettling") and attempt + 1 < attempts:
                    continue
                raise _StepError(error, json.dumps({"errorMessage": str(exc), "errorType": error})) from exc
        raise AssertionError("unreachable")

    @staticmethod
    def _choose(state: dict, data: Any) -> str:
        for choice in state["Choices"]:
            value = resolve(choice["Variable"], data, {})
            if "BooleanEquals" in choice and value == choice["BooleanEquals"]:
                return choice["Next"]
            if "StringEquals" in choice and value == choice["StringEquals"]:
                return choice["Next"]
        return state["Default"]


class _StepError(Exception):
    def __init__(self, error: str, cause: str):
        super().__init__(error)
        self.error = error
        self.cause = cause
