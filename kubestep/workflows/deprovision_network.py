"""DeprovisionNetwork: refused while clusters exist; the private hosted zone; for a dedicated VPC
then gateway endpoints -> NAT gateways (wait until deleted) -> Elastic IPs -> route tables,
subnets, internet gateway, VPC; the record goes. An existing VPC keeps everything else
(kubestep created nothing else in it)."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Catch, Choice, Fail, Succeed, Task, Workflow, guarded
from kubestep.resources import network
from kubestep.workflows import network_steps
from kubestep.workflows.fragments import IDENTITY_PAYLOAD

FAILED = Catch("RecordFailure", result_path="$.error")

WORKFLOW = Workflow(
    name="DeprovisionNetwork",
    module=__name__,
    comment="Delete the management service's dedicated VPC (refused while clusters exist), or forget an existing "
    "one. Input: {}.",
    timeout=timedelta(hours=1),
    function="NetworkTasks",
    base_payload={"operationId.$": "$$.Execution.Name"},
    chains=[
        [
            Task(
                network_steps.begin_deprovision,
                name="AcquireLock",
                base=False,
                args={"request.$": "$", **IDENTITY_PAYLOAD},
                output="$.begin",
                select={"mode.$": "$.Payload.mode"},
            ),
            *guarded([Task(network.delete_dns_zone)], FAILED),
            Choice(
                "NetworkMode",
                choices=[({"Variable": "$.begin.mode", "StringEquals": "dedicated"}, "DeleteVpcEndpoints")],
                default="MarkNetworkDeleted",
            ),
        ],
        [
            *guarded(
                [
                    Task(network.delete_vpc_endpoints),
                    Task(network.delete_nat_gateways),
                    Task(network.release_addresses),
                    Task(network.delete_route_tables_subnets_gateway_vpc),
                ],
                FAILED,
            ),
            *guarded([Task(network.mark_network_deleted)], FAILED),
            Task(network_steps.finish_network_operation, name="Finish"),
            Succeed("Deprovisioned"),
        ],
        [
            Task(network_steps.record_network_failure, name="RecordFailure", args={"error.$": "$.error"}),
            Fail("DeprovisionFailed", error_path="$.error.Error", cause_path="$.error.Cause"),
        ],
    ],
)
