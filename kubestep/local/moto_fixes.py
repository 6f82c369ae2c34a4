"""Fixes for moto 5.2.5's ASL interpreter bugs that real Step Functions does not have.
Each is guarded by a test; drop it when moto fixes the bug."""

from __future__ import annotations

from typing import Any

_installed: dict[str, Any] = {}


def install() -> None:
    """StopExecution while a Map iterates ends the execution FAILED instead of ABORTED:

    - the iteration's abort carries the stop's error as a plain string (or None), and
      `_construct_error_output_value` calls `.get` on it (AttributeError);
    - the Map's resulting failure then overwrites the program's stopped state
      (`Environment.set_error` does not check it, unlike `set_ended`)."""
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

    if "construct_error_output_value" in _installed:
        return
    original_set_error = Environment.set_error

    def set_error(self: Any, error: Any) -> None:
        if isinstance(self._program_state, ProgramStopped):
            return  # a stopped execution stays ABORTED, as on AWS
        original_set_error(self, error)

    _installed["set_error"] = original_set_error
    Environment.set_error = set_error
    original = ExecutionState._construct_error_output_value

    def construct_error_output_value(failure_event: Any) -> Any:
        details = list(failure_event.event_details.values())
        if len(details) == 1 and not isinstance(details[0], dict):
            return {"Error": details[0] or "", "Cause": ""}
        return original(failure_event)

    _installed["construct_error_output_value"] = original
    ExecutionState._construct_error_output_value = staticmethod(construct_error_output_value)


def uninstall() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState

    from moto.stepfunctions.parser.asl.eval.environment import Environment

    set_error = _installed.pop("set_error", None)
    if set_error is not None:
        Environment.set_error = set_error
    original = _installed.pop("construct_error_output_value", None)
    if original is not None:
        ExecutionState._construct_error_output_value = staticmethod(original)
