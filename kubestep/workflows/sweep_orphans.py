"""SweepOrphans: what this management service tagged for clusters whose record is gone, older
than a grace period, deleted with DeleteCluster's own steps. Daily (an EventBridge schedule),
and on demand (`kubestep sweep`: a dry run unless `--yes`)."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Choice, Map, Task, Workflow
from kubestep.workflows import sweep_steps
from kubestep.workflows.envelope import ERROR, Failure, operation
from kubestep.workflows.fragments import IDENTITY_PAYLOAD

WORKFLOW = Workflow(
    name="SweepOrphans",
    module=__name__,
    comment="Delete resources this management service tagged for clusters whose record is gone, once older than "
    "the grace period. Input: {dryRun (default true), gracePeriodSeconds (default 3600)}.",
    timeout=timedelta(hours=2),
    function="ClusterTasks",
    base_payload={"operationId.$": "$$.Execution.Name"},
    chains=operation(
        head=[],
        body=[
            Task(
                sweep_steps.list_orphans,
                base=False,
                args={"request.$": "$", **IDENTITY_PAYLOAD},
                output="$.found",
                select={"orphans.$": "$.Payload.orphans", "dryRun.$": "$.Payload.dryRun"},
            ),
            Choice(
                "DryRun",
                choices=[({"Variable": "$.found.dryRun", "BooleanEquals": True}, "RecordSweep")],
                default="SweepEach",
            ),
            Map(
                "SweepEach",
                items="$.found.orphans",
                selector={"uid.$": "$$.Map.Item.Value.uid", "clusterName.$": "$$.Map.Item.Value.clusterName"},
                max_concurrency=2,
                steps=[Task(sweep_steps.sweep_orphan, args={"uid.$": "$.uid", "clusterName.$": "$.clusterName"})],
            ),
            Task(sweep_steps.record_sweep, args={"found.$": "$.found"}),
        ],
        succeeded="Swept",
        failure=Failure("SweepFailed", record=Task(sweep_steps.record_sweep_failure, args=ERROR)),
    ),
)
