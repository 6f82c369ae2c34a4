"""`python -m kubestep.workflows [--check]`: render every workflow declaration to
`stepfunctions/<Workflow>.asl.json` and its diagram into docs/architecture.md. With
`--check`, change nothing and exit 1 if anything differs (what the test suite checks)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from kubestep.workflows import all_workflows

ROOT = Path(__file__).resolve().parents[2]
STEPFUNCTIONS = ROOT / "stepfunctions"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
BEGIN = "<!-- BEGIN GENERATED DIAGRAM {name} -->"
END = "<!-- END GENERATED DIAGRAM {name} -->"


def rendered_files() -> dict[Path, str]:
    return {STEPFUNCTIONS / f"{name}.asl.json": wf.to_json() for name, wf in all_workflows().items()}


def architecture_with_diagrams(text: str) -> str:
    for name, wf in all_workflows().items():
        begin, end = BEGIN.format(name=name), END.format(name=name)
        block = f"{begin}\n```mermaid\n{wf.mermaid()}```\n{end}"
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        if pattern.search(text):
            text = pattern.sub(lambda _m, block=block: block, text)
        else:
            raise SystemExit(f"{ARCHITECTURE} has no {begin} ... {end} block for {name}")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kubestep.workflows", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a rendered file differs")
    args = parser.parse_args(argv)
    wanted = rendered_files()
    wanted[ARCHITECTURE] = architecture_with_diagrams(ARCHITECTURE.read_text())
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    known = set(wanted)
    extra = [p for p in STEPFUNCTIONS.glob("*.asl.json") if p not in known]
    if args.check:
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)}", file=sys.stderr)
        for path in extra:
            print(f"no declaration: {path.relative_to(ROOT)}", file=sys.stderr)
        return 1 if stale or extra else 0
    for path in stale:
        path.write_text(wanted[path])
        print(f"wrote {path.relative_to(ROOT)}")
    for path in extra:
        path.unlink()
        print(f"removed {path.relative_to(ROOT)} (no declaration)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
