"""Reaching a cluster: `get-credentials` (a kubeconfig context), `token` (the exec plugin kubectl
runs) and `tunnel` (SSM port forwarding to the internal NLB)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from kubestep.api.client import ApiClient, ApiError
from kubestep.auth import kubeconfig
from kubestep.auth.token import EXEC_API_VERSIONS, TokenError, exec_credential, mint_token, requested_exec_api_version
from kubestep.cli.errors import InputError
from kubestep.cli.target import Target, home, read_local_state, target_of

if TYPE_CHECKING:  # boto3 and cryptography are imported by the commands that sign or read a certificate
    import boto3

DEFAULT_TUNNEL_PORT = 8443
TUNNEL_SUFFIX = "-tunnel"  # the context that reaches the cluster through `kubestep tunnel`
PORT_FORWARDING_DOCUMENT = "AWS-StartPortForwardingSessionToRemoteHost"
API_PORT = 443
EXEC_VERSIONS = {version.rsplit("/", 1)[1]: version for version in EXEC_API_VERSIONS}


class CredentialsError(click.ClickException):
    """One line on stderr, exit 1 (the CLI's convention for a failed operation)."""

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.message}", err=True)


@dataclass
class Connection:
    """The management API this invocation talks to, and the local runtime's state when that is
    what it talks to."""

    target: Target
    client: ApiClient
    local: dict[str, Any] | None

    @property
    def api_url(self) -> str:
        return self.client.base_url

    @property
    def region(self) -> str | None:
        if self.local:
            return self.local.get("region")
        return self.client.region or self.target.region

    @property
    def name(self) -> str:
        """The management service's name for the local runtime, else the REST API's id (its
        execute-api host's first label), else the API's host and port."""
        if self.local:
            return (self.local.get("outputs") or {}).get("ServiceName") or "local"
        parts = urlsplit(self.api_url)
        host = parts.hostname or "api"
        if ".execute-api." in host:
            return host.split(".")[0]
        return parts.netloc or host


def _connect(ctx: click.Context) -> Connection:
    target = target_of(ctx)
    client = target.client()
    return Connection(target, client, None if client.sign else read_local_state())


# ---------------------------------------------------------------- the cluster incarnation


def signable_cluster_id(connection: Connection, cluster: str, expected_uid: str | None = None) -> str:
    """The cluster's uid, read from the API now. A cluster that is gone, or that is
    another incarnation than `expected_uid` (deleted and created again under its name), is an
    error: a token is signed only for the uid of a cluster that exists."""
    try:
        view = connection.client.get_cluster(cluster)
    except ApiError as exc:
        if exc.status == 404:
            raise CredentialsError(
                f"cluster {cluster!r} does not exist at {connection.api_url} (deleted?): no token was signed; "
                "remove its kubeconfig context, or `kubestep get-credentials` a cluster that exists"
            ) from None
        raise
    uid = _cluster_id(view)
    if expected_uid and uid != expected_uid:
        raise CredentialsError(
            f"cluster {cluster!r} is another cluster now (uid {uid}; this context was written for uid {expected_uid}, "
            f"which was deleted): no token was signed; run `kubestep get-credentials {cluster}` for the new one"
        )
    return uid


def _cluster_id(view: dict[str, Any]) -> str:
    uid = (view.get("status") or {}).get("uid") or (view.get("metadata") or {}).get("uid")
    if not uid:
        raise CredentialsError(f"cluster {view['metadata']['name']} has no uid in the API's answer")
    return str(uid)


def _endpoint(view: dict[str, Any]) -> str:
    status = view.get("status") or {}
    if not status.get("endpoint"):
        raise CredentialsError(
            f"cluster {view['metadata']['name']} has no API endpoint yet (phase {status.get('phase')}); "
            "its load balancer is created early in the create"
        )
    return str(status["endpoint"])


def _ca_certificate(view: dict[str, Any]) -> str:
    name, status = view["metadata"]["name"], view.get("status") or {}
    pem = status.get("clusterCaCertificate")
    if not pem:
        raise CredentialsError(
            f"cluster {name} has no cluster CA certificate yet (phase {status.get('phase')}); "
            "credentials exist once the create has generated the cluster's PKI"
        )
    from cryptography import x509

    try:
        x509.load_pem_x509_certificate(pem.encode())
    except ValueError as exc:
        raise CredentialsError(f"cluster {name}: status.clusterCaCertificate is not a PEM certificate") from exc
    return str(pem)


# ---------------------------------------------------------------- commands


@click.command("get-credentials")
@click.argument("cluster")
@click.option(
    "--kubeconfig",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to merge the context into (default: first of $KUBECONFIG, else ~/.kube/config).",
)
@click.option("--server", help="API server URL to write instead of https://<endpoint>:443.")
@click.option(
    "--via-tunnel",
    is_flag=True,
    help=f"Reach the API server through `kubestep tunnel` on --local-port: a context of its own ({TUNNEL_SUFFIX}).",
)
@click.option("--local-port", default=DEFAULT_TUNNEL_PORT, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--exec-api-version",
    type=click.Choice(sorted(EXEC_VERSIONS)),
    default="v1beta1",
    show_default=True,
    help="client.authentication.k8s.io version of the exec plugin (v1 needs kubectl >= 1.22).",
)
@click.pass_context
def get_credentials(
    ctx: click.Context,
    cluster: str,
    path: Path | None,
    server: str | None,
    via_tunnel: bool,
    local_port: int,
    exec_api_version: str,
) -> None:
    """Write (merge) a kubeconfig context for CLUSTER and make it the current context."""
    if server and via_tunnel:
        raise click.UsageError("--server and --via-tunnel are exclusive: the tunnel decides the server")
    if server and urlsplit(server).scheme != "https":
        raise click.UsageError(f"--server: must be an https:// URL (got {server!r})")
    given_server = server
    connection = _connect(ctx)
    view = connection.client.get_cluster(cluster)
    uid = _cluster_id(view)
    ca_pem = _ca_certificate(view)
    tls_server_name = None
    if via_tunnel:
        tls_server_name = _endpoint(view)
        server = f"https://127.0.0.1:{local_port}"
    elif not server:
        server = f"https://{_endpoint(view)}:{API_PORT}"
    access = kubeconfig.ClusterAccess(
        # Through the tunnel is a second way to the same cluster: a context of its own, beside the
        # direct one (from inside the VPC), not instead of it.
        context=kubeconfig.context_name(connection.name, cluster) + (TUNNEL_SUFFIX if via_tunnel else ""),
        server=server,
        ca_pem=ca_pem,
        # The context belongs to this incarnation: a cluster created again under the name gets no token.
        token_args=["token", cluster, "--uid", uid],
        token_env=_token_env(connection),
        tls_server_name=tls_server_name,
        exec_api_version=EXEC_VERSIONS[exec_api_version],
    )
    try:
        written = kubeconfig.write(path or kubeconfig.default_path(), access)
    except kubeconfig.UnsafeKubeconfig as exc:
        raise InputError(str(exc)) from None
    except kubeconfig.KubeconfigError as exc:
        raise CredentialsError(str(exc)) from exc
    click.echo(f"Context {access.context} written to {written} (now the current context).")
    if given_server:
        click.echo(f"Server {server} (as given with --server), checked against the cluster CA.")
    elif via_tunnel:
        click.echo(
            f"Server {server}: the tunnel to {tls_server_name}:{API_PORT} must be open "
            f"(`kubestep tunnel {cluster} --local-port {local_port} --start` in another terminal)."
        )
    else:
        click.echo(
            f"Server {server}: an internal load balancer, reachable from inside the VPC. From elsewhere run "
            f"`kubestep tunnel {cluster} --start` in another terminal and `kubestep get-credentials {cluster} "
            "--via-tunnel`."
        )


def _token_env(connection: Connection) -> dict[str, str]:
    """What the exec plugin needs to reach the same management API with the same identity.
    `KUBESTEP_CONTEXT` is emptied: a context chosen in the shell (which outranks
    KUBESTEP_API_URL) must not send kubectl's token request to another management service."""
    if connection.local:
        env = {"KUBESTEP_API_URL": "", "KUBESTEP_CONTEXT": ""}  # the local runtime, whatever the shell says
        if os.environ.get("KUBESTEP_HOME"):
            env["KUBESTEP_HOME"] = str(home())
        return env
    env = {"KUBESTEP_API_URL": connection.api_url, "KUBESTEP_CONTEXT": ""}
    if connection.target.profile:
        env["AWS_PROFILE"] = connection.target.profile
    if connection.region:
        env["AWS_REGION"] = connection.region
    return env


@click.command("token")
@click.argument("cluster")
@click.option(
    "--uid",
    "expected_uid",
    metavar="UID",
    help="Sign only if CLUSTER is this incarnation (get-credentials writes it into the context).",
)
@click.pass_context
def token(ctx: click.Context, cluster: str, expected_uid: str | None) -> None:
    """Print an ExecCredential with an aws-iam-authenticator token for CLUSTER (kubectl runs this).

    The cluster is looked up each time: a deleted cluster, or one created again under its name
    (another uid than --uid), gets no token."""
    from botocore.exceptions import BotoCoreError

    connection = _connect(ctx)
    uid = signable_cluster_id(connection, cluster, expected_uid)
    try:
        session = _signing_session(connection)
        if session.get_credentials() is None:
            raise CredentialsError(
                "no AWS credentials to sign the token with: configure them (aws configure, AWS_PROFILE, ...)"
            )
        minted = mint_token(
            uid,
            session=session,
            region=connection.region,
            sts_endpoint=connection.local.get("endpoint_url") if connection.local else None,
        )
    except (TokenError, BotoCoreError) as exc:
        raise CredentialsError(str(exc)) from exc
    version = requested_exec_api_version(os.environ.get("KUBERNETES_EXEC_INFO"))
    click.echo(json.dumps(exec_credential(minted, version)))


def _signing_session(connection: Connection) -> boto3.Session:
    """Whose credentials sign the token: yours, or for the local runtime (whose STS accepts any
    signature) its dummy ones, so a local cluster needs no `eval "$(kubestep local env)"`."""
    import boto3

    if connection.local:
        from kubestep.cli.local import DUMMY_CREDENTIALS

        return boto3.Session(
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
    return boto3.Session(profile_name=connection.target.profile)


@click.command("tunnel")
@click.argument("cluster")
@click.option("--local-port", default=DEFAULT_TUNNEL_PORT, show_default=True, type=click.IntRange(1, 65535))
@click.option("--start", is_flag=True, help="Run the session (needs the AWS CLI and the Session Manager plugin).")
@click.pass_context
def tunnel(ctx: click.Context, cluster: str, local_port: int, start: bool) -> None:
    """Print (or run) the SSM port-forwarding session to CLUSTER's internal API endpoint."""
    connection = _connect(ctx)
    view = connection.client.get_cluster(cluster)
    command = tunnel_command(view, local_port, region=connection.region, profile=connection.target.profile)
    if not start:
        click.echo(shlex.join(command))
        click.echo(
            f"Then: kubestep get-credentials {cluster} --via-tunnel --local-port {local_port}   "
            f"(kubectl reaches https://127.0.0.1:{local_port})",
        )
        return
    if connection.local:
        raise CredentialsError("the local runtime's instances are simulated: a tunnel needs a cluster on AWS")
    missing = [tool for tool in ("aws", "session-manager-plugin") if shutil.which(tool) is None]
    if missing:
        raise CredentialsError(
            f"{' and '.join(missing)} not found on PATH: the tunnel needs the AWS CLI v2 and the Session Manager "
            "plugin (see the Session Manager plugin's installation page in the Systems Manager user guide)"
        )
    click.echo(f"Forwarding 127.0.0.1:{local_port} -> {_endpoint(view)}:{API_PORT} (Ctrl-C ends it)", err=True)
    sys.exit(subprocess.run(command, check=False).returncode)


def tunnel_command(view: dict[str, Any], local_port: int, *, region: str | None, profile: str | None) -> list[str]:
    """`aws ssm start-session` forwarding `local_port` to the NLB through a control-plane instance
    (its SSM agent opens the connection inside the VPC; the NLB's security group admits the VPC)."""
    endpoint = _endpoint(view)
    replicas = ((view.get("status") or {}).get("controlPlane") or {}).get("replicas") or []
    with_instance = [r for r in replicas if r.get("instanceId")]
    # A replica that reported a good bootstrap first: its instance is up and its agent registered.
    with_instance.sort(key=lambda r: (r.get("bootstrap") != "ok", r.get("index", 0)))
    if not with_instance:
        name = view["metadata"]["name"]
        raise CredentialsError(f"cluster {name} has no control-plane instance to tunnel through yet")
    command = [
        "aws",
        "ssm",
        "start-session",
        "--target",
        with_instance[0]["instanceId"],
        "--document-name",
        PORT_FORWARDING_DOCUMENT,
        "--parameters",
        f"host={endpoint},portNumber={API_PORT},localPortNumber={local_port}",
    ]
    if region:
        command += ["--region", region]
    if profile:
        command += ["--profile", profile]
    return command


COMMANDS = (get_credentials, token, tunnel)
