"""Reaching a cluster end to end (issue 9, acceptance 5).

Debian's kubectl (package kubernetes-client, unpacked by scripts/setup.sh) reads the kubeconfig
`kubestep get-credentials` wrote and, through the exec plugin (`kubestep token`, this worktree's
entry point), sends a bearer token to a loopback TLS endpoint standing in for the API server: its
certificate is signed by the cluster CA the management API publishes. The endpoint verifies each
token as aws-iam-authenticator does (`kubestep.auth.token.verify_token`): it GETs the presigned
STS URL from the emulator (moto, with presigned URLs authenticated: tests/auth/sts_emulator.py)
and learns the caller's ARN. A token minted for another cluster id is refused by STS's signature
check. The management API is the real API function behind a loopback gateway, reading a cluster
record in the emulator's DynamoDB."""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubestep import pki
from kubestep.auth.token import TokenError, decode_token, mint_token, verify_token
from kubestep.cli.main import main
from kubestep.store import EtcdMember, Store
from tests.api.conftest import _clear_caches, body_named, register
from tests.api.helpers import LocalGateway
from tests.auth import sts_emulator
from tests.special_files import dangling, fingerprint, null_device, subdirectory, unblock_readers
from tests.unit.conftest import EXAMPLES, TABLE, configure, create_table, load_service

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / ".build" / "debian-kubectl" / "usr" / "bin" / "kubectl"
VENV_BIN = Path(sys.executable).parent
REGION = "us-east-1"
UID = "a1b2c3d4"
# What an internal NLB's DNS name looks like; the API server certificate names it.
ENDPOINT = f"gke-{UID}-cp-0123456789abcdef.elb.{REGION}.amazonaws.com"
# The API function's Powertools metrics: a GET publishes none (as in tests/api).
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")
SERVER_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.4", "platform": "linux/amd64"}


# ---------------------------------------------------------------- the cluster's PKI


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The cluster CA exactly as the PKI step makes it (kubestep.pki: kubeadm's CA profile, P-256)."""
    material = pki.generate().material
    key = serialization.load_pem_private_key(material["ca.key"].encode(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key, x509.load_pem_x509_certificate(material["ca.crt"].encode())


def make_serving_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, dns_names: list[str]
) -> tuple[bytes, bytes]:
    """The API server's serving certificate (PEM cert, PEM key), signed by the cluster CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("kube-apiserver"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


# ---------------------------------------------------------------- the API server stand-in


@dataclass
class Seen:
    path: str
    arn: str | None = None
    refusal: str | None = None
    token: str | None = None


class TokenCheckingEndpoint:
    """HTTPS on loopback with a certificate signed by the cluster CA; every request's bearer token
    is verified for `cluster_id` against STS (the emulator), as the authenticator webhook would."""

    def __init__(self, cert_file: Path, key_file: Path, cluster_id: str, sts_endpoint: str) -> None:
        endpoint = self
        self.seen: list[Seen] = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                record = Seen(self.path)
                endpoint.seen.append(record)
                header = self.headers.get("Authorization") or ""
                record.token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
                try:
                    if record.token is None:
                        raise TokenError("no bearer token")
                    record.arn = verify_token(record.token, cluster_id, sts_endpoint)
                except TokenError as exc:
                    record.refusal = str(exc)
                    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 401}
                    self._answer(401, {**status, "message": "Unauthorized", "reason": "Unauthorized"})
                    return
                if self.path.split("?")[0] == "/version":
                    self._answer(200, SERVER_VERSION)
                else:
                    self._answer(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def __enter__(self) -> TokenCheckingEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# ---------------------------------------------------------------- the management API and emulator


@dataclass
class World:
    emulator: str
    presigned: sts_emulator.PresignedSigV4
    gateway: LocalGateway
    store: Store
    ca_pem: str
    ca_key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate
    caller: dict[str, str]
    instances: dict[int, str] = field(default_factory=dict)

    @property
    def api_url(self) -> str:
        return self.gateway.url


def add_cluster(store: Store, name: str, uid: str, **fields: Any) -> None:
    """A cluster record as CreateCluster's first step writes it, then what later steps add."""
    register(store, body_named(name), f"create-{name}", uid=uid)
    if fields:
        store.clusters.update(name, **fields)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with pytest.MonkeyPatch.context() as env, sts_emulator.serve() as (emulator, presigned):
        for key, value in {
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL": emulator,  # the API function's DynamoDB is the emulator's
            "POWERTOOLS_SERVICE_NAME": "kubestep",
            "POWERTOOLS_METRICS_NAMESPACE": "kubestep",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }.items():
            env.setenv(key, value)
        _clear_caches()
        try:
            create_table(REGION)
            configure(env, load_service(EXAMPLES / "management-service.yaml"))
            store = Store.for_table(TABLE)
            ca_key, ca = make_ca()
            ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
            # What the PKI step and the load balancer step record on the cluster.
            add_cluster(store, "prod", UID, endpoint=ENDPOINT, cluster_ca_certificate=ca_pem, phase="RUNNING")
            instances = {0: "i-0aaaaaaaaaaaaaaa0", 1: "i-0bbbbbbbbbbbbbbb1"}
            for index, instance in instances.items():
                member = EtcdMember(
                    index=index, zone=f"{REGION}a", subnet_id="subnet-0", name=f"m{index}", peer_name="p"
                )
                store.etcd.plan_member("prod", member)
                store.etcd.update_member("prod", index, instance_id=instance)
            store.reports.write(UID, status="ok", instance_id=instances[1], replica=1)
            # A cluster whose create has not generated its PKI yet.
            add_cluster(store, "young", "e5f6a7b8")
            iam = boto3.client("iam", endpoint_url=emulator, region_name=REGION)
            user = iam.create_user(UserName="alice")["User"]
            key = iam.create_access_key(UserName="alice")["AccessKey"]
            caller = {"arn": user["Arn"], "key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
            with LocalGateway() as gateway:
                yield World(emulator, presigned, gateway, store, ca_pem, ca_key, ca, caller, instances)
        finally:
            _clear_caches()


def subprocess_env(world: World, home: Path) -> dict[str, str]:
    """A user's shell: this worktree's `kubestep` first on PATH, alice's credentials, the
    deployed-stack style API URL, and STS at the emulator (botocore's AWS_ENDPOINT_URL_STS)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "KUBESTEP_", "KUBECONFIG", "POWERTOOLS"))}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(home),
        KUBESTEP_HOME=str(home / ".kubestep"),
        KUBESTEP_API_URL=world.api_url,
        AWS_REGION=REGION,
        AWS_ACCESS_KEY_ID=world.caller["key"],
        AWS_SECRET_ACCESS_KEY=world.caller["secret"],
        AWS_ENDPOINT_URL_STS=world.emulator,
        AWS_CONFIG_FILE=str(home / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
        NO_PROXY="127.0.0.1,localhost",
    )
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, cwd=env.get("HOME"))


def test_kubectl_authenticates_through_the_exec_plugin(world: World, tmp_path: Path) -> None:
    assert KUBECTL.is_file(), f"Debian's kubectl is missing at {KUBECTL}: run `bash scripts/setup.sh` (as root)"
    version = run([str(KUBECTL), "version", "--client", "-o", "json"], {"PATH": os.environ["PATH"]})
    # Debian 12's is v1.20.2, which knows exec API v1beta1 only: the default the kubeconfig uses.
    assert json.loads(version.stdout)["clientVersion"]["gitVersion"].startswith("v1."), version.stdout
    env = subprocess_env(world, tmp_path)
    assert Path(shutil.which("kubestep", path=env["PATH"]) or "").parent == VENV_BIN  # this worktree's entry point

    cert_pem, key_pem = make_serving_cert(world.ca_key, world.ca, [ENDPOINT])
    (tmp_path / "apiserver.crt").write_bytes(cert_pem)
    (tmp_path / "apiserver.key").write_bytes(key_pem)
    kubeconfig = tmp_path / "kubeconfig"
    with TokenCheckingEndpoint(tmp_path / "apiserver.crt", tmp_path / "apiserver.key", UID, world.emulator) as server:
        # The tunnel's shape: kubectl dials 127.0.0.1 and checks the certificate for the NLB's name.
        wrote = run(
            ["kubestep", "get-credentials", "prod", "--kubeconfig", str(kubeconfig), "--via-tunnel"]
            + ["--local-port", str(server.port)],
            env,
        )
        assert wrote.returncode == 0, wrote.stderr
        context = f"kubestep_127.0.0.1-{world.gateway.url.rsplit(':', 1)[1]}_prod-tunnel"
        assert f"Context {context} written to {kubeconfig}" in wrote.stdout

        kubectl = run([str(KUBECTL), "--kubeconfig", str(kubeconfig), "version", "-o", "json"], env)
        assert kubectl.returncode == 0, kubectl.stderr
        assert json.loads(kubectl.stdout)["serverVersion"]["gitVersion"] == SERVER_VERSION["gitVersion"]
        accepted = [s for s in server.seen if s.arn]
        assert accepted and all(s.refusal is None for s in server.seen), server.seen
        assert {s.arn for s in accepted} == {world.caller["arn"]}  # alice, as STS (the emulator) knows her
        # Each token was minted by `kubestep token` with alice's key, for the emulator's STS.
        assert all(f"X-Amz-Credential={world.caller['key']}" in verified_url(s.token, world.emulator) for s in accepted)

        # The same kubeconfig with a token for another cluster id: STS refuses, kubectl fails.
        other = mint_token("another-cluster-uid", session=alice(world), sts_endpoint=world.emulator)
        config = yaml.safe_load(kubeconfig.read_text())
        config["users"][0]["user"] = {"token": other.value}
        kubeconfig.write_text(yaml.safe_dump(config))
        before = len(server.seen)
        refused = run([str(KUBECTL), "--kubeconfig", str(kubeconfig), "get", "--raw", "/version"], env)
        assert refused.returncode != 0
        assert "Unauthorized" in refused.stderr
        assert server.seen[before:] and all(s.arn is None for s in server.seen[before:])
        assert "SignatureDoesNotMatch" in (server.seen[-1].refusal or "")


def alice(world: World) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=world.caller["key"], aws_secret_access_key=world.caller["secret"], region_name=REGION
    )


def verified_url(token: str | None, emulator: str) -> str:
    """The presigned URL inside a token (which the verifier accepts for the emulator)."""
    return decode_token(token or "", sts_endpoint=emulator).url


def test_verifier_answers_the_caller_and_refuses_other_clusters_and_unknown_keys(world: World) -> None:
    token = mint_token(UID, session=alice(world), sts_endpoint=world.emulator)
    assert verify_token(token.value, UID, world.emulator) == world.caller["arn"]
    with pytest.raises(TokenError, match="SignatureDoesNotMatch"):
        verify_token(token.value, "another-cluster-uid", world.emulator)
    stranger = boto3.Session(aws_access_key_id="AKIANOTISSUED0000000", aws_secret_access_key="x", region_name=REGION)
    with pytest.raises(TokenError, match="InvalidClientTokenId"):
        verify_token(mint_token(UID, session=stranger, sts_endpoint=world.emulator).value, UID, world.emulator)
    # Without the emulator configured, its URL is not an STS endpoint: nothing is fetched.
    with pytest.raises(TokenError, match="scheme"):
        verify_token(token.value, UID)


# ---------------------------------------------------------------- the commands, in process


def cli(world: World, home: Path, *args: str, **env: str) -> Any:
    base = {
        "KUBESTEP_HOME": str(home / ".kubestep"),
        "KUBESTEP_API_URL": world.api_url,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_STS": world.emulator,
        "KUBECONFIG": str(home / "kube" / "config"),
        "KUBERNETES_EXEC_INFO": "",
    }
    base.update(env)
    return CliRunner().invoke(main, list(args), env=base, catch_exceptions=False)


def test_get_credentials_writes_the_endpoint_ca_and_exec_plugin(world: World, tmp_path: Path) -> None:
    result = cli(world, tmp_path, "get-credentials", "prod")
    assert result.exit_code == 0, result.output
    path = tmp_path / "kube" / "config"  # $KUBECONFIG's first entry
    config = yaml.safe_load(path.read_text())
    (cluster,) = config["clusters"]
    assert cluster["cluster"]["server"] == f"https://{ENDPOINT}:443"
    assert "tls-server-name" not in cluster["cluster"]
    assert base64.b64decode(cluster["cluster"]["certificate-authority-data"]).decode() == world.ca_pem
    (user,) = config["users"]
    assert user["user"]["exec"]["args"] == ["token", "prod", "--uid", UID]
    assert {e["name"]: e["value"] for e in user["user"]["exec"]["env"]} == {
        "KUBESTEP_API_URL": world.api_url,
        "AWS_REGION": REGION,
        # A context picked in the user's shell outranks KUBESTEP_API_URL: emptied for the plugin.
        "KUBESTEP_CONTEXT": "",
    }
    assert config["current-context"] == cluster["name"]
    assert "internal load balancer" in result.output and "kubestep tunnel prod --start" in result.output


def test_get_credentials_server_override_and_exec_api_version(world: World, tmp_path: Path) -> None:
    result = cli(
        world, tmp_path, "get-credentials", "prod", "--server", "https://10.0.1.5:6443", "--exec-api-version", "v1"
    )
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((tmp_path / "kube" / "config").read_text())
    assert config["clusters"][0]["cluster"]["server"] == "https://10.0.1.5:6443"
    assert config["users"][0]["user"]["exec"]["apiVersion"] == "client.authentication.k8s.io/v1"


def test_get_credentials_via_tunnel_adds_a_context_beside_the_direct_one(world: World, tmp_path: Path) -> None:
    direct = cli(world, tmp_path, "get-credentials", "prod")
    assert direct.exit_code == 0, direct.output
    tunnelled = cli(world, tmp_path, "get-credentials", "prod", "--via-tunnel", "--local-port", "9443")
    assert tunnelled.exit_code == 0, tunnelled.output
    config = yaml.safe_load((tmp_path / "kube" / "config").read_text())
    servers = {c["name"]: c["cluster"]["server"] for c in config["clusters"]}
    name = next(iter(servers)).removesuffix("-tunnel")
    assert servers == {name: f"https://{ENDPOINT}:443", f"{name}-tunnel": "https://127.0.0.1:9443"}
    assert {c["name"] for c in config["contexts"]} == {name, f"{name}-tunnel"}
    assert config["current-context"] == f"{name}-tunnel"


def test_get_credentials_refuses_a_cluster_without_ca_and_writes_nothing(world: World, tmp_path: Path) -> None:
    result = cli(world, tmp_path, "get-credentials", "young")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: cluster young has no cluster CA certificate yet (phase PROVISIONING); "
        "credentials exist once the create has generated the cluster's PKI"
    ]
    assert not (tmp_path / "kube").exists()


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    unblock_readers(path)
    return path


def _device(tmp_path: Path) -> Path:
    return null_device(tmp_path)


def _dangling(tmp_path: Path) -> Path:
    return dangling(tmp_path)


def _directory(tmp_path: Path) -> Path:
    return subdirectory(tmp_path)


@pytest.mark.parametrize("how", ["--kubeconfig", "KUBECONFIG"])
@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_device, "is a character device"),
        (_fifo, "is a FIFO"),
        (_dangling, "which does not exist"),
        (_directory, "is a directory"),
    ],
)
def test_get_credentials_writes_only_regular_files(
    world: World, tmp_path: Path, how: str, make: Any, reason: str
) -> None:
    """`--kubeconfig /dev/null` (or KUBECONFIG=/dev/null) as root once replaced the device node
    with a regular file: a device, FIFO, dangling symlink or directory is refused (exit 2, one
    line) and left as it was."""
    path = make(tmp_path)
    before = fingerprint(path)
    args = ["get-credentials", "prod", *(["--kubeconfig", str(path)] if how == "--kubeconfig" else [])]
    result = cli(world, tmp_path, *args, **({"KUBECONFIG": str(path)} if how == "KUBECONFIG" else {}))
    if make is _directory and how == "--kubeconfig":
        assert result.exit_code == 2 and "is a directory" in result.output  # click's own check
    else:
        assert result.exit_code == 2, result.output
        (line,) = result.output.strip().splitlines()
        assert line.startswith(f"error: kubeconfig {path}") and reason in line, line
    assert fingerprint(path) == before
    assert not (tmp_path / "missing").exists()


def test_get_credentials_errors(world: World, tmp_path: Path) -> None:
    missing = cli(world, tmp_path, "get-credentials", "nosuch")
    assert missing.exit_code == 1 and missing.output.startswith("error: ") and "404" in missing.output
    insecure = cli(world, tmp_path, "get-credentials", "prod", "--server", "http://10.0.0.1:6443")
    assert insecure.exit_code == 2 and "--server: must be an https:// URL" in insecure.output
    both = cli(world, tmp_path, "get-credentials", "prod", "--server", "https://x", "--via-tunnel")
    assert both.exit_code == 2
    garbage = tmp_path / "garbage"
    garbage.write_text("clusters: [unclosed\n")
    refused = cli(world, tmp_path, "get-credentials", "prod", "--kubeconfig", str(garbage))
    assert refused.exit_code == 1 and "is not valid YAML" in refused.output
    assert garbage.read_text() == "clusters: [unclosed\n"


def test_token_reads_the_cluster_each_time_and_answers_in_the_requested_version(world: World, tmp_path: Path) -> None:
    paths = lambda: [r["path"] for r in world.gateway.requests]  # noqa: E731
    before = len(paths())
    keys = {"AWS_ACCESS_KEY_ID": world.caller["key"], "AWS_SECRET_ACCESS_KEY": world.caller["secret"]}
    first = cli(world, tmp_path, "token", "prod", **keys)
    assert first.exit_code == 0, first.output
    assert paths()[before:] == ["/v1/clusters/prod"]
    credential = json.loads(first.output)
    assert credential["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert credential["kind"] == "ExecCredential"
    expires = datetime.strptime(credential["status"]["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert timedelta(minutes=13) < expires - datetime.now(UTC) <= timedelta(minutes=14)

    info = json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "spec": {}})
    second = cli(world, tmp_path, "token", "prod", "--uid", UID, KUBERNETES_EXEC_INFO=info, **keys)
    assert second.exit_code == 0, second.output
    # Each token: the cluster is looked up again (a cached uid would outlive a delete).
    assert paths()[before:] == ["/v1/clusters/prod", "/v1/clusters/prod"]
    assert json.loads(second.output)["apiVersion"] == "client.authentication.k8s.io/v1"
    # Both tokens are for the cluster's uid: the emulator's STS confirms them for UID only.
    for output in (first.output, second.output):
        token = json.loads(output)["status"]["token"]
        assert verify_token(token, UID, world.emulator) == world.caller["arn"]
        with pytest.raises(TokenError, match="SignatureDoesNotMatch"):
            verify_token(token, "e5f6a7b8", world.emulator)


@pytest.fixture
def gamma(world: World) -> Iterator[Callable[[str], None]]:
    """Makes cluster gamma (RUNNING, with its CA) under the uid given; deletes what is left."""

    def make(uid: str) -> None:
        register(world.store, body_named("gamma"), f"create-gamma-{uid}", uid=uid)
        world.store.clusters.update("gamma", endpoint=ENDPOINT, cluster_ca_certificate=world.ca_pem, phase="RUNNING")

    yield make
    left = world.store.clusters.get("gamma")
    if left is not None:
        world.store.clusters.delete_everything("gamma", left.uid)


def _signed_for(world: World, result: Any) -> str:
    """The uid a token was minted for (STS confirms it for that uid only)."""
    assert result.exit_code == 0, result.output
    token = json.loads(result.output)["status"]["token"]
    for uid in ("c0ffee01", "c0ffee02"):
        try:
            verify_token(token, uid, world.emulator)
            return uid
        except TokenError:
            continue
    raise AssertionError("the token is for neither incarnation")


def test_no_token_for_a_deleted_cluster_nor_for_its_old_uid_after_a_re_create(
    world: World, tmp_path: Path, gamma: Callable[[str], None]
) -> None:
    """`kubestep token` exited 0 for a deleted cluster and, after a delete and re-create under the
    same name, kept signing for the old uid (a cache keyed by name)."""
    keys = {"AWS_ACCESS_KEY_ID": world.caller["key"], "AWS_SECRET_ACCESS_KEY": world.caller["secret"]}
    gamma("c0ffee01")
    assert cli(world, tmp_path, "get-credentials", "gamma").exit_code == 0
    assert _signed_for(world, cli(world, tmp_path, "token", "gamma", **keys)) == "c0ffee01"

    world.store.clusters.delete_everything("gamma", "c0ffee01")
    gone = cli(world, tmp_path, "token", "gamma", **keys)
    assert gone.exit_code == 1, gone.output
    (line,) = gone.output.strip().splitlines()
    assert line.startswith("error: cluster 'gamma' does not exist") and "no token was signed" in line

    gamma("c0ffee02")
    assert _signed_for(world, cli(world, tmp_path, "token", "gamma", **keys)) == "c0ffee02"


def test_a_context_signs_only_for_the_incarnation_it_was_written_for(
    world: World, tmp_path: Path, gamma: Callable[[str], None]
) -> None:
    keys = {"AWS_ACCESS_KEY_ID": world.caller["key"], "AWS_SECRET_ACCESS_KEY": world.caller["secret"]}
    gamma("c0ffee01")
    assert cli(world, tmp_path, "get-credentials", "gamma").exit_code == 0
    config = yaml.safe_load((tmp_path / "kube" / "config").read_text())
    args = next(u for u in config["users"] if u["name"].endswith("_gamma"))["user"]["exec"]["args"]
    assert args == ["token", "gamma", "--uid", "c0ffee01"]
    assert _signed_for(world, cli(world, tmp_path, *args, **keys)) == "c0ffee01"

    world.store.clusters.delete_everything("gamma", "c0ffee01")
    gone = cli(world, tmp_path, *args, **keys)
    assert gone.exit_code == 1 and "does not exist" in gone.output, gone.output

    gamma("c0ffee02")
    stale = cli(world, tmp_path, *args, **keys)
    assert stale.exit_code == 1, stale.output
    (line,) = stale.output.strip().splitlines()
    assert "uid c0ffee02" in line and "written for uid c0ffee01" in line and "no token was signed" in line
    assert "kubestep get-credentials gamma" in line


def test_token_for_an_unknown_cluster_fails_in_one_line(world: World, tmp_path: Path) -> None:
    result = cli(world, tmp_path, "token", "nosuch")
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1


def test_local_runtime_contexts_name_the_service_and_sign_for_the_emulator(world: World, tmp_path: Path) -> None:
    home = tmp_path / ".kubestep"
    home.mkdir()
    state = {"endpoint_url": world.emulator, "api_url": world.api_url, "region": REGION}
    (home / "local.json").write_text(json.dumps({**state, "outputs": {"ServiceName": "demo"}}))
    result = cli(world, tmp_path, "get-credentials", "prod", KUBESTEP_API_URL="", AWS_ENDPOINT_URL_STS="")
    assert result.exit_code == 0, result.output
    config = yaml.safe_load((tmp_path / "kube" / "config").read_text())
    assert config["current-context"] == "kubestep_demo_prod"
    env = {e["name"]: e["value"] for e in config["users"][0]["user"]["exec"]["env"]}
    assert env == {"KUBESTEP_API_URL": "", "KUBESTEP_CONTEXT": "", "KUBESTEP_HOME": str(home)}
    token = cli(world, tmp_path, "token", "prod", KUBESTEP_API_URL="", AWS_ENDPOINT_URL_STS="")
    assert token.exit_code == 0, token.output
    value = json.loads(token.output)["status"]["token"]
    assert verified_url(value, world.emulator).startswith(f"{world.emulator}/?Action=GetCallerIdentity")


def test_tunnel_prints_the_port_forwarding_session_through_a_healthy_replica(world: World, tmp_path: Path) -> None:
    result = cli(world, tmp_path, "tunnel", "prod", "--local-port", "9443")
    assert result.exit_code == 0, result.output
    command, hint = result.output.strip().splitlines()
    assert command == (
        f"aws ssm start-session --target {world.instances[1]} "  # replica 1 reported a good bootstrap
        "--document-name AWS-StartPortForwardingSessionToRemoteHost "
        f"--parameters host={ENDPOINT},portNumber=443,localPortNumber=9443 --region {REGION}"
    )
    assert "kubestep get-credentials prod --via-tunnel --local-port 9443" in hint
    young = cli(world, tmp_path, "tunnel", "young")
    assert young.exit_code == 1 and young.output.startswith("error: cluster young has no API endpoint yet")


def test_tunnel_start_runs_the_aws_cli(world: World, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "aws-args"
    (bin_dir / "aws").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {record}\n')
    (bin_dir / "aws").chmod(0o755)
    path = f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"
    missing = cli(world, tmp_path, "tunnel", "prod", "--start", PATH=path)
    assert missing.exit_code == 1 and "session-manager-plugin not found on PATH" in missing.output
    (bin_dir / "session-manager-plugin").write_text("#!/bin/sh\n")
    (bin_dir / "session-manager-plugin").chmod(0o755)
    started = cli(world, tmp_path, "tunnel", "prod", "--start", PATH=path)
    assert started.exit_code == 0, started.output
    args = record.read_text().splitlines()
    assert args[:5] == ["ssm", "start-session", "--target", world.instances[1], "--document-name"]
    assert f"host={ENDPOINT},portNumber=443,localPortNumber=8443" in args
