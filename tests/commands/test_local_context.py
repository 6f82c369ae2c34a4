"""The local runtime is a context like any other: `config use-context local` works, the context
(and what `eval "$(kubestep local env)"` exports) follows the runtime to its current endpoints,
and `kubestep token` for a local cluster needs no exported credentials. The runtime here is the
in-process API, recorded in $KUBESTEP_HOME/local.json as `kubestep local up` records itself;
tests/cli/test_first_hour.py restarts a real one on other ports."""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

import pytest

from kubestep.store import ClusterRecord
from tests.api.conftest import body_named, register
from tests.commands.conftest import Service

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")

# No endpoint from the environment: what a new shell has.
BARE = {"KUBESTEP_API_URL": None, "KUBESTEP_CONTEXT": None}


def _dead_url() -> str:
    """A loopback URL nobody listens on (where a stopped runtime was)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def _runtime_at(home: Path, api_url: str) -> None:
    """What a local runtime that started listening at `api_url` writes (this process stands in)."""
    home.mkdir(parents=True, exist_ok=True)
    state = {
        "endpoint_url": "http://127.0.0.1:4566",
        "api_url": api_url,
        "region": "us-east-1",
        "outputs": {"ServiceName": "demo"},
        "pid": os.getpid(),
        "home": str(home),
        "persistent": True,
    }
    (home / "local.json").write_text(json.dumps(state))


@pytest.fixture
def home(service: Service, tmp_path: Path) -> Path:
    service.home = tmp_path / "home"
    _runtime_at(service.home, service.gateway.url)
    return service.home


@pytest.fixture(scope="module")
def prod(service: Service) -> ClusterRecord:
    return register(service.store, body_named("prod"), "create-prod0001-1")


def test_use_context_local_and_it_follows_a_restart(service: Service, home: Path, prod: ClusterRecord) -> None:
    switched = service.run("config", "use-context", "local", env=BARE)
    assert switched.exit_code == 0 and switched.stdout == 'Switched to context "local".\n', switched.output
    contexts = service.run("config", "get-contexts", env=BARE)
    assert re.search(rf"^\*\s+local\s+{re.escape(service.gateway.url)} \(local runtime\)$", contexts.stdout, re.M)
    assert service.run("get", "clusters", "-o", "name", env=BARE).stdout == "awscluster/prod\n"

    # The runtime stopped: the context says so (and how to start it), rather than a bare URL error.
    (home / "local.json").unlink()
    stopped = service.run("get", "clusters", env=BARE)
    assert stopped.exit_code == 1
    assert stopped.stderr == (
        "error: current context local is the local runtime, which is not running: "
        "start it with `kubestep local up --detach`\n"
    )
    # It started again, elsewhere: the same context, no new configuration, reaches it.
    _runtime_at(home, service.gateway.url)
    assert service.run("get", "clusters", "-o", "name", env=BARE).stdout == "awscluster/prod\n"
    assert service.run("--context", "local", "get", "clusters", "-o", "name", env=BARE).exit_code == 0


def test_local_env_exports_the_context_not_a_port(service: Service, home: Path, prod: ClusterRecord) -> None:
    """What `eval "$(kubestep local env)"` sets keeps working after the runtime moves."""
    printed = service.run("local", "env", env=BARE)
    assert printed.exit_code == 0, printed.output
    exports = dict(re.findall(r"^export (\w+)=(\S+)$", printed.stdout, re.M))
    assert exports["KUBESTEP_CONTEXT"] == "local" and "KUBESTEP_API_URL" not in exports
    assert exports["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4566"
    shell = {**BARE, "KUBESTEP_CONTEXT": exports["KUBESTEP_CONTEXT"]}
    _runtime_at(home, _dead_url())
    assert service.run("get", "clusters", env=shell).exit_code == 1  # where it was: nobody answers
    _runtime_at(home, service.gateway.url)  # where it is now
    assert service.run("get", "clusters", "-o", "name", env=shell).stdout == "awscluster/prod\n"
    unset = service.run("local", "env", "--unset", env=BARE).stdout
    assert {"KUBESTEP_CONTEXT", "KUBESTEP_API_URL", "AWS_ENDPOINT_URL"} <= set(unset.split())


def test_token_for_a_local_cluster_needs_no_exported_credentials(
    service: Service, home: Path, prod: ClusterRecord
) -> None:
    no_credentials = {
        **BARE,
        "AWS_ACCESS_KEY_ID": None,
        "AWS_SECRET_ACCESS_KEY": None,
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"),
        "AWS_CONFIG_FILE": str(home / "none"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    # The API function runs in this process and its clients keep the credentials they were made
    # with: make them now (as any earlier command would have), before the CLI's environment loses its.
    assert service.run("get", "cluster", "prod", "-o", "name", env=BARE).exit_code == 0
    result = service.run("token", "prod", env=no_credentials)
    assert result.exit_code == 0, result.output
    credential = json.loads(result.stdout)
    assert credential["kind"] == "ExecCredential" and credential["status"]["token"].startswith("k8s-aws-v1.")


def test_the_local_context_is_built_in(service: Service, home: Path) -> None:
    refused = service.run("config", "set-context", "local", "--endpoint", "https://example.com/", env=BARE)
    assert refused.exit_code == 2 and "is the local runtime's context" in refused.stderr
    assert service.run("config", "delete-context", "local", env=BARE).exit_code == 2
    typo = service.run("config", "use-context", "locl", env=BARE)
    assert typo.exit_code == 2 and "(did you mean 'local'?)" in typo.stderr
