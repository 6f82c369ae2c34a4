"""The README's two commands on a fresh machine, with every installer replaced by a stub that
records what it was asked to do: `scripts/demo.sh` installs what the demo needs (the project with
its `local` extra, a supported Node.js) and says so as it goes, never a Debian package or a test
tool, even as root; `scripts/test.sh` adds the test tools. And `source scripts/env.sh` leaves
npm's global directory where it was."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What the scripts run from the machine (everything else is a stub).
REAL_TOOLS = (
    "bash", "sh", "cat", "sha256sum", "cut", "grep", "du", "awk", "mkdir", "dirname", "sleep", "tail",
    "rm", "ls", "readlink", "chmod", "env", "touch", "cp", "tr", "wc",
)  # fmt: skip

STUB = """#!/bin/bash
echo "${{0##*/}} $*" >> "$STUB_LOG"
{body}
"""
# The fake interpreter: `-m venv DIR` makes a virtualenv holding the fake interpreter; anything
# else (pip) prints what pip prints.
PYTHON_BODY = """
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin" && cp "$0" "$3/bin/python" && chmod +x "$3/bin/python"
else
  echo "Collecting something"
  echo "Installing collected packages: something"
fi
"""
# The fake npm installs what it is asked for under --prefix, as far as the scripts look.
NPM_BODY = """
prefix=$6
for package in "${@:7}"; do
  case $package in
    node@*) mkdir -p "$prefix/node_modules/.bin"
            printf '#!/bin/bash\\necho v22.0.0\\n' > "$prefix/node_modules/.bin/node" ;;
    axe-core@*) mkdir -p "$prefix/node_modules/axe-core" && touch "$prefix/node_modules/axe-core/axe.min.js" ;;
    asl-validator@*) mkdir -p "$prefix/node_modules/.bin" && touch "$prefix/node_modules/.bin/asl-validator" ;;
  esac
done
chmod +x "$prefix"/node_modules/.bin/* 2>/dev/null
"""
STUBS = {
    "python3": PYTHON_BODY,
    "npm": NPM_BODY,
    "apt-get": "",
    "dpkg-deb": "",
    "id": 'if [ "$1" = -u ]; then echo 0; else echo "uid=0(root)"; fi',  # as root: the worst case
    "node": "echo v20.19.0",  # a Node.js jsii no longer supports
}


@pytest.fixture
def fresh_clone(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The scripts and what they hash in an empty directory, and a PATH of stubs and the few real
    tools the scripts use (so no real `shellcheck`, `chromium`... is found: all are missing)."""
    clone = tmp_path / "kubestep"
    (clone / "scripts").mkdir(parents=True)
    for name in ("setup.sh", "demo.sh", "test.sh", "env.sh"):
        shutil.copy(ROOT / "scripts" / name, clone / "scripts" / name)
    for name in ("pyproject.toml", "requirements-lambda.txt"):
        shutil.copy(ROOT / name, clone / name)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in REAL_TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    for name, body in STUBS.items():
        (bin_dir / name).write_text(STUB.format(body=body))
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "calls.log"
    log.touch()
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "STUB_LOG": str(log), "PYTHON": str(bin_dir / "python3")}
    return clone, env


def _run(clone: Path, env: dict[str, str], *command: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    result = subprocess.run(
        ["bash", *command], cwd=clone, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    calls = Path(env["STUB_LOG"]).read_text().splitlines()
    return result, calls


def _fake_kubestep(clone: Path) -> None:
    """The virtualenv's `kubestep` (what `kubestep demo` would run), made after setup made .venv."""
    kubestep = clone / ".venv" / "bin" / "kubestep"
    kubestep.write_text(STUB.format(body=""))
    kubestep.chmod(0o755)


def test_the_demo_installs_the_runtime_only_and_says_what_it_does(fresh_clone: tuple[Path, dict[str, str]]) -> None:
    clone, env = fresh_clone
    setup, _ = _run(clone, env, "scripts/setup.sh", "runtime")
    assert setup.returncode == 0, setup.stderr
    _fake_kubestep(clone)
    Path(env["STUB_LOG"]).write_text("")
    result, calls = _run(clone, env, "scripts/demo.sh", "--keep")
    assert result.returncode == 0, result.stderr
    # Set up already: the second run installs nothing and goes straight to the demo.
    assert [c for c in calls if not c.startswith("node --version")] == ["kubestep demo --keep"], calls


def test_a_fresh_demo_set_up(fresh_clone: tuple[Path, dict[str, str]]) -> None:
    clone, env = fresh_clone
    (clone / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(env["PYTHON"], clone / ".venv" / "bin" / "python")  # a virtualenv with nothing in it
    _fake_kubestep(clone)
    result, calls = _run(clone, env, "scripts/demo.sh")
    assert result.returncode == 0, result.stderr
    pip = [c for c in calls if " pip " in f" {c} "]
    assert pip == ["python -m pip install -e .[local]"], calls
    assert [c for c in calls if c.startswith("npm")] == [
        "npm install --no-save --no-audit --no-fund --prefix .build/node node@22"
    ]
    assert not [c for c in calls if c.startswith(("apt-get", "dpkg-deb"))], calls
    assert not [c for c in calls if re.search(r"checkov|axe-core|asl-validator|\[test\]|kubernetes-client", c)]
    assert calls[-1] == "kubestep demo"
    out = result.stdout
    assert "==> installing the project with its local extra into .venv" in out
    assert "==> installing node@22 into .build/node" in out
    assert re.search(r"^    done in \d+s \(\.venv: \d+ MB\)$", out, re.M), out
    # The closing note: this set-up's time and disk, next to what the test set-up adds.
    assert re.search(r"set-up for the demo: \d+s this time, \d+ MB on disk .*scripts/test\.sh adds", out), out


def test_the_test_set_up_adds_the_test_tools(fresh_clone: tuple[Path, dict[str, str]]) -> None:
    clone, env = fresh_clone
    result, calls = _run(clone, env, "scripts/setup.sh", "test")
    assert result.returncode == 0, result.stderr
    assert "python -m pip install -e .[test]" in calls
    assert "python -m pip install checkov==3.3.30" in calls
    npm = "npm install --no-save --no-audit --no-fund --prefix .build/node"
    assert f"{npm} node@22 axe-core@4 asl-validator@4.0.0" in calls
    apt = [c for c in calls if c.startswith("apt-get install")]
    assert apt == ["apt-get install -y -qq shellcheck cloud-init etcd-server etcd-client chromium"], calls
    assert "apt-get download -qq kubernetes-client" in calls
    assert "==> apt-get install shellcheck cloud-init etcd-server etcd-client chromium" in result.stdout
    # After it, a demo set-up finds the runtime's packages there (the test extra holds them).
    Path(env["STUB_LOG"]).write_text("")
    again, calls = _run(clone, env, "scripts/setup.sh", "runtime")
    assert again.returncode == 0 and not [c for c in calls if " pip " in f" {c} "], calls


def test_env_sh_leaves_npms_global_directory_where_it_was(tmp_path: Path) -> None:
    """`npm install -g aws-cdk` after `source scripts/env.sh` must put `cdk` where it goes without
    it (on PATH), not into the project's Node.js directory."""
    assert shutil.which("npm"), "npm is required (scripts/setup.sh says so)"
    script = f'before=$(npm prefix -g); source "{ROOT}/scripts/env.sh"; echo "$before"; npm prefix -g; command -v node'
    # The shell before it: no project's Node.js on PATH yet (the test runner's may have sourced it).
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if "/.build/node/" not in p)
    env = {"PATH": path, "HOME": str(tmp_path)}
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    before, after, _node = result.stdout.split()
    assert after == before and not after.startswith(str(ROOT)), result.stdout


def test_the_demos_closing_note_and_the_readme_give_the_same_numbers() -> None:
    """The set-up's reference numbers are measured once and written twice: in README's first
    screen and in the note `scripts/demo.sh` ends with."""
    note = (ROOT / "scripts" / "demo.sh").read_text()
    readme = (ROOT / "README.md").read_text()
    (demo_row,) = [line for line in readme.splitlines() if line.startswith("| `bash scripts/demo.sh` |")]
    (test_row,) = [line for line in readme.splitlines() if line.startswith("| `bash scripts/test.sh` |")]
    demo_time, demo_disk = re.search(r"set-up (\d+) s.*\| (\d+) MB \|$", demo_row).groups()
    more_time, more_disk = re.search(r"about (\d+) s more.*\((\d+) MB more", test_row).groups()
    assert f"from nothing about {demo_time} s and {demo_disk} MB" in note
    assert f"about {more_time} s and {more_disk} MB more" in note
