"""The Lambda code asset: native code for python3.13 on arm64, a complete lock, no workstation code."""

from __future__ import annotations

import os
import re
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from infra.lambda_asset import ASSET_DIR_ENV, REQUIREMENTS, build_lambda_asset, requirements_hash

# What the python3.13 Lambda runtime provides itself.
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six"}
# The Lambda environment that requirement markers are evaluated in.
LAMBDA_MARKERS = {
    "python_version": "3.13",
    "python_full_version": "3.13.0",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "aarch64",
    "os_name": "posix",
}


@pytest.fixture(scope="module", autouse=True)
def _real_asset() -> None:
    if os.environ.get(ASSET_DIR_ENV):
        pytest.skip(f"{ASSET_DIR_ENV} replaces the built asset")


def _dist_infos(asset: Path) -> list[Path]:
    return sorted(asset.glob("*.dist-info"))


def test_asset_holds_handlers_and_domain_package_but_no_workstation_code(lambda_asset_dir: Path) -> None:
    assert (lambda_asset_dir / "lambdas" / "__init__.py").is_file()
    assert (lambda_asset_dir / "kubestep" / "__init__.py").is_file()
    assert (lambda_asset_dir / "kubestep" / "models.py").is_file()
    assert not (lambda_asset_dir / "kubestep" / "cli").exists()
    assert not (lambda_asset_dir / "kubestep" / "dashboard").exists()
    # The embedded local runtime is its own top-level package and tooling only.
    assert not (lambda_asset_dir / "kubestep_local").exists()
    assert not list(lambda_asset_dir.rglob("kubestep_local*"))
    assert not list(lambda_asset_dir.rglob("__pycache__"))
    assert not (lambda_asset_dir / "boto3").exists() and not (lambda_asset_dir / "botocore").exists()


def test_native_extensions_are_for_cpython_313_on_aarch64(lambda_asset_dir: Path) -> None:
    shared_objects = sorted(lambda_asset_dir.rglob("*.so"))
    assert any(p.name.startswith("_pydantic_core.") for p in shared_objects)
    for path in shared_objects:
        # Version-specific extensions name their interpreter and platform; stable-ABI ones
        # (cryptography's `*.abi3.so`) come from abi3 aarch64 wheels (checked below).
        name = path.name
        assert ("cpython-313" in name and "aarch64" in name) or name.endswith(".abi3.so"), path.relative_to(
            lambda_asset_dir
        )


def test_native_wheels_are_tagged_cp313_manylinux_aarch64(lambda_asset_dir: Path) -> None:
    native = []
    for dist_info in _dist_infos(lambda_asset_dir):
        wheel = Parser().parsestr((dist_info / "WHEEL").read_text())
        tags = wheel.get_all("Tag") or []
        if wheel.get("Root-Is-Purelib", "true").lower() == "true":
            assert all(t.split("-")[-1] == "any" for t in tags), (dist_info.name, tags)
            continue
        native.append(dist_info.name)
        assert tags, dist_info.name
        for tag in tags:
            python, abi, platform = tag.split("-")
            # abi3 wheels run on every CPython from the one they name up (PEP 384).
            stable = abi == "abi3" and re.fullmatch(r"cp3(\d+)", python) and int(python[3:]) <= 13
            assert (python == "cp313" and abi == "cp313") or stable, (dist_info.name, tag)
            assert re.fullmatch(r"manylinux(2014|_\d+_\d+)_aarch64", platform), (dist_info.name, tag)
    assert any(name.startswith("pydantic_core-") for name in native)


def test_requirements_are_fully_pinned_and_the_lock_is_complete(lambda_asset_dir: Path) -> None:
    pinned = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", line
            pinned[canonicalize_name(requirement.name)] = specifier.version
    assert not (set(pinned) & {"boto3", "botocore"}), "the runtime provides boto3/botocore"

    installed = {}
    for dist_info in _dist_infos(lambda_asset_dir):
        metadata = Parser().parsestr((dist_info / "METADATA").read_text())
        installed[canonicalize_name(metadata["Name"])] = (
            metadata["Version"],
            metadata.get_all("Requires-Dist") or [],
        )
    assert {name: version for name, (version, _) in installed.items()} == pinned

    extras = {"aws-lambda-powertools": {"tracer"}}
    for name, (_, requires) in installed.items():
        for text in requires:
            requirement = Requirement(text)
            wanted = extras.get(name, set()) | {""}
            if requirement.marker and not any(
                requirement.marker.evaluate({**LAMBDA_MARKERS, "extra": extra}) for extra in wanted
            ):
                continue
            dependency = canonicalize_name(requirement.name)
            if dependency in RUNTIME_PROVIDED and dependency not in installed:
                continue
            assert dependency in installed, f"{name} needs {text}: pin it in requirements-lambda.txt"
            assert requirement.specifier.contains(installed[dependency][0], prereleases=True), (name, text)


def test_dependencies_are_cached_and_the_asset_is_content_addressed(lambda_asset_dir: Path, tmp_path: Path) -> None:
    assert (lambda_asset_dir.parent / f"deps-{requirements_hash()[:16]}").is_dir()
    # A small project of its own: the real tree may be edited while the suite runs.
    project = tmp_path / "project"
    for relative in (
        "kubestep/__init__.py",
        "kubestep/models.py",
        "kubestep/cli/__init__.py",
        "kubestep_local/__init__.py",
        "kubestep/resources/cli/__init__.py",  # only the domain package's own cli/ is excluded
        "lambdas/__init__.py",
    ):
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(f"# {relative}\n")
    first = build_lambda_asset(project_root=project, build_dir=lambda_asset_dir.parent)
    second = build_lambda_asset(project_root=project, build_dir=lambda_asset_dir.parent)
    assert first == second, "same inputs, same directory (and the same CDK asset hash)"
    assert (first / "kubestep" / "resources" / "cli" / "__init__.py").is_file()
    assert not (first / "kubestep_local").exists() and not (first / "kubestep" / "cli").exists()
    assert (first / "pydantic_core").is_dir()
    (project / "lambdas" / "__init__.py").write_text("# changed\n")
    assert build_lambda_asset(project_root=project, build_dir=lambda_asset_dir.parent) != first


def test_module_level_imports_resolve_inside_lambda(lambda_asset_dir: Path) -> None:
    """Every module-level import of the project code in the asset is the standard library, the
    asset itself or what the runtime provides: a `kubestep_local` or `yaml` import would only
    fail on AWS, where nobody runs the tests."""
    import ast
    import sys

    available = {p.name.removesuffix(".py") for p in lambda_asset_dir.iterdir()} | {"boto3", "botocore"}
    problems = []
    for package in ("kubestep", "lambdas"):
        for module in sorted((lambda_asset_dir / package).rglob("*.py")):
            tree = ast.parse(module.read_text(), filename=str(module))
            for node in tree.body:
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top == "__future__" or top in sys.stdlib_module_names:
                        continue
                    if top not in available or name.startswith(("kubestep_local", "kubestep.cli")):
                        problems.append(f"{module.relative_to(lambda_asset_dir)}: {name}")
    assert not problems, problems
