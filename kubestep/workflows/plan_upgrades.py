"""PlanUpgrades: fired by an EventBridge rule (`upgrades.plannerSchedule`), it starts the
automatic upgrades that are due: auto-upgrade on, maintenance window open, a version behind the
release channel, no operation running, at most `upgrades.maxConcurrent` upgrading fleet-wide.
Then it keeps the clusters' credentials current: join tokens rotated, certificates close to
expiry warned about."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Map, Succeed, Task, Workflow
from kubestep.workflows import credential_steps, upgrade_steps

WORKFLOW = Workflow(
    name="PlanUpgrades",
    module=__name__,
    comment="Start the automatic upgrades that are due now, rotate the join tokens that are due, warn about "
    "certificates close to expiry (EventBridge schedule). Input: the scheduled event (ignored on AWS: the "
    "execution's start time is now).",
    timeout=timedelta(minutes=15),
    function="UpgradePlanner",
    base_payload={"operationId.$": "$$.Execution.Name"},
    chains=[
        [
            Task(
                upgrade_steps.find_due_upgrades,
                base=False,
                args={
                    "operationId.$": "$$.Execution.Name",
                    "executionArn.$": "$$.Execution.Id",
                    "startTime.$": "$$.Execution.StartTime",
                    "event.$": "$",
                },
                output="$.plan",
                select={"upgrades.$": "$.Payload.upgrades"},
            ),
            Map(
                "StartUpgrades",
                comment="Each due cluster's UpdateCluster, under a deterministic name: firing twice starts it once.",
                items="$.plan.upgrades",
                selector={
                    "clusterName.$": "$$.Map.Item.Value.clusterName",
                    "version.$": "$$.Map.Item.Value.version",
                    "upgradeId.$": "$$.Map.Item.Value.operationId",
                },
                max_concurrency=5,
                steps=[
                    Task(
                        upgrade_steps.start_upgrade,
                        base=False,
                        args={
                            "operationId.$": "$$.Execution.Name",
                            "executionArn.$": "$$.Execution.Id",
                            "clusterName.$": "$.clusterName",
                            "version.$": "$.version",
                            "upgradeId.$": "$.upgradeId",
                        },
                    )
                ],
            ),
            Task(
                credential_steps.rotate_join_tokens,
                comment="A new join token where the newest is a day old (on ClusterTasks: it writes the secrets; "
                "no value passes through the state machine).",
                base=False,
                function="ClusterTasks",
                args={
                    "operationId.$": "$$.Execution.Name",
                    "startTime.$": "$$.Execution.StartTime",
                    "event.$": "$$.Execution.Input",
                },
                output="$.joinTokens",
                select={"rotated.$": "$.Payload.count"},
            ),
            Task(
                credential_steps.warn_expiring_certificates,
                comment="A Warning event for each control-plane certificate within 30 days of expiring.",
                base=False,
                args={
                    "operationId.$": "$$.Execution.Name",
                    "startTime.$": "$$.Execution.StartTime",
                    "event.$": "$$.Execution.Input",
                },
                output="$.certificates",
                select={"warned.$": "$.Payload.count"},
            ),
            Succeed("Planned"),
        ]
    ],
)
