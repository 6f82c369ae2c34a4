"""A workflow declared once in Python, rendered to Amazon States Language (JSONPath).

A `Workflow` is a list of chains; each chain is a list of states linked in order (a state's
`Next` is the state after it), ending in a terminal state (`Succeed`, `Fail`, `Choice`) or a
state with an explicit `next`. `Task` states name a `@step` function; their payload, retry
policy (Lambda service errors, throttling, and for waiting steps `ResourcePending` with the
budget derived from the step's `Poll`) and result handling come from the declaration. The
rendered files are checked in (`stepfunctions/<Workflow>.asl.json`), so the template holds a
literal definition cfn-lint validates and Workflow Studio shows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from kubestep.flow.steps import StepSpec, spec_of

GENERATED_NOTE = "Generated from {module} by `python -m kubestep.workflows`; do not edit by hand."

# AWS's recommended retry for the Lambda service's own transient errors
# (https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html).
LAMBDA_SERVICE_ERRORS = (
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
)
LAMBDA_RETRY = {
    "ErrorEquals": list(LAMBDA_SERVICE_ERRORS),
    "IntervalSeconds": 2,
    "MaxAttempts": 6,
    "BackoffRate": 2,
    "JitterStrategy": "FULL",
}
# An AWS API still throttling after botocore's adaptive retries: back off at the state level.
THROTTLED_RETRY = {
    "ErrorEquals": ["Throttled"],
    "IntervalSeconds": 5,
    "MaxAttempts": 6,
    "BackoffRate": 2,
    "JitterStrategy": "FULL",
}


def pending_retries(spec: StepSpec) -> list[dict]:
    policy = spec.pending_policy
    # No jitter: the budget must be what the step's deadline needs, not a random fraction of it.
    pending = {
        "ErrorEquals": ["ResourcePending"],
        "IntervalSeconds": policy.interval,
        "MaxAttempts": policy.max_attempts,
        "BackoffRate": policy.backoff,
        "MaxDelaySeconds": policy.max_delay,
    }
    if not policy.first:
        return [pending]
    # A step raises ResourceSettling once per operation; a second attempt (a Lambda error
    # retried in between) must not exhaust the retrier, so it allows two.
    settling = {
        "ErrorEquals": ["ResourceSettling"],
        "IntervalSeconds": policy.first,
        "MaxAttempts": 2,
        "BackoffRate": 1,
    }
    return [settling, pending]


@dataclass
class Catch:
    next: str
    result_path: str = "$.error"
    errors: tuple[str, ...] = ("States.ALL",)


class State:
    name: str
    comment: str | None
    next: str | None
    catch: Catch | None

    terminal = False

    def render(self, workflow: Workflow) -> dict[str, Any]:
        raise NotImplementedError

    def children(self) -> list[list[State]]:
        return []

    def with_catch(self, catch: Catch) -> State:
        return self

    def _common(self, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.comment:
            out["Comment"] = self.comment
        out.update(body)
        return out


@dataclass
class Task(State):
    """A Lambda task running `step` with the workflow's base payload plus `args`."""

    step: Any
    name: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    output: str | None = None  # ResultPath; None discards the result
    select: dict[str, str] | None = None  # ResultSelector over the function's Payload
    comment: str | None = None
    next: str | None = None
    catch: Catch | None = None
    base: bool = True  # include the workflow's base payload (cluster name, operation id)
    # Another task function than the workflow's, for a step that needs that function's rights
    # (e.g. the planner's join-token rotation runs on ClusterTasks, which may write secrets).
    function: str | None = None

    def __post_init__(self) -> None:
        self.spec = spec_of(self.step)
        self.name = self.name or self.spec.name

    def function_of(self, workflow: Workflow) -> str:
        return self.function or workflow.function

    def with_catch(self, catch: Catch) -> Task:
        return self if self.catch else replace(self, catch=catch)

    def render(self, workflow: Workflow) -> dict[str, Any]:
        payload: dict[str, Any] = {"task": self.spec.name}
        if self.base:
            payload.update(workflow.base_payload)
        payload.update(self.args)
        body: dict[str, Any] = {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": f"${{{self.function_of(workflow)}FunctionArn}}", "Payload": payload},
        }
        if self.output is None:
            body["ResultPath"] = None
        else:
            body["ResultSelector"] = self.select or {"result.$": "$.Payload"}
            body["ResultPath"] = self.output
        retry = [dict(LAMBDA_RETRY), dict(THROTTLED_RETRY)]
        if self.spec.waits:
            retry.extend(pending_retries(self.spec))
        body["Retry"] = retry
        if self.catch:
            body["Catch"] = [
                {"ErrorEquals": list(self.catch.errors), "ResultPath": self.catch.result_path, "Next": self.catch.next}
            ]
        return self._common(body)


@dataclass
class Pass(State):
    name: str
    parameters: dict[str, Any] | None = None
    result: Any = None
    output: str | None = "$"
    comment: str | None = None
    next: str | None = None
    catch: Catch | None = None

    def render(self, workflow: Workflow) -> dict[str, Any]:
        body: dict[str, Any] = {"Type": "Pass"}
        if self.parameters is not None:
            body["Parameters"] = self.parameters
        if self.result is not None:
            body["Result"] = self.result
        if self.output != "$":
            body["ResultPath"] = self.output
        return self._common(body)


@dataclass
class Choice(State):
    name: str
    choices: list[tuple[dict[str, Any], str]]
    default: str
    comment: str | None = None
    next: str | None = None
    catch: Catch | None = None
    terminal = True

    def render(self, workflow: Workflow) -> dict[str, Any]:
        return self._common(
            {
                "Type": "Choice",
                "Choices": [{**condition, "Next": target} for condition, target in self.choices],
                "Default": self.default,
            }
        )


@dataclass
class Map(State):
    """Runs `steps` for each item of `items` (a JSONPath); each iteration's input is
    `selector` (`$$.Map.Item.Value` is the item)."""

    name: str
    items: str
    selector: dict[str, Any]
    steps: list[State]
    max_concurrency: int = 0
    output: str | None = None
    comment: str | None = None
    next: str | None = None
    catch: Catch | None = None

    def children(self) -> list[list[State]]:
        return [self.steps]

    def with_catch(self, catch: Catch) -> Map:
        return self if self.catch else replace(self, catch=catch)

    def render(self, workflow: Workflow) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Type": "Map",
            "ItemsPath": self.items,
            "ItemSelector": self.selector,
            "MaxConcurrency": self.max_concurrency,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": self.steps[0].name,
                "States": workflow.render_chain(self.steps, end=True),
            },
            "ResultPath": self.output,
        }
        if self.catch:
            body["Catch"] = [
                {"ErrorEquals": list(self.catch.errors), "ResultPath": self.catch.result_path, "Next": self.catch.next}
            ]
        return self._common(body)


@dataclass
class Parallel(State):
    """Runs each of `branches` (a chain of states each) at once, and goes on when every one has
    finished; the first to fail stops the others and fails the state (its Catch applies). A
    branch's states cannot leave it: their errors reach the Parallel's own Catch."""

    name: str
    branches: list[list[State]]
    output: str | None = None
    comment: str | None = None
    next: str | None = None
    catch: Catch | None = None

    def children(self) -> list[list[State]]:
        return self.branches

    def with_catch(self, catch: Catch) -> Parallel:
        return self if self.catch else replace(self, catch=catch)

    def render(self, workflow: Workflow) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": branch[0].name, "States": workflow.render_chain(branch, end=True)}
                for branch in self.branches
            ],
            "ResultPath": self.output,
        }
        if self.catch:
            body["Catch"] = [
                {"ErrorEquals": list(self.catch.errors), "ResultPath": self.catch.result_path, "Next": self.catch.next}
            ]
        return self._common(body)


@dataclass
class Succeed(State):
    name: str
    comment: str | None = None
    next: str | None = None
    catch: Catch | None = None
    terminal = True

    def render(self, workflow: Workflow) -> dict[str, Any]:
        return self._common({"Type": "Succeed"})


@dataclass
class Fail(State):
    """Ends the execution failed; `error_path`/`cause_path` report the original error."""

    name: str
    error: str | None = None
    cause: str | None = None
    error_path: str | None = None
    cause_path: str | None = None
    comment: str | None = None
    next: str | None = None
    catch: Catch | None = None
    terminal = True

    def render(self, workflow: Workflow) -> dict[str, Any]:
        body: dict[str, Any] = {"Type": "Fail"}
        for key, value in (
            ("Error", self.error),
            ("Cause", self.cause),
            ("ErrorPath", self.error_path),
            ("CausePath", self.cause_path),
        ):
            if value is not None:
                body[key] = value
        return self._common(body)


def guarded(states: list[State], catch: Catch) -> list[State]:
    """The same states, each Task and Map catching every error into `catch`."""
    return [s.with_catch(catch) for s in states]


@dataclass
class Workflow:
    """One state machine: `<svc>-<name>`, its Task states on the `<function>` Lambda."""

    name: str
    comment: str
    timeout: timedelta
    function: str  # "ClusterTasks" -> ${ClusterTasksFunctionArn}
    chains: list[list[State]]
    module: str = ""
    base_payload: dict[str, Any] = field(default_factory=lambda: {"operationId.$": "$$.Execution.Name"})

    # ------------------------------------------------------------------ walking
    def states(self) -> Iterator[State]:
        def walk(states: list[State]) -> Iterator[State]:
            for state in states:
                yield state
                for child in state.children():
                    yield from walk(child)

        for chain in self.chains:
            yield from walk(chain)

    def tasks(self) -> list[Task]:
        return [s for s in self.states() if isinstance(s, Task)]

    def step_specs(self, function: str | None = None) -> dict[str, StepSpec]:
        """The steps of its tasks (only those `function` runs, when given)."""
        return {t.spec.name: t.spec for t in self.tasks() if function in (None, t.function_of(self))}

    # ------------------------------------------------------------------ rendering
    def render_chain(self, chain: list[State], *, end: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i, state in enumerate(chain):
            body = state.render(self)
            if not state.terminal:
                follower = state.next or (chain[i + 1].name if i + 1 < len(chain) else None)
                if follower:
                    body["Next"] = follower
                elif end:
                    body["End"] = True
                else:
                    raise ValueError(f"{self.name}: state {state.name} has no Next and does not end the workflow")
            if state.name in out:
                raise ValueError(f"{self.name}: state name {state.name} is used twice")
            out[state.name] = body
        return out

    def render(self) -> dict[str, Any]:
        states: dict[str, Any] = {}
        for chain in self.chains:
            rendered = self.render_chain(chain)
            duplicate = set(rendered) & set(states)
            if duplicate:
                raise ValueError(f"{self.name}: state names used twice: {sorted(duplicate)}")
            states.update(rendered)
        definition = {
            "Comment": f"{self.comment} {GENERATED_NOTE.format(module=self.module or self.name)}",
            "TimeoutSeconds": int(self.timeout.total_seconds()),
            "StartAt": self.chains[0][0].name,
            "States": states,
        }
        self._check_targets(definition)
        return definition

    def to_json(self) -> str:
        return json.dumps(self.render(), indent=2) + "\n"

    def _check_targets(self, definition: dict[str, Any]) -> None:
        def check(states: dict[str, Any]) -> None:
            for name, body in states.items():
                targets = [body.get("Next"), body.get("Default")]
                targets += [c["Next"] for c in body.get("Choices", [])]
                targets += [c["Next"] for c in body.get("Catch", [])]
                for target in filter(None, targets):
                    if target not in states:
                        raise ValueError(f"{self.name}: {name} goes to unknown state {target}")
                if body["Type"] == "Map":
                    check(body["ItemProcessor"]["States"])
                for branch in body.get("Branches", []):
                    check(branch["States"])

        check(definition["States"])

    # ------------------------------------------------------------------ the diagram
    def mermaid(self) -> str:
        """A `stateDiagram-v2` of the workflow (Catch edges dashed in words)."""
        lines = ["stateDiagram-v2"]
        definition = self.render()

        def edges(states: dict[str, Any], start: str, indent: str) -> None:
            lines.append(f"{indent}[*] --> {start}")
            for name, body in states.items():
                if body["Type"] == "Map":
                    lines.append(f"{indent}state {name} {{")
                    edges(body["ItemProcessor"]["States"], body["ItemProcessor"]["StartAt"], indent + "    ")
                    lines.append(f"{indent}}}")
                if body["Type"] == "Parallel":
                    lines.append(f"{indent}state {name} {{")
                    for i, branch in enumerate(body["Branches"]):
                        if i:
                            lines.append(f"{indent}    --")
                        edges(branch["States"], branch["StartAt"], indent + "    ")
                    lines.append(f"{indent}}}")
                if body.get("Next"):
                    lines.append(f"{indent}{name} --> {body['Next']}")
                for choice in body.get("Choices", []):
                    lines.append(f"{indent}{name} --> {choice['Next']}: {_condition_label(choice)}")
                if body.get("Default"):
                    lines.append(f"{indent}{name} --> {body['Default']}: otherwise")
                for catch in body.get("Catch", []):
                    lines.append(f"{indent}{name} --> {catch['Next']}: error")
                if body.get("End") or body["Type"] in ("Succeed", "Fail"):
                    lines.append(f"{indent}{name} --> [*]")

        edges(definition["States"], definition["StartAt"], "    ")
        return "\n".join(lines) + "\n"


def _condition_label(choice: dict[str, Any]) -> str:
    variable = choice.get("Variable", "").removeprefix("$.")
    for key, value in choice.items():
        if key not in ("Variable", "Next"):
            return f"{variable} {key} {json.dumps(value)}"
    return variable
