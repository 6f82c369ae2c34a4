"""ProvisionNetwork: the management service's dedicated VPC built step by step (VPC, internet
gateway, public and private subnets per zone, an EIP + NAT gateway per zone, route tables,
S3/DynamoDB gateway endpoints), or an existing VPC validated and recorded; then the service's
private hosted zone (the control-plane replicas' stable names) and READY."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Choice, Map, Task, Workflow
from kubestep.resources import network
from kubestep.workflows import network_steps
from kubestep.workflows.envelope import network_failure, network_lock, operation

WORKFLOW = Workflow(
    name="ProvisionNetwork",
    module=__name__,
    comment="Build the management service's dedicated VPC step by step (or validate an existing one) and record "
    "it as READY. Input: {} (the manifest is the stack's configuration).",
    timeout=timedelta(hours=1),
    function="NetworkTasks",
    base_payload={"operationId.$": "$$.Execution.Name"},
    chains=operation(
        head=[
            network_lock(network_steps.begin_provision),
            Choice(
                "NetworkMode",
                choices=[({"Variable": "$.begin.mode", "StringEquals": "existing"}, "ValidateExistingNetwork")],
                default="EnsureVpc",
            ),
        ],
        body=[
            Task(network.validate_existing_network, next="EnsureDnsZone"),
            Task(network.ensure_vpc),
            Task(network.ensure_internet_gateway),
            Task(network.ensure_subnets),
            Task(network_steps.list_zones, output="$.zones", select={"names.$": "$.Payload.zones"}),
            Map(
                "EnsureNatGateways",
                comment="An EIP and NAT gateway per zone. CreateNatGateway's token bucket is small (10, 1/s).",
                items="$.zones.names",
                selector={"zone.$": "$$.Map.Item.Value"},
                max_concurrency=3,
                steps=[Task(network.ensure_nat_gateway, args={"zone.$": "$.zone"})],
            ),
            Task(network.check_nat_gateways, name="WaitForNatGateways"),
            Task(network.ensure_route_tables),
            Task(network.ensure_vpc_endpoints),
            Task(network.ensure_dns_zone),
            Task(network.mark_network_ready, name="MarkNetworkReady"),
        ],
        release=[Task(network_steps.finish_network_operation, name="Finish")],
        succeeded="Provisioned",
        failure=network_failure("ProvisionFailed"),
    ),
)
