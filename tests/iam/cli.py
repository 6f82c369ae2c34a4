"""AWS CLI command lines (what the bootstrap scripts run, as the sandbox's stub recorded them) as
the API calls the CLI makes, so the IAM check can evaluate an instance's own calls.

The CLI's operation and option names are botocore's, hyphenated (`put-item` = PutItem,
`--table-name` = TableName); values of structures, maps and lists of structures are JSON, lists
of strings the words that follow, booleans flags (`--consistent-read`, `--no-...`). A waiter
(`aws route53 wait resource-record-sets-changed`) polls its waiter's operation."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from typing import Any

import botocore.session
from botocore import xform_name
from botocore.model import OperationModel, ServiceModel

from kubestep_local.recorder import CallRecord

# Options the CLI itself consumes.
_CLI_OPTIONS = {"--region", "--query", "--output", "--profile", "--endpoint-url", "--no-cli-pager"}
_WAITER_OPERATIONS = {("route53", "resource-record-sets-changed"): "GetChange"}


# CLI command names that are not botocore's service names.
_SERVICES = {"s3api": "s3"}
# Operations whose last word is a positional argument, not an option's value (AWS CLI Command
# Reference, s3api get-object: `outfile`, the file the body is written to).
_POSITIONAL_LAST = {("s3api", "get-object")}


@cache
def _service(name: str) -> ServiceModel:
    return botocore.session.get_session().get_service_model(_SERVICES.get(name, name))


def _operation(service: ServiceModel, cli_name: str) -> OperationModel:
    for name in service.operation_names:
        if xform_name(name, "-") == cli_name:
            return service.operation_model(name)
    raise ValueError(f"{service.service_name} has no operation {cli_name}")


def _value(shape: Any, words: list[str]) -> Any:
    if shape.type_name in ("structure", "map") or (shape.type_name == "list" and shape.member.type_name != "string"):
        return json.loads(words[0])
    if shape.type_name == "list":
        return list(words)
    if shape.type_name == "boolean":
        return True
    if shape.type_name in ("integer", "long"):
        return int(words[0])
    return words[0]


def _params(operation: OperationModel, args: Sequence[str]) -> dict[str, Any]:
    members = {xform_name(name, "-"): (name, shape) for name, shape in operation.input_shape.members.items()}
    params: dict[str, Any] = {}
    i = 0
    while i < len(args):
        option = args[i]
        if not option.startswith("--"):
            raise ValueError(f"unexpected CLI word {option!r}")
        words = []
        i += 1
        while i < len(args) and not args[i].startswith("--"):
            words.append(args[i])
            i += 1
        if option in _CLI_OPTIONS:
            continue
        name = option[2:]
        negated = name.startswith("no-") and name[3:] in members
        member = members.get(name[3:] if negated else name)
        if member is None:
            raise ValueError(f"{operation.name} has no option {option}")
        params[member[0]] = False if negated else _value(member[1], words)
    return params


def region_of(args: Sequence[str]) -> str | None:
    return next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "--region"), None)


def call_record(
    args: Sequence[str], *, role_name: str, source_instance_arn: str | None, region: str | None = None
) -> CallRecord:
    """One `aws SERVICE OPERATION ...` command line (without `aws`) as the call it makes."""
    service_name, cli_operation, *rest = args
    service = _service(service_name)
    if cli_operation == "wait":
        operation = service.operation_model(_WAITER_OPERATIONS[(service_name, rest[0])])
        rest = rest[1:]
    else:
        operation = _operation(service, cli_operation)
    if (service_name, cli_operation) in _POSITIONAL_LAST:
        rest = rest[:-1]
    params = _params(operation, rest)
    prefix = service.metadata.get("signingName") or service.endpoint_prefix
    return CallRecord(
        role_name,
        None,
        None,
        f"{prefix}:{operation.name}",
        service_name,
        operation.name,
        region_of(args) or region,
        params,
        role_name=role_name,
        source_instance_arn=source_instance_arn,
    )
