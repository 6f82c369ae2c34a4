"""PlanRepairs: fired by an EventBridge rule (`<svc>-plan-repairs`, every two minutes), it looks at
every running cluster's members and starts an AutoRepair for each cluster with a member that
stayed unhealthy past its `management.autoRepair.unhealthyAfter` (one replica, or the due nodes),
unless more are unhealthy at once than `maxUnhealthy` allows (then a Warning event, nothing
repaired) or another operation holds the cluster."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Map, Succeed, Task, Workflow
from kubestep.workflows import auto_repair_steps
from kubestep.workflows.fragments import IDENTITY_PAYLOAD

WORKFLOW = Workflow(
    name="PlanRepairs",
    module=__name__,
    comment="Start the automatic repairs that are due: members unhealthy past their unhealthyAfter, within "
    "maxUnhealthy, on clusters no operation holds (EventBridge schedule). Input: the scheduled event (ignored).",
    timeout=timedelta(minutes=10),
    function="ClusterTasks",
    base_payload={"operationId.$": "$$.Execution.Name"},
    chains=[
        [
            Task(
                auto_repair_steps.find_repairs,
                base=False,
                args=dict(IDENTITY_PAYLOAD),
                output="$.plan",
                select={"repairs.$": "$.Payload.repairs"},
            ),
            Map(
                "StartRepairs",
                comment="Each due cluster's AutoRepair, under a deterministic name: firing twice starts it once.",
                items="$.plan.repairs",
                selector={
                    "request.$": "$$.Map.Item.Value.request",
                    "repairId.$": "$$.Map.Item.Value.operationId",
                    "uid.$": "$$.Map.Item.Value.uid",
                },
                max_concurrency=5,
                steps=[
                    Task(
                        auto_repair_steps.start_repair,
                        base=False,
                        args={
                            **IDENTITY_PAYLOAD,
                            "request.$": "$.request",
                            "repairId.$": "$.repairId",
                            "uid.$": "$.uid",
                        },
                    )
                ],
            ),
            Succeed("Planned"),
        ]
    ],
)
