"""The management API: REST API `<svc>-kubestep`, IAM-authorized, Lambda proxy under `/v1`."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

# The stage is `api`; the version lives in the path (`/v1/...`), so URLs read `<ApiUrl>v1/clusters`.
STAGE = "api"
ACCESS_LOGGING_CONTEXT = "kubestep:apiAccessLogging"


class ManagementApi(Construct):
    """`ANY /v1` and `ANY /v1/{proxy+}` → the api function; every method `AWS_IAM` (SigV4).

    Access logging is off by default: it needs the account-level API Gateway CloudWatch role
    (`AWS::ApiGateway::Account`), a singleton per account and region that one stack must not
    own (deleting the stack would break every other API's logging). Turn it on with
    `-c kubestep:apiAccessLogging=true` once that role is set in the account.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        service: str,
        function: lambda_.IFunction,
        access_logging: bool = False,
        log_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.access_logging = access_logging
        access_log_options: dict[str, object] = {}
        if access_logging:
            access_logs = logs.LogGroup(
                self,
                "AccessLogs",
                retention=logs.RetentionDays.ONE_MONTH,
                removal_policy=cdk.RemovalPolicy.DESTROY,
                encryption_key=log_key,
            )
            access_log_options = {
                "access_log_destination": apigw.LogGroupLogDestination(access_logs),
                "access_log_format": apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            }
        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{service}-kubestep",
            description=f"kubestep {service}: management API (SigV4 / IAM)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Never create AWS::ApiGateway::Account (see the class docstring).
            cloud_watch_role=False,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE,
                throttling_rate_limit=50,
                throttling_burst_limit=100,
                tracing_enabled=True,
                **access_log_options,  # type: ignore[arg-type]
            ),
            default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
        )
        # The stack has its own `ApiUrl` output (docs/contracts.md); drop RestApi's extra one.
        self.rest_api.node.try_remove_child("Endpoint")
        # No console test-invoke permission: only the deployed stage may invoke the function.
        integration = apigw.LambdaIntegration(function, proxy=True, allow_test_invoke=False)
        v1 = self.rest_api.root.add_resource("v1")
        v1.add_method("ANY", integration)
        v1.add_proxy(default_integration=integration, any_method=True)

    @property
    def url(self) -> str:
        """The stage URL, `https://<id>.execute-api.<region>.amazonaws.com/api/`."""
        return self.rest_api.url
