"""`/v1/version` and `/v1/serverconfig`: what this management service is and installs."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from kubestep import __version__, versions
from kubestep.api import schemas
from kubestep.api.http import PREFIX, JsonResponse, deps, json_response, responses
from kubestep.models import API_VERSION

router = APIGatewayRouter()


@router.get(
    f"{PREFIX}/version",
    operation_id="getVersion",
    summary="The management service's version and the Kubernetes versions it installs",
    description="`{kubestep, apiVersion, managementService, region, kubernetesVersions, timeScale}` (the local "
    "runtime's time scale; 1 on AWS).",
    responses=responses(200, schemas.VersionInfo, "Versions"),
    tags=["service"],
)
def get_version() -> JsonResponse:
    current, _ = deps(router)
    return json_response(
        200,
        {
            "kubestep": __version__,
            "apiVersion": API_VERSION,
            "managementService": current.service_name,
            "region": current.region,
            "kubernetesVersions": [f"1.{minor}" for minor in versions.supported_minors()],
            "timeScale": current.time_scale,
        },
    )


@router.get(
    f"{PREFIX}/serverconfig",
    operation_id="getServerConfig",
    summary="The Kubernetes versions kubestep installs, per release channel (GKE's getAwsServerConfig)",
    description="`{asOf, validVersions, minors: [{minor, defaultVersion, endOfLife, supported}], channels: "
    "[{channel, minor, defaultVersion}]}`: a minor past its end of life is not `supported` (no new clusters, "
    "node pools or upgrade targets on it).",
    responses=responses(200, schemas.ServerConfig, "Valid versions and channels"),
    tags=["service"],
)
def get_server_config() -> JsonResponse:
    return json_response(200, versions.catalog().as_view())
