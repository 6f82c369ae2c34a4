"""Product code says its reasons itself: no comment or docstring points at a document outside the
repository (a design brief's section, a list of anchors, an issue number), which a reader of the
code cannot open."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("kubestep", "kubestep_local", "infra", "lambdas", "scripts")
OUTSIDE = re.compile(r"DESIGN §|ANCHORS|\b[Ii]ssue [0-9]+")


def test_no_product_file_points_at_a_document_outside_the_repository() -> None:
    found = []
    for top in PRODUCT:
        for path in sorted((ROOT / top).rglob("*")):
            if path.suffix not in (".py", ".sh") or "__pycache__" in path.parts:
                continue
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                if OUTSIDE.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)
