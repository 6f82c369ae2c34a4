"""What `pip install .` gives: the CLI without the CDK, moto or Powertools, in a wheel that holds
the `kubestep` package only.

The extras carry those: `cdk` (the CDK app), `local` (the embedded runtime, which also
synthesizes the CDK app), `test` (everything). The CLI runs in virtualenvs that see only the
project (its checkout, or the wheel `pip wheel` builds from it) and the installed closure of its
core dependencies -- no pip, a few seconds -- and works against an API endpoint, says which extra
the local runtime needs, and, installed from the wheel, that the runtime runs from a checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import tomllib
import zipfile
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
    # scripts/setup.sh installs the runtime's extra for the demo, everything for the tests.
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "pip install -e '.[local]'" in setup and "pip install -e '.[test]'" in setup


def _venv_seeing(root: Path, kubestep_from: Path) -> Path:
    """A virtualenv (no system site-packages, no pip) that sees the core dependency closure and
    the `kubestep` package under `kubestep_from` only (a checkout, or an unpacked wheel)."""
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
    for distribution in core_closure().values():
        for file in distribution.files or []:
            top = file.parts[0]
            if top in ("..", "__pycache__") or top.endswith((".pth", ".data")) or top.startswith("__editable__"):
                continue
            link = exposed / top
            if not link.exists():
                link.symlink_to(distribution.locate_file(top))
    (site / "kubestep-cli-only.pth").write_text(f"{exposed}\n{kubestep_from}\n")
    return python


@pytest.fixture(scope="module")
def cli_only_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkout without the extras: what `pip install -e .` gives."""
    return _venv_seeing(tmp_path_factory.mktemp("cli-only"), ROOT)


def _copy_of_checkout(target: Path) -> Path:
    """The project's files as a fresh clone has them (no virtualenvs, caches or build output)."""
    skipped = {".git", ".venv", ".build", "node_modules", "cdk.out", "__pycache__", "build", "dist", ".artifacts"}

    def ignore(directory: str, names: list[str]) -> set[str]:
        return {n for n in names if n in skipped or n.endswith((".egg-info", ".pyc")) or n.startswith(".pytest")}

    shutil.copytree(ROOT, target, ignore=ignore)
    return target


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip wheel --no-deps .` builds from a copy of the checkout."""
    root = tmp_path_factory.mktemp("wheel")
    source = _copy_of_checkout(root / "source")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(root / "dist"), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (found,) = (root / "dist").glob("kubestep-*.whl")
    return found


def test_the_wheel_holds_the_kubestep_package_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    version = metadata.version("kubestep")
    assert {name.split("/")[0] for name in names} == {"kubestep", f"kubestep-{version}.dist-info"}
    # No top-level kubestep_local, infra or lambdas, and no tests, anywhere in it.
    assert not [n for n in names if n.split("/")[1] in ("kubestep_local", "infra", "lambdas", "tests")]
    for needed in (
        "kubestep/py.typed",
        "kubestep/__main__.py",
        "kubestep/checkout.py",
        "kubestep/data/kubernetes-versions.json",
        "kubestep/bootstrap/scripts/bootstrap.sh",
        "kubestep/dashboard/static/index.html",
    ):
        assert needed in names, needed
    dist_info = f"kubestep-{version}.dist-info"
    entry_points = zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
    assert "kubestep = kubestep.cli.main:main" in entry_points
    wheel_metadata = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    assert {"Provides-Extra: local", "Provides-Extra: cdk", "Provides-Extra: test"} <= set(wheel_metadata.splitlines())
    # What an in-tree build leaves behind is not something to commit.
    assert "build/" in (ROOT / ".gitignore").read_text().splitlines()


def test_the_cli_installed_from_the_wheel(
    wheel: Path, fake_api: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    installed = tmp_path_factory.mktemp("wheel-installed")
    zipfile.ZipFile(wheel).extractall(installed / "wheel")  # a pure-Python wheel's install is its files
    python = _venv_seeing(installed, installed / "wheel")
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    found = _run(python, "-c", probe, "kubestep", "kubestep_local", "infra", "lambdas", home=tmp_path)
    assert found.stdout.strip() == "['kubestep']", found.stderr

    version = _run(python, "-m", "kubestep", "--version", home=tmp_path)
    assert version.returncode == 0 and version.stdout == f"kubestep {metadata.version('kubestep')}\n", version.stderr
    listed = _run(python, "-m", "kubestep", "--endpoint", fake_api, "get", "clusters", "-o", "name", home=tmp_path)
    assert listed.returncode == 0 and listed.stdout == "awscluster/prod\n", listed.stderr

    # The local runtime is the checkout's: every `local` command and the demo say so, in one line.
    for command in (["local", "up"], ["local", "status"], ["demo"]):
        result = _run(python, "-m", "kubestep", *command, home=tmp_path)
        assert result.returncode == 1, result
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"error: `kubestep {' '.join(command)}` needs the local runtime, which runs from a ")
        assert line.endswith("pip install -e '.[local]' in the kubestep checkout (or run bash scripts/demo.sh there)")


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
        assert line.endswith(f"pip install -e '.[local]' in {ROOT} (or run bash scripts/demo.sh there)")
        assert "moto[server]" in line and "aws-cdk-lib" in line
    # Those that only read $KUBESTEP_HOME work without them.
    status = _run(cli_only_python, "-m", "kubestep.cli.main", "local", "status", home=tmp_path)
    assert status.returncode == 1 and status.stdout.startswith("not running")
