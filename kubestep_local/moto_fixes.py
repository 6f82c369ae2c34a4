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
    _install_nat_gateway_release()


def _install_nat_gateway_release() -> None:
    """DeleteNatGateway: AWS disassociates the gateway's Elastic IP (so it can be released);
    moto keeps the association forever and ReleaseAddress stays refused."""
    from moto.ec2.models.nat_gateways import NatGatewayBackend

    original = NatGatewayBackend.delete_nat_gateway

    def delete_nat_gateway(self: Any, nat_gateway_id: str) -> Any:
        gateway = original(self, nat_gateway_id)
        for address in getattr(gateway, "address_set", []):
            allocation = address.get("allocationId")
            for eip in self.address_by_allocation([allocation]) if allocation else []:
                if eip.eni is not None and eip.eni.id == address.get("networkInterfaceId"):
                    eip.eni = None
                    eip.instance = None
                    eip.association_id = None
        return gateway

    _installed["delete_nat_gateway"] = original
    NatGatewayBackend.delete_nat_gateway = delete_nat_gateway


def uninstall() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.execute_state import ExecutionState
    from moto.stepfunctions.parser.asl.eval.environment import Environment

    set_error = _installed.pop("set_error", None)
    if set_error is not None:
        Environment.set_error = set_error
    from moto.ec2.models.nat_gateways import NatGatewayBackend

    delete_nat_gateway = _installed.pop("delete_nat_gateway", None)
    if delete_nat_gateway is not None:
        NatGatewayBackend.delete_nat_gateway = delete_nat_gateway
    original = _installed.pop("construct_error_output_value", None)
    if original is not None:
        ExecutionState._construct_error_output_value = staticmethod(original)
