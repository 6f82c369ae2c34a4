"""kubestep's workflows, each declared once in its own module (`create_cluster`, …).

A declaration is the single source of: the ASL file `stepfunctions/<Workflow>.asl.json`
(rendered by `python -m kubestep.workflows`, kept equal by a test), the task dispatch table of
each Lambda function, the order the in-process tests run the steps in, and the diagram in
docs/architecture.md."""

from __future__ import annotations

from functools import cache

from kubestep.flow.asl import Workflow
from kubestep.flow.steps import StepSpec


@cache
def all_workflows() -> dict[str, Workflow]:
    from kubestep.workflows import (
        auto_repair,
        create_cluster,
        create_node_pool,
        delete_backups,
        delete_cluster,
        delete_node_pool,
        deprovision_network,
        plan_repairs,
        plan_upgrades,
        provision_network,
        repair_cluster,
        restore_cluster,
        sweep_orphans,
        update_cluster,
        update_node_pool,
    )

    modules = (
        provision_network,
        deprovision_network,
        create_cluster,
        delete_cluster,
        create_node_pool,
        update_node_pool,
        delete_node_pool,
        update_cluster,
        plan_upgrades,
        # Reliability: repair after hand changes, and the orphan sweeper.
        repair_cluster,
        sweep_orphans,
        # Restore of etcd from one of the cluster's backups; a deleted incarnation's backups deleted.
        restore_cluster,
        delete_backups,
        # Automatic repair: the periodic check, and each cluster's repair.
        plan_repairs,
        auto_repair,
    )
    return {m.WORKFLOW.name: m.WORKFLOW for m in modules}


def workflow(name: str) -> Workflow:
    return all_workflows()[name]


@cache
def dispatch_table(function: str) -> dict[str, StepSpec]:
    """The steps the `<function>` Lambda runs: every task that names it, or whose workflow does."""
    table: dict[str, StepSpec] = {}
    for wf in all_workflows().values():
        table.update(wf.step_specs(function))
    return table
