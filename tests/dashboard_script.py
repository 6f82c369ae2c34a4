"""Runs pieces of the dashboard's static/app.js in Node.js, as the browser would run them, for
tests of its pure functions."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "kubestep" / "dashboard" / "static" / "app.js"


def node() -> str:
    local = ROOT / ".build" / "node" / "node_modules" / ".bin" / "node"
    found = str(local) if local.exists() else shutil.which("node")
    assert found, "Node.js is installed by scripts/setup.sh"
    return found


def app_source(*signatures: str) -> str:
    """The top-level declarations of app.js that start with these lines' beginnings
    (`function criticalPath(bars)`, `const TERMINAL`), each exactly once."""
    source = APP.read_text()
    pieces = []
    for signature in signatures:
        if signature.startswith("const "):
            pattern = rf"^{re.escape(signature)}.*?\n"  # one line
        else:
            pattern = rf"^{re.escape(signature)} \{{\n.*?^\}}\n"  # to the closing brace at the line's start
        (piece,) = re.findall(pattern, source, re.S | re.M)
        pieces.append(piece)
    return "".join(pieces)


def run_printing_json(script: str) -> Any:
    """Runs the script in Node.js and reads what it printed as JSON."""
    done = subprocess.run([node(), "-e", script], capture_output=True, text=True, check=True, timeout=60)
    return json.loads(done.stdout)
