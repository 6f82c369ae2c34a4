"""docs/contracts.md names every state machine the project deploys and every index of its table:
what the seams document cannot fall behind what is declared."""

from __future__ import annotations

from pathlib import Path

from infra.state_table import GSI1, GSI2
from kubestep.workflows import all_workflows

CONTRACTS = (Path(__file__).resolve().parents[2] / "docs" / "contracts.md").read_text()


def test_every_state_machine_is_in_the_contracts() -> None:
    (row,) = [line for line in CONTRACTS.splitlines() if line.startswith("| state machines |")]
    named = {part.strip("`, ").removeprefix("<svc>-") for part in row.split("`<svc>-")[1:]}
    named = {n.split("`")[0] for n in named}
    assert named == set(all_workflows()), sorted(named ^ set(all_workflows()))


def test_every_index_of_the_table_is_in_the_contracts() -> None:
    (row,) = [line for line in CONTRACTS.splitlines() if line.startswith("| DynamoDB table |")]
    assert all(f"`{index}`" in row for index in (GSI1, GSI2)), row


def test_the_readme_diagram_names_every_workflow() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    diagram = readme.split("## How it works", 1)[1].split("```", 2)[1]
    assert all(name in diagram for name in all_workflows()), [n for n in all_workflows() if n not in diagram]
