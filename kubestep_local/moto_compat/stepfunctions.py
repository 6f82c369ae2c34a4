"""Step Functions: the executing (ASL interpreter) backend bound for CloudFormation, its bugs
fixed, its waits scaled, its executions' start and end heard, and its executions read as plain
data (``ExecutionInfo``)."""

from __future__ import annotations

import contextlib
import copy
import functools
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubestep_local.moto_compat.core import MISSING, PatchSet, iter_backends


def bind_step_functions(patches: PatchSet, port: int) -> None:
    """What real ASL execution needs besides the config switch: the state machines CloudFormation
    creates are the ones StartExecution runs, and an execution started without a name gets a
    UUID (Step Functions API reference, StartExecution: name); moto 5.2.5 does neither by itself."""
    import moto.stepfunctions.models as sfn_models
    from moto.core.config import default_user_config
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend, stepfunctions_parser_backends

    # The config switch (enable_asl_execution) lands in this dict; put it back as it was.
    saved_config = copy.deepcopy(default_user_config.get("stepfunctions", MISSING))

    def restore_config() -> None:
        if saved_config is MISSING:
            default_user_config.pop("stepfunctions", None)
        else:
            default_user_config["stepfunctions"] = saved_config

    patches.on_undo(restore_config)
    # The interpreter calls Lambda (and other services) at http://localhost:$MOTO_PORT
    # (moto/stepfunctions/parser/asl/utils/boto_client.py:20).
    patches.set_env("MOTO_PORT", str(port))
    # CloudFormation-created state machines must land in the executing (parser) backend. With
    # ``execute_state_machine`` the Step Functions API reads ``stepfunctions_parser_backends``
    # (moto/stepfunctions/responses.py:12-19), but AWS::StepFunctions::StateMachine's
    # CloudFormation hooks create/delete/update through the module global
    # ``moto.stepfunctions.models.stepfunctions_backends`` (moto/stepfunctions/models.py:291, 302,
    # 334), its only readers besides responses.py. Rebinding the global is enough; it must
    # happen before the deploy. responses.py binds the global at import (moto/stepfunctions/
    # responses.py:8), and the server imports it on the first Step Functions request: imported
    # first, it keeps the plain backends, which `mock_aws` uses after the runtime stops.
    import moto.stepfunctions.responses  # noqa: F401

    patches.set(sfn_models, "stepfunctions_backends", stepfunctions_parser_backends)
    # Unnamed executions get a UUID name, as on AWS: moto's executing backend formats the ARN
    # with ``name`` as given (moto/stepfunctions/parser/models.py:161-211), so a StartExecution
    # without a name yields ``...:<machine>:None`` and the second unnamed start collides.
    original_start = StepFunctionsParserBackend.start_execution

    def start_execution(self: Any, state_machine_arn: str, name: Any = None, *args: Any, **kwargs: Any) -> Any:
        return original_start(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)

    patches.set(StepFunctionsParserBackend, "start_execution", start_execution)

    patches.set(StepFunctionsParserBackend, "start_execution", start_execution)


def keep_stopped_executions_aborted(patches: PatchSet) -> None:
    """StopExecution while a Map iterates ends the execution FAILED in moto 5.2.5: the
    iteration's abort carries the stop's error as a plain string (or None), and
    ``_construct_error_output_value`` calls ``.get`` on it (AttributeError); the Map's failure
    then overwrites the program's stopped state (``Environment.set_error`` does not check it,
    unlike ``set_ended``). On AWS a stopped execution ends ABORTED (Step Functions API
    reference, StopExecution)."""
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

    original_set_error = Environment.set_error

    def set_error(self: Any, error: Any) -> None:
        if isinstance(self._program_state, ProgramStopped):
            return  # a stopped execution stays ABORTED, as on AWS
        original_set_error(self, error)

    patches.set(Environment, "set_error", set_error)
    original_construct = ExecutionState._construct_error_output_value

    def construct_error_output_value(failure_event: Any) -> Any:
        details = list(failure_event.event_details.values())
        if len(details) == 1 and not isinstance(details[0], dict):
            return {"Error": details[0] or "", "Cause": ""}
        return original_construct(failure_event)

    patches.set(ExecutionState, "_construct_error_output_value", staticmethod(construct_error_output_value))


def fail_executions_whose_map_iteration_was_aborted(patches: PatchSet) -> None:
    """When one iteration of a Map fails, moto 5.2.5 aborts the others with a plain string (or
    None) where the failure's event details should be a dict, and the execution's end reads it
    with ``in`` (``FailureEventException.extract_error_cause_pair``): a TypeError kills the
    interpreter thread and the execution stays RUNNING forever. On AWS the execution ends FAILED
    (Step Functions developer guide, Map state: a failed iteration fails the Map); here it ends
    FAILED with that string as its error (the failed task's own error is in the history)."""
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEventException

    original = FailureEventException.extract_error_cause_pair

    def extract_error_cause_pair(self: Any) -> Any:
        details = self.failure_event.event_details
        spec = next(iter(details.values()), None) if isinstance(details, dict) else {}
        if details is not None and not isinstance(spec, dict):
            return (spec if isinstance(spec, str) and spec else None), None
        return original(self)

    patches.set(FailureEventException, "extract_error_cause_pair", extract_error_cause_pair)


# (execution ARN or None, wall-clock start, end) of one scaled wait of the interpreter.
WaitObserver = Callable[["str | None", float, float], None]
# The execution whose retrier a thread of the interpreter evaluates (its Retry sleep follows).
_THREAD_EXECUTION = threading.local()


def scale_asl_waits(
    patches: PatchSet,
    real_seconds: Callable[[float], float],
    shutdown: threading.Event,
    on_wait: WaitObserver | None = None,
) -> None:
    """Scale what the interpreter sleeps in Retry intervals and Wait states.

    moto's interpreter really sleeps: ``time.sleep(interval_seconds)`` between retries
    (moto/stepfunctions/parser/asl/component/common/retry/retrier_decl.py:107) and
    ``env.program_state_event.wait(wait_seconds)`` in Wait states (.../state/wait/wait_function/
    wait_function.py:15-33, shared by Seconds, SecondsPath, Timestamp and TimestampPath). Exactly
    those two call sites change -- never the global ``time.sleep`` (moto's server, boto3 retries
    and the runtime's threads keep real time). ``shutdown`` ends retry sleeps early, so the
    interpreter threads of aborted executions do not outlive the runtime by a retry interval.
    ``on_wait`` hears of each scaled wait (what an execution's modelled time scales back up).
    """
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

    patches.set(retrier_decl, "time", _scaled_time(real_seconds, shutdown, on_wait))
    patches.set(WaitFunction, "_wait_interval", _scaled_wait_interval(real_seconds, on_wait))
    # A Retry sleeps in the thread that evaluates the retrier: tell its sleep whose it is.
    original_retry = retrier_decl.RetrierDecl._eval_body

    @functools.wraps(original_retry)
    def _eval_body(self: Any, env: Any) -> Any:
        with contextlib.suppress(Exception):
            _THREAD_EXECUTION.arn = env.states.context_object.context_object_data["Execution"]["Id"]
        return original_retry(self, env)

    patches.set(retrier_decl.RetrierDecl, "_eval_body", _eval_body)


def _scaled_time(
    real_seconds: Callable[[float], float], shutdown: threading.Event, on_wait: WaitObserver | None
) -> Any:
    """retrier_decl does ``import time`` and calls ``time.sleep``: that module gets its own
    ``time`` whose sleep is scaled, leaving the real module untouched for everyone else."""
    import time
    import types

    scaled_time = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("__")})

    def _sleep(seconds: float) -> None:
        started = time.time()
        shutdown.wait(real_seconds(seconds))
        if on_wait is not None:
            on_wait(getattr(_THREAD_EXECUTION, "arn", None), started, time.time())

    scaled_time.sleep = _sleep
    return scaled_time


def _scaled_wait_interval(real_seconds: Callable[[float], float], on_wait: WaitObserver | None) -> Callable[..., None]:
    """A Wait state's wait, scaled, ending early only when the program ends or stops."""
    import time

    def _wait_interval(self: Any, env: Any, wait_seconds: float) -> None:
        started = time.time()
        deadline = time.monotonic() + real_seconds(wait_seconds)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                env.program_state_event.wait(remaining)
                # The event is set on any program state change; only an ended/stopped program
                # interrupts the wait (moto's own loop re-enters on the rest).
                if not env.is_running():
                    return
        finally:
            if on_wait is not None:
                arn = None
                with contextlib.suppress(Exception):
                    arn = env.states.context_object.context_object_data["Execution"]["Id"]
                on_wait(arn, started, time.time())

    return _wait_interval


def on_execution_start(patches: PatchSet, callback: Callable[[str, Any], None]) -> None:
    """Call ``callback(execution_arn, input)`` after each StartExecution of the executing backend
    has created its execution, before the request answers. Patch after ``bind_step_functions``
    (the server's) and undo before it: the patches stack."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    original = StepFunctionsParserBackend.start_execution

    def start_execution(self: Any, state_machine_arn: str, *args: Any, **kwargs: Any) -> Any:
        execution = original(self, state_machine_arn, *args, **kwargs)
        callback(execution.exec_arn, execution.input_data)
        return execution

    patches.set(StepFunctionsParserBackend, "start_execution", start_execution)


def on_execution_end(patches: PatchSet, callback: Callable[[], None]) -> None:
    """Call ``callback`` whenever a Step Functions execution ends (after its status is set)."""
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    original = BaseExecutionWorkerCommunication.terminated

    def terminated(comm: Any) -> None:
        original(comm)
        callback()

    patches.set(BaseExecutionWorkerCommunication, "terminated", terminated)


@dataclass(frozen=True)
class ExecutionInfo:
    """A Step Functions execution of the executing backend."""

    arn: str
    name: str
    state_machine_arn: str
    account: str
    region: str
    status: str
    start_date: datetime | None
    stop_date: datetime | None
    input: Any
    output: Any
    error: str | None
    cause: str | None


def _status(execution: Any) -> str:
    return str(getattr(execution.exec_status, "value", execution.exec_status))


def _step_functions_executions() -> list[tuple[str, str, Any, Any]]:
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    out = []
    for account, region, backend in iter_backends(stepfunctions_parser_backends):
        for machine in list(backend.state_machines):
            for execution in list(getattr(machine, "executions", [])):
                out.append((account, region, backend, execution))
    return out


def executions() -> list[ExecutionInfo]:
    return [
        ExecutionInfo(
            arn=execution.exec_arn,
            name=execution.name,
            state_machine_arn=execution.state_machine_arn,
            account=account,
            region=region,
            status=_status(execution),
            start_date=execution.start_date,
            stop_date=execution.stop_date,
            input=execution.input_data,
            output=execution.output,
            error=execution.error,
            cause=execution.cause,
        )
        for account, region, _backend, execution in _step_functions_executions()
    ]


def execution_status(execution_arn: str) -> str | None:
    """An execution's status (None if the executing backend has no such execution)."""
    for _account, _region, _backend, execution in _step_functions_executions():
        if execution.exec_arn == execution_arn:
            return _status(execution)
    return None


def execution_history(execution_arn: str) -> list[dict[str, Any]]:
    """``GetExecutionHistory``'s events ([] for an execution that never started)."""
    for _account, _region, backend, execution in _step_functions_executions():
        if execution.exec_arn == execution_arn:
            with contextlib.suppress(Exception):
                return list(backend.get_execution_history(execution_arn)["events"])
            return []
    raise KeyError(execution_arn)


def stop_execution(execution_arn: str, error: str, cause: str) -> bool:
    """StopExecution of one RUNNING execution (from inside the runtime, e.g. a dying worker)."""
    for _account, _region, _backend, execution in _step_functions_executions():
        if execution.exec_arn == execution_arn and _status(execution) == "RUNNING":
            execution.stop(datetime.now(UTC), error=error, cause=cause)
            return True
    return False


def stop_running_executions(error: str, cause: str) -> list[str]:
    """StopExecution for every RUNNING execution; returns their ARNs."""
    stopped = []
    for _account, _region, _backend, execution in _step_functions_executions():
        if _status(execution) != "RUNNING":
            continue
        with contextlib.suppress(Exception):
            execution.stop(datetime.now(UTC), error=error, cause=cause)
            stopped.append(execution.exec_arn)
    return stopped


def parse_each_definition_once(patches: PatchSet) -> None:
    """moto lexes and parses a state machine's whole definition with its ANTLR grammar (pure
    Python) at every StartExecution (moto/stepfunctions/parser/backend/execution_worker.py
    ``_get_evaluation_entrypoint``), and each intrinsic function's text once more while building
    the evaluation components: a sixth of the emulator's time under concurrent creates. The
    syntax tree of one text is always the same, so each text is parsed once; the evaluation
    components, which executions run, are still built afresh from the tree for every execution.
    Syntax errors are not cached (a speed fix only: the answer is the same)."""
    from moto.stepfunctions.parser.asl.parse import asl_parser
    from moto.stepfunctions.parser.asl.parse.intrinsic import intrinsic_parser

    parse_asl = asl_parser.AmazonStateLanguageParser.parse
    parse_intrinsic = intrinsic_parser.IntrinsicParser.parse
    # The preprocessors only read the tree: sharing one tree between executions' threads is safe.
    asl_tree = functools.lru_cache(maxsize=256)(lambda definition: _remember_texts(parse_asl(definition)[1]))
    intrinsic_tree = functools.lru_cache(maxsize=4096)(lambda source: _remember_texts(parse_intrinsic(source)[1]))

    def parse_definition(definition: str) -> tuple[Any, Any]:
        tree = asl_tree(definition)
        return asl_parser.Preprocessor().visit(tree), tree

    def parse_intrinsic_function(source: str) -> tuple[Any, Any]:
        tree = intrinsic_tree(source)
        return intrinsic_parser.Preprocessor().visit(tree), tree

    patches.set(asl_parser.AmazonStateLanguageParser, "parse", staticmethod(parse_definition))
    patches.set(intrinsic_parser.IntrinsicParser, "parse", staticmethod(parse_intrinsic_function))


def _remember_texts(tree: Any) -> Any:
    """Give each rule node of a parsed tree its text as a constant ``getText``. The preprocessors
    ask nodes for their text at every level (antlr4's ``RuleContext.getText`` joins its
    children's texts, recursively, at each call): a third of building an execution's components.
    A cached tree never changes, so each node's text is joined once, bottom up, exactly as
    ``getText`` joins it (no children: ""); tokens keep their own ``getText``."""
    from antlr4 import ParserRuleContext

    texts: dict[int, str] = {}
    pending: list[tuple[Any, bool]] = [(tree, False)]
    while pending:
        node, children_done = pending.pop()
        if not isinstance(node, ParserRuleContext):
            texts[id(node)] = node.getText()
        elif children_done:
            text = texts[id(node)] = "".join(texts[id(child)] for child in node.children or ())
            node.getText = text.__str__  # an instance attribute: other trees are unchanged
        else:
            pending.append((node, True))
            pending.extend((child, False) for child in node.children or ())
    return tree


def compile_json_paths_once(patches: PatchSet) -> None:
    """moto's interpreter compiles every JSONPath (InputPath, ResultPath, ``.$`` parameters) with
    jsonpath_ng at every use, and jsonpath_ng builds a new PLY parser, grammar tables and all, per
    call (jsonpath_ng/parser.py ``JsonPathParser.__init__``). A compiled path holds no state of
    an evaluation, so each text is compiled once (a speed fix only: the answer is the same)."""
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    for module in (json_path, result_path):
        patches.set(module, "parse", functools.lru_cache(maxsize=4096)(module.parse))
