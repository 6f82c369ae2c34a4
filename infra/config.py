"""The stack's configuration: the validated AWSManagementService manifest and what follows from it."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from kubestep.models import AWSManagementService, dump

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MANIFEST = PROJECT_ROOT / "examples" / "management-service.yaml"

# The tag every resource of one management service carries; IAM conditions key on it.
SERVICE_TAG = "gke:management-service"


class ManifestError(ValueError):
    """The management-service manifest cannot be read or breaks a rule."""


@dataclass(frozen=True)
class ServiceConfig:
    """What the constructs need from the manifest, already validated."""

    name: str
    region: str
    manifest: dict[str, Any]
    kms_key_arn: str | None = None
    permissions_boundary: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def manifest_json(self) -> str:
        """Compact JSON for the `KUBESTEP_MANAGEMENT_SERVICE` environment variable."""
        return json.dumps(self.manifest, separators=(",", ":"), sort_keys=True)

    @property
    def planner_schedule(self) -> str:
        """How often PlanUpgrades runs (`spec.upgrades.plannerSchedule`)."""
        upgrades = (self.manifest.get("spec") or {}).get("upgrades") or {}
        return upgrades.get("plannerSchedule") or "rate(15 minutes)"

    @property
    def stack_name(self) -> str:
        return f"kubestep-{self.name}"

    @property
    def table_name(self) -> str:
        return f"{self.name}-kubestep"


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ManifestError(f"cannot read management-service manifest {path}: {exc}") from exc
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path} is not valid YAML/JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ManifestError(f"{path}: expected a mapping with apiVersion, kind, metadata, spec")
    return doc


def load_service_config(path: str | Path | None = None) -> ServiceConfig:
    """Read and validate an AWSManagementService manifest (YAML or JSON)."""
    manifest_path = Path(path) if path else DEFAULT_MANIFEST
    if not manifest_path.is_absolute() and not manifest_path.exists():
        # cdk.json's default is relative to the project, wherever the CLI runs from.
        manifest_path = PROJECT_ROOT / manifest_path
    doc = _read(manifest_path)
    if doc.get("kind") != "AWSManagementService":
        raise ManifestError(f"{manifest_path}: kind must be AWSManagementService, not {doc.get('kind')!r}")
    try:
        service = AWSManagementService.model_validate(doc)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(manifest)'}: {err['msg']}" for err in exc.errors()
        )
        raise ManifestError(f"{manifest_path}: {problems}") from None
    spec = service.spec
    return ServiceConfig(
        name=service.name,
        region=spec.region,
        manifest=dump(service),
        kms_key_arn=spec.kms_key_arn,
        permissions_boundary=spec.iam.permissions_boundary,
        tags=dict(spec.tags),
    )
