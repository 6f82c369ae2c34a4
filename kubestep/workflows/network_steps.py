"""The operation-level steps of ProvisionNetwork and DeprovisionNetwork: identity and the
network's lock, success, failure. The resource steps live in `kubestep.resources.network`."""

from __future__ import annotations

from kubestep.flow.context import StepInput
from kubestep.flow.steps import step
from kubestep.resources import network
from kubestep.resources.network import NetworkContext
from kubestep.store.keys import ServiceTarget
from kubestep.validation import parse_network_request
from kubestep.workflows.cluster_steps import error_message
from kubestep.workflows.identity import execution_running, own_operation

NETWORK = ServiceTarget.NETWORK


@step
def begin_provision(ctx: StepInput) -> dict:
    """Prove who this execution is and take the network's lock."""
    parse_network_request(ctx.event.get("request"))
    own_operation(ctx, "ProvisionNetwork", NETWORK)
    ctx.store.locks.acquire(NETWORK, ctx.operation_id, ctx.execution_arn, execution_running(ctx.settings))
    return network.begin(NetworkContext(ctx.settings, ctx.store, ctx.operation_id))


@step
def begin_deprovision(ctx: StepInput) -> dict:
    """Prove who this execution is, take the network's lock; refused while clusters exist."""
    parse_network_request(ctx.event.get("request"))
    own_operation(ctx, "DeprovisionNetwork", NETWORK)
    ctx.store.locks.acquire(NETWORK, ctx.operation_id, ctx.execution_arn, execution_running(ctx.settings))
    try:
        return network.begin_delete(NetworkContext(ctx.settings, ctx.store, ctx.operation_id))
    except Exception:
        ctx.store.locks.release(NETWORK, ctx.operation_id)
        raise


@step
def list_zones(ctx: NetworkContext) -> dict:
    """The service's zones, for the NAT gateway Map."""
    return {"zones": ctx.settings.service.zones}


@step
def finish_network_operation(ctx: StepInput) -> dict:
    """Success: the operation SUCCEEDED, the lock released."""
    ctx.store.operations.finish(ctx.operation_id, "SUCCEEDED")
    return {"released": ctx.store.locks.release(NETWORK, ctx.operation_id)}


@step
def record_network_failure(ctx: StepInput, error: dict) -> dict:
    """Failure: ERROR on the network record, the operation FAILED, the lock released."""
    name, message = error_message(error)
    if ctx.store.network.get() is not None:
        ctx.store.network.update(status="ERROR", last_error={"error": name, "message": message})
    released = ctx.store.locks.release(NETWORK, ctx.operation_id)
    ctx.store.operations.finish(ctx.operation_id, "FAILED", name, message)
    return {"released": released, "error": name}
