"""What `pip install kubestep` gives (issue 8): the CLI without the CDK, moto or Powertools.

The extras carry those: `cdk` (the CDK app), `local` (the embedded runtime, which also
synthesizes the CDK app), `test` (everything). The second test runs the CLI in a virtualenv
that sees only the project and the installed closure of its core dependencies -- no network,
no pip, about two seconds -- and proves it works against an API endpoint and says which extra
the local runtime needs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
HEAVY = {"aws-cdk-lib", "constructs", "cdk-nag", "moto", "aws-lambda-powertools", "jsii"}
# Import names of the heavy distributions: none may be importable in the CLI's environment.
HEAVY_MODULES = ("aws_cdk", "constructs", "cdk_nag", "moto", "aws_lambda_powertools", "jsii")


def _requirements(texts: list[str], extras: set[str]) -> list[Requirement]:
    out = []
    for text in texts:
        requirement = Requirement(text)
        if requirement.marker and not any(requirement.marker.evaluate({"extra": e}) for e in extras | {""}):
            continue
        out.append(requirement)
    return out


def core_closure() -> dict[str, metadata.Distribution]:
    """The installed distributions `pip install kubestep` (no extras) brings, by name."""
    found: dict[str, metadata.Distribution] = {}
    todo = _requirements(PROJECT["dependencies"], set())
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        distribution = metadata.distribution(requirement.name)
        found[name] = distribution
        todo += _requirements(distribution.requires or [], set(requirement.extras))
    return found


def test_the_core_install_has_no_cdk_moto_or_powertools_and_the_extras_do() -> None:
    closure = core_closure()
    assert {"boto3", "click", "rich", "pyyaml", "pydantic"} <= set(closure)
    assert not set(closure) & HEAVY, sorted(set(closure) & HEAVY)
    extras = PROJECT["optional-dependencies"]
    cdk = {canonicalize_name(Requirement(r).name): Requirement(r) for r in extras["cdk"]}
    assert set(cdk) == {"aws-cdk-lib", "constructs", "cdk-nag"}
    # infra/nag.py uses cdk-nag's v3 API (a policy-validation plugin, Validations.acknowledge).
    assert "3.0.2" in cdk["cdk-nag"].specifier and "4.0.0" not in cdk["cdk-nag"].specifier
    assert metadata.version("cdk-nag").split(".")[0] == "3"
    local = {canonicalize_name(Requirement(r).name): Requirement(r) for r in extras["local"]}
    assert str(local["moto"].specifier) == "==5.2.5" and "server" in local["moto"].extras
    assert local["kubestep"].extras == {"cdk"} and "aws-lambda-powertools" in local
    assert Requirement(extras["test"][0]).extras == {"local", "cdk"}
    # scripts/setup.sh (what the README's two commands run) installs everything.
    assert "pip install --quiet -e '.[test]'" in (ROOT / "scripts" / "setup.sh").read_text()


@pytest.fixture(scope="module")
def cli_only_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv (no system site-packages, no pip) that sees the project's source and the core
    dependency closure only."""
    root = tmp_path_factory.mktemp("cli-only")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root / "venv")], check=True)
    python = root / "venv" / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    exposed = root / "site"
    exposed.mkdir()
    for distribution in [*core_closure().values(), metadata.distribution("kubestep")]:
        for file in distribution.files or []:
            top = file.parts[0]
            if top in ("..", "__pycache__") or top.endswith((".pth", ".data")) or top.startswith("__editable__"):
                continue
            link = exposed / top
            if not link.exists():
                link.symlink_to(distribution.locate_file(top))
    (site / "kubestep-cli-only.pth").write_text(f"{exposed}\n{ROOT}\n")
    return python


class _FakeApi(BaseHTTPRequestHandler):
    """Answers GET /v1/clusters as the management API does."""

    requests: list[tuple[str, str | None]] = []

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        _FakeApi.requests.append((self.path, self.headers.get("Authorization")))
        cluster = {
            "metadata": {"name": "prod"},
            "spec": {},
            "status": {
                "phase": "RUNNING",
                "version": "1.35.4",
                "endpoint": "gke-abc-cp.example",
                "uid": "abc123",
                "controlPlane": {"replicas": [{}, {}, {}]},
            },
        }
        body = json.dumps({"items": [cluster], "nextToken": None}).encode()
        self.send_response(200 if self.path.startswith("/v1/clusters") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def _run(python: Path, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "KUBESTEP_HOME": str(home / ".kubestep"),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }
    return subprocess.run([python, *args], env=env, capture_output=True, text=True, timeout=60, cwd=home)


def test_the_cli_runs_without_the_extras(cli_only_python: Path, fake_api: str, tmp_path: Path) -> None:
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    found = _run(cli_only_python, "-c", probe, *HEAVY_MODULES, "boto3", "kubestep_local", home=tmp_path)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "['boto3', 'kubestep_local']", "the environment is not what the test means"

    help_ = _run(cli_only_python, "-m", "kubestep.cli.main", "--help", home=tmp_path)
    assert help_.returncode == 0, help_.stderr
    for command in ("apply", "get", "describe", "delete", "local", "demo"):
        assert command in help_.stdout

    listed = _run(cli_only_python, "-m", "kubestep.cli.main", "--endpoint", fake_api, "get", "clusters", home=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split()[:6] == ["NAME", "PHASE", "VERSION", "REPLICAS", "NODEPOOLS", "AGE"]
    assert listed.stdout.split()[6:12] == ["prod", "RUNNING", "1.35.4", "0/3", "-", "-"]
    path, authorization = _FakeApi.requests[-1]
    assert path.startswith("/v1/clusters")
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=testing/"), "signed with SigV4"

    # The runtime's commands name the extra they need, in one line.
    for command in (["local", "up"], ["demo"]):
        result = _run(cli_only_python, "-m", "kubestep.cli.main", *command, home=tmp_path)
        assert result.returncode == 1
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"error: `kubestep {' '.join(command)}` needs the local runtime's packages (")
        assert line.endswith("pip install 'kubestep[local]'")
        assert "moto[server]" in line and "aws-cdk-lib" in line
    # Those that only read $KUBESTEP_HOME work without them.
    status = _run(cli_only_python, "-m", "kubestep.cli.main", "local", "status", home=tmp_path)
    assert status.returncode == 1 and status.stdout.startswith("not running")
