"""A newcomer's first hour with a real local runtime (`kubestep local up --detach`, its own
process): the local runtime is a context that follows it across `local down` / `local up` on
other ports, and so do the exports of `eval "$(kubestep local env)"`; `kubestep token` for a
local cluster needs no exports; what `get -o yaml` prints applies back unchanged."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED_HOME = Path(os.environ.get("KUBESTEP_TEST_HOME", ROOT / ".build" / "test-home"))
HOME = SHARED_HOME / f"first-hour-{os.getpid()}"
# A new shell: no endpoint, no context, no AWS configuration.
BARE = {
    "PATH": os.environ["PATH"],
    "HOME": str(HOME),
    "KUBESTEP_HOME": str(HOME),
    "AWS_SHARED_CREDENTIALS_FILE": str(HOME / "no-aws-credentials"),
    "AWS_CONFIG_FILE": str(HOME / "no-aws-config"),
    "AWS_EC2_METADATA_DISABLED": "true",
    **{k: v for k, v in os.environ.items() if k in ("KUBESTEP_TODAY", "PYTHONPATH")},
}


def kubestep(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kubestep", *args],
        env=env or BARE,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )


def in_shell(exports: str, *args: str) -> subprocess.CompletedProcess:
    """`eval "$(kubestep local env)"` earlier in this shell, then `kubestep ARGS`."""
    script = 'eval "$1"; shift; exec "$@"'
    return subprocess.run(
        ["bash", "-c", script, "bash", exports, sys.executable, "-m", "kubestep", *args],
        env=BARE,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )


def free_ports(count: int, avoid: set[int]) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in avoid and port not in ports:
            ports.append(port)
    return ports


def up(*ports: int) -> subprocess.CompletedProcess:
    port, api_port = ports or (0, 0)
    result = kubestep(
        "local", "up", "--detach", "--port", str(port), "--api-port", str(api_port), "--time-scale", "0.02"
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def endpoints(output: str) -> tuple[str, str]:
    aws = re.search(r"AWS endpoint:\s+(\S+)", output).group(1)
    api = re.search(r"API endpoint:\s+(\S+)", output).group(1)
    return aws, api


@pytest.fixture(scope="module")
def runtime():
    shutil.rmtree(HOME, ignore_errors=True)
    if (SHARED_HOME / "local" / "cdk.out").is_dir():  # the synthesized assembly, reused
        shutil.copytree(SHARED_HOME / "local" / "cdk.out", HOME / "local" / "cdk.out")
    HOME.mkdir(parents=True, exist_ok=True)
    first = up()
    try:
        yield first
    finally:
        kubestep("local", "down", "--force")
        shutil.rmtree(HOME, ignore_errors=True)


def test_the_local_runtime_is_a_context_that_follows_a_restart(runtime: subprocess.CompletedProcess) -> None:
    assert "Context:       local" in runtime.stdout
    old_aws, old_api = endpoints(runtime.stdout)
    switched = kubestep("config", "use-context", "local")
    assert switched.returncode == 0, switched.stderr
    exports = kubestep("local", "env").stdout
    assert "export KUBESTEP_CONTEXT=local" in exports and old_api not in exports
    assert kubestep("get", "clusters", "-o", "json").stdout.strip() == "[]"
    assert in_shell(exports, "get", "clusters", "-o", "json").returncode == 0

    assert kubestep("local", "down").returncode == 0
    stopped = kubestep("get", "clusters")
    assert stopped.returncode == 1
    assert "current context local is the local runtime, which is not running" in stopped.stderr
    used = {int(old_aws.rsplit(":", 1)[1]), int(old_api.rstrip("/").rsplit(":", 1)[1])}
    port, api_port = free_ports(2, used)
    # Started again, elsewhere, from the shell that holds the earlier exports: it says which are stale.
    again = in_shell(exports, "local", "up", "--detach", "--port", str(port), "--api-port", str(api_port))
    assert again.returncode == 0, again.stderr + again.stdout
    new_aws, new_api = endpoints(again.stdout)
    assert (new_aws, new_api) != (old_aws, old_api)
    assert f"warning: this shell's AWS_ENDPOINT_URL={old_aws} point at an earlier local runtime" in again.stderr

    # The same context, and the same shell's exports, reach the runtime where it is now.
    contexts = kubestep("config", "get-contexts")
    assert re.search(rf"^\*\s+local\s+{re.escape(new_api)} \(local runtime\)$", contexts.stdout, re.M)
    assert kubestep("get", "clusters", "-o", "json").returncode == 0
    followed = in_shell(exports, "get", "clusters", "-o", "json")
    assert followed.returncode == 0, followed.stderr
    assert f"export AWS_ENDPOINT_URL={new_aws}" in kubestep("local", "env").stdout


def test_a_local_cluster_round_trips_and_its_token_needs_no_exports(runtime: subprocess.CompletedProcess) -> None:
    created = kubestep("apply", "-f", str(ROOT / "examples" / "cluster-ha.yaml"), "--wait", "--context", "local")
    assert created.returncode == 0, created.stderr[-3000:]
    exported = kubestep("get", "cluster", "prod", "-o", "yaml", "--context", "local")
    assert exported.returncode == 0 and "uid:" in exported.stdout and "status:" in exported.stdout
    applied = kubestep("apply", "-f", "-", "--context", "local", stdin=exported.stdout)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout == "awscluster/prod unchanged\n"
    # No AWS credentials anywhere in this environment: the emulator's dummy ones sign the token.
    token = kubestep("token", "prod", "--context", "local")
    assert token.returncode == 0, token.stderr
    assert json.loads(token.stdout)["status"]["token"].startswith("k8s-aws-v1.")
    deleted = kubestep("delete", "cluster", "prod", "--wait", "--context", "local")
    assert deleted.returncode == 0, deleted.stderr[-3000:]
