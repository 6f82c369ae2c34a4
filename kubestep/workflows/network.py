"""The steps of `ProvisionNetwork` and `DeprovisionNetwork` (one Task state each)."""

from __future__ import annotations

from collections.abc import Callable

from kubestep.aws import pending_until_visible
from kubestep.registry import NETWORK_PK, Registry
from kubestep.resources import network
from kubestep.resources.network import NetworkContext
from kubestep.settings import Settings
from kubestep.workflows.cluster import error_message, execution_running

Task = Callable[[dict, Settings, Registry], dict]
TASKS: dict[str, Task] = {}


def _ctx(event: dict, settings: Settings, registry: Registry) -> NetworkContext:
    return NetworkContext(settings, registry, event["operationId"])


def _step(name: str, fn: Callable[[NetworkContext], dict]) -> None:
    def run(event: dict, settings: Settings, registry: Registry) -> dict:
        return fn(_ctx(event, settings, registry))

    # Creating steps wait out EC2's eventual consistency (a VPC not yet visible to the next call).
    TASKS[name] = pending_until_visible(run) if name.startswith(("Ensure", "Check")) else run


def begin_provision(event: dict, settings: Settings, registry: Registry) -> dict:
    operation_id = event["operationId"]
    registry.acquire_lock(NETWORK_PK, operation_id, event.get("executionArn"), execution_running(settings))
    registry.put_operation(operation_id, "ProvisionNetwork", "network", event.get("executionArn"))
    return network.begin(_ctx(event, settings, registry))


def begin_deprovision(event: dict, settings: Settings, registry: Registry) -> dict:
    operation_id = event["operationId"]
    registry.acquire_lock(NETWORK_PK, operation_id, event.get("executionArn"), execution_running(settings))
    try:
        result = network.begin_delete(_ctx(event, settings, registry))
    except Exception:
        registry.release_lock(NETWORK_PK, operation_id)
        raise
    registry.put_operation(operation_id, "DeprovisionNetwork", "network", event.get("executionArn"))
    return result


def finish(event: dict, settings: Settings, registry: Registry) -> dict:
    registry.finish_operation(event["operationId"], "SUCCEEDED")
    return {"released": registry.release_lock(NETWORK_PK, event["operationId"])}


def record_failure(event: dict, settings: Settings, registry: Registry) -> dict:
    error, message = error_message(event.get("error"))
    if registry.get_network():
        registry.update_network(status="ERROR", lastError={"error": error, "message": message})
    registry.finish_operation(event["operationId"], "FAILED", error, message)
    return {"released": registry.release_lock(NETWORK_PK, event["operationId"]), "error": error}


TASKS.update(
    {
        "BeginProvision": begin_provision,
        "BeginDeprovision": begin_deprovision,
        "FinishNetworkOperation": finish,
        "RecordNetworkFailure": record_failure,
    }
)
_step("EnsureVpc", network.ensure_vpc)
_step("EnsureInternetGateway", network.ensure_internet_gateway)
_step("EnsureSubnets", network.ensure_subnets)
_step("CheckNatGateways", network.check_nat_gateways)
_step("EnsureRouteTables", network.ensure_route_tables)
_step("EnsureVpcEndpoints", network.ensure_vpc_endpoints)
_step("ValidateExistingNetwork", network.validate_existing)
_step("MarkNetworkReady", network.mark_ready)
_step("DeleteVpcEndpoints", network.delete_vpc_endpoints)
_step("DeleteNatGateways", network.delete_nat_gateways)
_step("ReleaseAddresses", network.release_addresses)
_step("DeleteVpc", network.delete_route_tables_subnets_gateway_vpc)
_step("MarkNetworkDeleted", network.mark_deleted)
TASKS["EnsureNatGateway"] = pending_until_visible(
    lambda event, settings, registry: network.ensure_nat_gateway(_ctx(event, settings, registry), event["zone"])
)
TASKS["ListZones"] = lambda event, settings, registry: {"zones": settings.service.zones}
