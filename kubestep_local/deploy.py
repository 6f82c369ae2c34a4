"""Deploy a synthesized CDK cloud assembly into the emulator through moto's CloudFormation.

What ``cdk deploy`` does against AWS, minus the CDK CLI (Node) and the bootstrap stack:

1. publish the file assets listed in ``<stack>.assets.json`` to the bootstrap bucket/key they
   name (``cdk-hnb659fds-assets-<account>-<region>``);
2. provide the bootstrap version SSM parameter the template's ``BootstrapVersion`` parameter
   reads;
3. adapt the template where moto's CloudFormation diverges from AWS (each workaround below says
   why) -- the resources themselves are deployed as synthesized;
4. ``CreateStack`` (or ``UpdateStack``) and return the stack outputs.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
import time
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from kubestep_local.moto_compat import ACCOUNT_ID

LOG = logging.getLogger(__name__)

BOOTSTRAP_QUALIFIER = "hnb659fds"
BOOTSTRAP_VERSION_PARAMETER = f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version"
BOOTSTRAP_VERSION = "30"
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]

# Resource types moto's CloudFormation cannot create (it would only warn and skip them, but a
# Ref/GetAtt to a skipped resource then fails the whole stack). Each is dropped and references
# to it are replaced by the value below. Why each is safe locally:
_DROPPED_TYPES: dict[str, str] = {
    # API Gateway stage/account: moto has no CloudFormation model; the runtime serves the API
    # itself (apigw.py) under the stage name taken from the Stage's StageName.
    "AWS::ApiGateway::Stage": "stage",
    "AWS::ApiGateway::Account": "account",
    # CloudWatch alarms/metric filters have no effect in the emulator.
    "AWS::CloudWatch::Alarm": "alarm",
    "AWS::Logs::MetricFilter": "metric-filter",
    # CDK Metadata has no API at all.
    "AWS::CDK::Metadata": "metadata",
}


class DeployError(RuntimeError):
    """The stack did not reach CREATE_COMPLETE/UPDATE_COMPLETE."""


def _client(service: str, endpoint_url: str, region: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=600),
    )


def _substitute_placeholders(value: str, account: str, region: str, partition: str = "aws") -> str:
    return (
        value.replace("${AWS::AccountId}", account)
        .replace("${AWS::Region}", region)
        .replace("${AWS::Partition}", partition)
        .replace("${AWS::URLSuffix}", "amazonaws.com")
    )


def find_assets_manifest(template_path: Path) -> Path | None:
    candidate = template_path.with_name(template_path.name.replace(".template.json", ".assets.json"))
    if candidate.is_file():
        return candidate
    matches = sorted(template_path.parent.glob("*.assets.json"))
    return matches[0] if matches else None


def _zip_directory(source: Path, cache_dir: Path, asset_hash: str) -> bytes:
    """Zip an asset directory the way the CDK CLI does (cached by the asset's content hash)."""
    cached = cache_dir / f"{asset_hash}.zip"
    if cached.is_file():
        return cached.read_bytes()
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(f".{os.getpid()}.tmp")
    # compresslevel 1: the zip only travels through loopback, speed matters more than size.
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for root, dirs, files in os.walk(source, followlinks=True):
            dirs.sort()
            for name in sorted(files):
                path = Path(root, name)
                archive.write(path, path.relative_to(source).as_posix())
    tmp.replace(cached)
    # Keep the cache bounded: the newest few zips (one per asset version) are enough.
    for stale in sorted(cache_dir.glob("*.zip"), key=lambda p: p.stat().st_mtime, reverse=True)[4:]:
        stale.unlink(missing_ok=True)
    return cached.read_bytes()


def publish_assets(
    assets_manifest: Path,
    endpoint_url: str,
    *,
    account: str = ACCOUNT_ID,
    region: str = "us-east-1",
    cache_dir: Path | None = None,
) -> list[tuple[str, str]]:
    """Upload every file asset to its destination; returns (bucket, key) pairs."""
    manifest = json.loads(assets_manifest.read_text())
    assembly_dir = assets_manifest.parent
    cache_dir = cache_dir or assembly_dir / ".kubestep-zips"
    s3 = _client("s3", endpoint_url, region)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    published = []
    for asset_hash, asset in manifest.get("files", {}).items():
        source = assembly_dir / asset["source"]["path"]
        packaging = asset["source"].get("packaging", "file")
        if source.is_dir() or packaging == "zip":
            body = _zip_directory(source, cache_dir, asset_hash)
        else:
            body = source.read_bytes()
        for destination in asset["destinations"].values():
            dest_region = destination.get("region") or region
            bucket = _substitute_placeholders(destination["bucketName"], account, dest_region)
            key = _substitute_placeholders(destination["objectKey"], account, dest_region)
            if bucket not in existing:
                kwargs: dict[str, Any] = {"Bucket": bucket}
                if dest_region != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": dest_region}
                s3.create_bucket(**kwargs)
                existing.add(bucket)
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            published.append((bucket, key))
    return published


def ensure_bootstrap_version(template: Mapping[str, Any], endpoint_url: str, region: str) -> None:
    """Put the SSM parameter the template's ``BootstrapVersion`` parameter resolves, if needed.

    moto resolves ``AWS::SSM::Parameter::Value<String>`` defaults from its SSM backend
    (``moto/cloudformation/parsing.py:645-653``) and fails when the parameter is missing.
    """
    names = {
        p.get("Default")
        for p in template.get("Parameters", {}).values()
        if str(p.get("Type", "")).startswith("AWS::SSM::Parameter::")
    }
    if BOOTSTRAP_VERSION_PARAMETER not in names:
        return
    ssm = _client("ssm", endpoint_url, region)
    ssm.put_parameter(Name=BOOTSTRAP_VERSION_PARAMETER, Value=BOOTSTRAP_VERSION, Type="String", Overwrite=True)


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.:]+)\}")


def _split_substitutions(text: str, substitutions: Mapping[str, Any]) -> list[Any]:
    """Split ASL text at each ``${Name}`` of ``substitutions`` into Join parts."""
    parts: list[Any] = []
    last = 0
    for match in _PLACEHOLDER.finditer(text):
        name = match.group(1)
        if name not in substitutions:
            continue  # AWS leaves unknown placeholders alone too
        parts.append(text[last : match.start()])
        parts.append(copy.deepcopy(substitutions[name]))
        last = match.end()
    parts.append(text[last:])
    return [p for p in parts if p != ""]


def transform_state_machine(properties: dict[str, Any]) -> dict[str, Any]:
    """Inline the definition and apply ``DefinitionSubstitutions`` for moto.

    moto's ``AWS::StepFunctions::StateMachine`` reads only ``DefinitionString``
    (``moto/stepfunctions/models.py:287``): it ignores ``DefinitionS3Location``/
    ``Definition``/``DefinitionSubstitutions``. The design's recipe was
    ``DefinitionString: {"Fn::Sub": [text, subs]}``, but moto's two-argument ``Fn::Sub`` runs
    ``string.Template.safe_substitute`` per mapping (``moto/cloudformation/parsing.py:192-197``),
    which turns every ``$$`` into ``$`` -- breaking ``$$.Execution.Name``/``$$.Map.Item.Value``
    context paths -- and it crashes when the text is an ``Fn::Join``. So we split the text at each
    substitution placeholder and emit ``Fn::Join`` with the substitution values (Refs/GetAtts)
    as parts, which moto resolves exactly (``parsing.py:176-178``). Same result as AWS.
    """
    props = dict(properties)
    substitutions = props.pop("DefinitionSubstitutions", None) or {}
    definition: Any = props.pop("DefinitionString", None)
    if definition is None and "Definition" in props:
        definition = json.dumps(props.pop("Definition"))
    if definition is None and "DefinitionS3Location" in props:
        raise DeployError(
            "state machine uses DefinitionS3Location (DefinitionBody.from_file): moto cannot read it; "
            "use DefinitionBody.from_string so the template holds the definition"
        )
    props.pop("DefinitionS3Location", None)
    if definition is None:
        return props
    if isinstance(definition, str):
        parts: list[Any] = _split_substitutions(definition, substitutions)
    elif isinstance(definition, dict) and "Fn::Join" in definition:
        separator, items = definition["Fn::Join"]
        parts = []
        for index, item in enumerate(items):
            if index and separator:
                parts.append(separator)
            parts.extend(_split_substitutions(item, substitutions) if isinstance(item, str) else [item])
    elif isinstance(definition, dict) and "Fn::Sub" in definition:
        # Fn::Sub with a variable map has the same `$$` problem: fold its map into the
        # substitutions, and keep single-argument Fn::Sub (no string.Template) for what remains.
        sub = definition["Fn::Sub"]
        text, variables = (sub[0], sub[1]) if isinstance(sub, list) else (sub, {})
        parts = [
            {"Fn::Sub": part} if isinstance(part, str) and "${" in part else part
            for part in _split_substitutions(text, {**substitutions, **variables})
        ]
    else:
        raise DeployError(f"unsupported DefinitionString form: {json.dumps(definition)[:200]}")
    if all(isinstance(p, str) for p in parts):
        props["DefinitionString"] = "".join(parts)
    else:
        props["DefinitionString"] = {"Fn::Join": ["", parts]}
    return props


def _replace_refs(node: Any, replacements: Mapping[str, Any]) -> Any:
    if isinstance(node, dict):
        if set(node) == {"Ref"} and node["Ref"] in replacements:
            return copy.deepcopy(replacements[node["Ref"]])
        if set(node) == {"Fn::GetAtt"}:
            target = node["Fn::GetAtt"]
            name = target[0] if isinstance(target, list) else str(target).split(".", 1)[0]
            if name in replacements:
                return copy.deepcopy(replacements[name])
        return {k: _replace_refs(v, replacements) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_refs(v, replacements) for v in node]
    return node


def prepare_template(template: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of a synthesized template adapted to moto's CloudFormation."""
    out = copy.deepcopy(dict(template))
    resources: dict[str, Any] = out.get("Resources", {})

    # moto does not evaluate template Rules; drop them so a future moto doesn't trip on the
    # CDK's BootstrapVersion assertion either (the SSM parameter is provided regardless).
    out.pop("Rules", None)

    dropped: dict[str, Any] = {}
    for logical_id, resource in list(resources.items()):
        rtype = resource.get("Type")
        props = resource.setdefault("Properties", {})
        if rtype in _DROPPED_TYPES:
            if rtype == "AWS::ApiGateway::Stage":
                dropped[logical_id] = props.get("StageName", "v1")
            else:
                dropped[logical_id] = f"local-{_DROPPED_TYPES[rtype]}-{logical_id}"
            del resources[logical_id]
        elif rtype == "AWS::StepFunctions::StateMachine":
            resource["Properties"] = transform_state_machine(props)
        elif rtype == "AWS::Lambda::Function":
            # Layers are ignored by the seam (dependencies come from the local environment) and
            # moto would try to resolve each layer version ARN.
            props.pop("Layers", None)
    if dropped:
        for resource in resources.values():
            deps = resource.get("DependsOn")
            if isinstance(deps, str):
                deps = [deps]
            if deps:
                deps = [d for d in deps if d not in dropped]
                if deps:
                    resource["DependsOn"] = deps
                else:
                    resource.pop("DependsOn")
        out["Resources"] = _replace_refs(resources, dropped)
        if "Outputs" in out:
            out["Outputs"] = _replace_refs(out["Outputs"], dropped)
    return out


def stack_region(template_path: Path, default: str = "us-east-1") -> str:
    """Region of the stack from the cloud assembly manifest (``aws://<account>/<region>``)."""
    manifest_path = template_path.parent / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        for artifact in manifest.get("artifacts", {}).values():
            if artifact.get("type") != "aws:cloudformation:stack":
                continue
            if artifact.get("properties", {}).get("templateFile") != template_path.name:
                continue
            region = artifact.get("environment", "").rsplit("/", 1)[-1]
            if region and region != "unknown-region":
                return region
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or default


def stack_name_of(template_path: Path) -> str:
    manifest_path = template_path.parent / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        for artifact_id, artifact in manifest.get("artifacts", {}).items():
            props = artifact.get("properties", {})
            if artifact.get("type") == "aws:cloudformation:stack" and props.get("templateFile") == template_path.name:
                return props.get("stackName") or artifact_id
    return template_path.name.removesuffix(".template.json")


def deploy_template(
    template_path: Path,
    endpoint_url: str,
    *,
    stack_name: str | None = None,
    region: str | None = None,
    parameters: Mapping[str, str] | None = None,
    cache_dir: Path | None = None,
    timeout: float = 600,
) -> dict[str, str]:
    """Publish assets, create or update the stack, wait, and return its outputs."""
    template_path = Path(template_path)
    region = region or stack_region(template_path)
    stack_name = stack_name or stack_name_of(template_path)
    template = json.loads(template_path.read_text())

    assets_manifest = find_assets_manifest(template_path)
    if assets_manifest is not None:
        publish_assets(assets_manifest, endpoint_url, region=region, cache_dir=cache_dir)
    ensure_bootstrap_version(template, endpoint_url, region)
    body = json.dumps(prepare_template(template))

    cfn = _client("cloudformation", endpoint_url, region)
    params = [{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()]
    try:
        current = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        if current["StackStatus"].endswith("_FAILED") or current["StackStatus"] == "ROLLBACK_COMPLETE":
            cfn.delete_stack(StackName=stack_name)
            current = None
    except ClientError:
        current = None
    if current is None:
        cfn.create_stack(StackName=stack_name, TemplateBody=body, Parameters=params, Capabilities=CAPABILITIES)
    else:
        deployed = cfn.get_template(StackName=stack_name)["TemplateBody"]
        deployed_text = deployed if isinstance(deployed, str) else json.dumps(deployed)
        if hashlib.sha256(deployed_text.encode()).digest() != hashlib.sha256(body.encode()).digest():
            cfn.update_stack(StackName=stack_name, TemplateBody=body, Parameters=params, Capabilities=CAPABILITIES)

    deadline = time.monotonic() + timeout
    while True:
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        status = stack["StackStatus"]
        if status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            break
        if status.endswith("_FAILED") or "ROLLBACK" in status:
            events = cfn.describe_stack_events(StackName=stack_name).get("StackEvents", [])
            reasons = [
                f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason')}"
                for e in events
                if e.get("ResourceStatusReason")
            ]
            raise DeployError(f"stack {stack_name} is {status}: {'; '.join(reasons[:5])}")
        if time.monotonic() > deadline:
            raise DeployError(f"stack {stack_name} still {status} after {timeout} s")
        time.sleep(0.05)
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
