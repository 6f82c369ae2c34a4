"""DeprovisionNetwork: refused while clusters exist; the private hosted zone; for a dedicated VPC
then gateway endpoints -> NAT gateways (wait until deleted) -> Elastic IPs -> route tables,
subnets, internet gateway, VPC; the record goes. An existing VPC keeps everything else
(kubestep created nothing else in it)."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Choice, Task, Workflow
from kubestep.resources import network
from kubestep.workflows import network_steps
from kubestep.workflows.envelope import network_failure, network_lock, operation

WORKFLOW = Workflow(
    name="DeprovisionNetwork",
    module=__name__,
    comment="Delete the management service's dedicated VPC (refused while clusters exist), or forget an existing "
    "one. Input: {}.",
    timeout=timedelta(hours=1),
    function="NetworkTasks",
    base_payload={"operationId.$": "$$.Execution.Name"},
    chains=operation(
        head=[network_lock(network_steps.begin_deprovision)],
        body=[
            Task(network.delete_dns_zone),
            Choice(
                "NetworkMode",
                choices=[({"Variable": "$.begin.mode", "StringEquals": "dedicated"}, "DeleteVpcEndpoints")],
                default="MarkNetworkDeleted",
            ),
            Task(network.delete_vpc_endpoints),
            Task(network.delete_nat_gateways),
            Task(network.release_addresses),
            Task(network.delete_route_tables_subnets_gateway_vpc),
            Task(network.mark_network_deleted),
        ],
        release=[Task(network_steps.finish_network_operation, name="Finish")],
        succeeded="Deprovisioned",
        failure=network_failure("DeprovisionFailed"),
    ),
)
