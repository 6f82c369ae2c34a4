"""Boundaries the code keeps: DynamoDB key formats only in `kubestep.store`, AWS error codes
only in `kubestep.aws.errors`, moto only in the local runtime and tests."""

from __future__ import annotations

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
