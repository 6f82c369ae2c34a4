"""Entry points: `build_app()` for `app.py` / `cdk synth`, `synthesize()` for the local runtime."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import cx_api
from cdk_nag import AwsSolutionsChecks

from infra.api import ACCESS_LOGGING_CONTEXT
from infra.config import PROJECT_ROOT, load_service_config
from infra.lambda_asset import build_lambda_asset
from infra.stack import ManagementServiceStack
from infra.state_machines import STEPFUNCTIONS_DIR, discover_workflows

MANIFEST_CONTEXT = "kubestep:managementService"
STEPFUNCTIONS_CONTEXT = "kubestep:stepFunctionsDir"
CDK_JSON = PROJECT_ROOT / "cdk.json"


def _cdk_json_context() -> dict[str, Any]:
    """cdk.json's context (feature flags), so `python app.py` synthesizes what `cdk synth` does.

    The CDK CLI passes the same context through CDK_CONTEXT_JSON, which the App applies on
    top of this.
    """
    try:
        return dict(json.loads(CDK_JSON.read_text()).get("context", {}))
    except FileNotFoundError:
        return {}


def _truthy(value: object) -> bool:
    return str(value).lower() in {"1", "true", "yes", "on"}


def build_app(
    outdir: str | None = None,
    manifest_path: str | None = None,
    *,
    stepfunctions_dir: str | Path | None = None,
    context: dict[str, Any] | None = None,
) -> cdk.App:
    """The CDK app with one `kubestep-<svc>` stack, checked by cdk-nag's AwsSolutions pack.

    The manifest comes from `manifest_path`, else context `kubestep:managementService`, else
    `examples/management-service.yaml`. `stepfunctions_dir` (or context
    `kubestep:stepFunctionsDir`) replaces `stepfunctions/`, for tests.
    """
    app = cdk.App(outdir=outdir, context={**_cdk_json_context(), **(context or {})})
    config = load_service_config(manifest_path or app.node.try_get_context(MANIFEST_CONTEXT))
    workflows_dir = stepfunctions_dir or app.node.try_get_context(STEPFUNCTIONS_CONTEXT)
    workflows = discover_workflows(Path(workflows_dir) if workflows_dir else STEPFUNCTIONS_DIR)

    ManagementServiceStack(
        app,
        config=config,
        asset_dir=build_lambda_asset(),
        workflows=workflows,
        api_access_logging=_truthy(app.node.try_get_context(ACCESS_LOGGING_CONTEXT) or False),
        # Environment-agnostic account unless the CLI (or the caller) provides one; the
        # region is the manifest's: everything the service creates lives there.
        env=cdk.Environment(account=os.environ.get("CDK_DEFAULT_ACCOUNT"), region=config.region),
    )
    # cdk-nag v3 runs as a policy-validation plugin: synth fails on unacknowledged findings.
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def template_path(assembly: cx_api.CloudAssembly) -> Path:
    """The kubestep stack's template in a synthesized cloud assembly."""
    stacks = [s for s in assembly.stacks if s.stack_name.startswith("kubestep-")]
    if len(stacks) != 1:
        raise RuntimeError(
            f"expected one kubestep stack in {assembly.directory}, found {[s.stack_name for s in stacks]}"
        )
    return Path(stacks[0].template_full_path)


def synthesize(
    outdir: str,
    manifest_path: str | None = None,
    *,
    stepfunctions_dir: str | Path | None = None,
    context: dict[str, Any] | None = None,
) -> Path:
    """Synthesize into `outdir` and return the path of the stack's template JSON.

    Raises if cdk-nag reports an unacknowledged finding (CDK's policy validation).
    """
    app = build_app(outdir=outdir, manifest_path=manifest_path, stepfunctions_dir=stepfunctions_dir, context=context)
    return template_path(app.synth())
