"""Boundaries the code keeps: DynamoDB key formats only in `kubestep.store`, AWS error codes
only in `kubestep.aws.errors`, moto only in the local runtime and tests; the layers without
knots (nothing in `kubestep.resources` imports a workflow, `kubestep.operations` sits above the
workflows and no workflow imports it back) and no private name used across modules."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

from kubestep.aws import errors

ROOT = Path(__file__).resolve().parents[2]
# Words kubestep's own API also uses (its error code AlreadyExists; OpenAPI's ValidationError).
OWN_VOCABULARY = {"AlreadyExists", "ValidationError"}
KEY_FORMATS = (
    "CLUSTER#",
    "NODEPOOL#",
    "REPLICA#",
    "NODE#",
    "ETCD#",
    "OPERATION#",
    "EVENTS#",
    "BOOTSTRAP#",
    "UID#",
    "ACCESS#",
)


def source_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / line for line in out.splitlines() if not line.startswith("tests/") and (ROOT / line).exists()]


def all_codes() -> set[str]:
    codes: set[str] = set()
    for value in vars(errors).values():
        if isinstance(value, str) and re.fullmatch(r"[A-Z][A-Za-z.]+", value) and value not in {"ClientError"}:
            codes.add(value)
        elif isinstance(value, frozenset):
            codes |= set(value)
        elif isinstance(value, dict):
            for entry in value.values():
                if isinstance(entry, frozenset):
                    codes |= set(entry)
    return codes


def test_no_key_format_outside_the_store():
    offenders = []
    for path in source_files():
        if "kubestep/store/" in str(path):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if any(f'"{key}' in line or f"'{key}" in line or f'f"{key}' in line for key in KEY_FORMATS):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_no_aws_error_code_outside_the_errors_module():
    codes = all_codes() - OWN_VOCABULARY
    assert "DependencyViolation" in codes and "NatGatewayNotFound" in codes
    offenders = []
    for path in source_files():
        if path.name == "errors.py" and path.parent.name == "aws":
            continue
        text = path.read_text()
        for code in codes:
            if f'"{code}"' in text or f"'{code}'" in text:
                offenders.append(f"{path.relative_to(ROOT)}: {code}")
    assert offenders == []


def test_predicates():
    from botocore.exceptions import ClientError

    def error(code: str, message: str = "") -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": message}}, "Op")

    assert errors.is_not_found(error("NatGatewayNotFound"), errors.Kind.NAT_GATEWAY)
    assert errors.is_not_found(error("InvalidNatGatewayID.NotFound"), errors.Kind.NAT_GATEWAY)
    assert not errors.is_not_found(error("InvalidVpcID.NotFound"), errors.Kind.SUBNET)
    assert errors.is_throttling(error("RequestLimitExceeded"))
    assert errors.is_in_use(error("DependencyViolation"))
    assert errors.is_group_gone(error("ValidationError", "AutoScalingGroup name not found - x"))
    assert not errors.is_group_gone(error("ValidationError", "MinSize must be <= MaxSize"))


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, names imported from it, line) of every import in the file, nested ones too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [alias.name for alias in node.names]
            found.append((node.module, names, node.lineno))
            found += [(f"{node.module}.{name}", [], node.lineno) for name in names]
    return found


def _offenders(paths: list[Path], forbidden: str) -> list[str]:
    return [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in paths
        for module, _names, line in _imports(path)
        if module == forbidden or module.startswith(f"{forbidden}.")
    ]


def test_resources_never_import_the_workflows():
    resources = [p for p in source_files() if p.parent == ROOT / "kubestep" / "resources"]
    assert len(resources) > 10
    assert _offenders(resources, "kubestep.workflows") == []


def test_the_operations_and_the_upgrade_planner_do_not_import_each_other():
    """`kubestep.operations` (the API's starts) is above the workflows: the upgrade planner starts
    UpdateCluster through `kubestep.workflows.starts`, which both use."""
    operations, planner = ROOT / "kubestep" / "operations.py", ROOT / "kubestep" / "workflows" / "upgrade_steps.py"
    assert _offenders([planner], "kubestep.operations") == []
    assert _offenders([operations], "kubestep.workflows.upgrade_steps") == []


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_private_name_is_used_across_modules():
    """A name starting with `_` is its module's own: neither imported elsewhere nor reached
    through another module (`module._name`)."""
    offenders = []
    for path in source_files():
        tree = ast.parse(path.read_text())
        modules = set()
        for module, names, line in _imports(path):
            offenders += [f"{path.relative_to(ROOT)}:{line}: {module}.{n}" for n in names if _private(n)]
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kubestep"):
                modules |= {alias.asname or alias.name for alias in node.names}
            elif isinstance(node, ast.Import):
                modules |= {alias.asname for alias in node.names if alias.name.startswith("kubestep") and alias.asname}
        for node in ast.walk(tree):
            reached = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and _private(node.attr)
            if reached and node.value.id in modules:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value.id}.{node.attr}")
    assert offenders == []
