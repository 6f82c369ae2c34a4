"""Stand-ins for what kubestep's instances talk to, for the cluster harness (cluster_harness.py):
each follows the upstream contract closely enough that a wrong order fails.

- etcd is real (Debian's etcd 3.4), one process per control-plane replica on its own loopback
  address; `etcdctl` is the real one behind a wrapper that maps the replicas' stable names and
  the instances' private addresses to those loopback addresses (plain HTTP: the membership and
  quorum logic is under test, not TLS) and back in what it prints.
- The kubelet runs the static pods of /etc/kubernetes/manifests once `kubelet-start` started it:
  for etcd that is the real process, started with the command kubeadm's manifest and kubestep's
  patch give it (etcd takes the last value of a repeated flag), restarted when the manifest
  changes, stopped when it goes away.
- Each replica's kube-apiserver is modelled by its contract with etcd: it serves only while its
  manifest is there, the kubelet runs, and its own etcd member (`--etcd-servers=127.0.0.1`)
  answers linearizable reads (a learner does not: "rpc not supported for learner"; a cluster
  without quorum times out). Objects are JSON under /registry/<resource>/<namespace>/<name> in
  that etcd, as the real API server keeps them, so everything the cluster knows (kubeadm-config,
  kubelet-config, bootstrap tokens, Nodes, mirror Pods, add-ons) lives and dies with etcd's
  quorum. The load balancer forwards to any replica whose API server is ready (its /readyz
  health check). Authentication by client certificate (an expired one is refused), and a small
  RBAC: kubeadm:cluster-admins and system:masters may do anything, a node reads Nodes, any other
  user only what a Role bound to it in the API allows.
- kubeadm follows its documented workflows (cmd/kubeadm/app/cmd/{init,join}.go, phases/join/*,
  phases/upgrade/*, phases/etcd/local.go): `join` runs preflight (discovery reads cluster-info
  and kubeadm-config through the load balancer with the bootstrap token, so it needs a readable
  cluster; the KubeletVersion check compares the kubelet with the cluster's kubernetesVersion),
  control-plane-prepare (static pods at the *cluster's* version), check-etcd, kubelet-start,
  etcd-join (kubeadm's own: a learner under the instance's address, which the harness records
  as a violation because kubestep's members live on stable names), kubelet-wait-bootstrap (the
  kubelet bootstraps against the local API server: ControlPlaneKubeletLocalMode, on by default
  since 1.33), control-plane-join (mark-control-plane through admin.conf), wait-control-plane,
  honouring `skipPhases`. `init` on a cluster that already holds a kubeadm-config is recorded as
  a split brain. `upgrade apply` enforces kubeadm's version policy (one minor at a time, not
  above the kubeadm binary, no prompt without forceUpgrade), its ControlPlaneNodesReady check,
  updates kubeadm-config and kubelet-config, and upgrades kube-proxy and CoreDNS only when
  every kube-apiserver mirror Pod runs the new version (upgrade/addons.go
  shouldUpgradeAddons); `upgrade node` upgrades a node to the cluster's version.
- The cloud controller manager initialises Nodes (removes the uninitialized taint) only while
  its DaemonSet exists; a Node is Ready only while its kubelet runs and Calico is installed.

Not modelled: TLS, the kubelet's serving certificate, the CCM's deletion of Nodes whose instance
is gone (kubestep removes its replicas' predecessors itself), scheduling and images."""

from __future__ import annotations

import base64
import contextlib
import datetime
import fcntl
import json
import os
import sys
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dynamodb_cli

if TYPE_CHECKING:
    import hashlib
    import shutil
    import signal
    import subprocess

    import yaml


class LazyModule:
    """A module imported where it is first used. Every stand-in command is a fresh interpreter (a
    few hundred a harness test), and most (aws, curl, the devices) need none of subprocess, yaml,
    hashlib or shutil: importing them all at each start cost more CPU than most commands' work."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        __import__(self._name)
        module = sys.modules[self._name]
        globals()[self._name] = module  # later uses skip this proxy
        return getattr(module, attribute)


hashlib = LazyModule("hashlib")
shutil = LazyModule("shutil")
signal = LazyModule("signal")
subprocess = LazyModule("subprocess")
yaml = LazyModule("yaml")


def yaml_loader() -> type:
    """libyaml's safe loader where PyYAML was built with it (the same documents as the pure-Python
    one, parsed several times faster: the API server stand-in reads every replica's static-pod
    manifests on each request)."""
    return getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader


def yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=yaml_loader())


def yaml_load_all(text: str) -> list[Any]:
    return list(yaml.load_all(text, Loader=yaml_loader()))


def system_program(name: str) -> str:
    """The real program on SYSTEM_PATH (shutil.which's search, without importing shutil)."""
    for directory in SYSTEM_PATH.split(":"):
        candidate = os.path.join(directory, name)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return f"/usr/bin/{name}"


SHARED = Path(os.environ.get("STANDIN_SHARED", "/nonexistent"))
INSTANCE = os.environ.get("STANDIN_INSTANCE", "")
ROOT = os.environ.get("KUBESTEP_ROOT", "")
# The real programs (this stand-in is etcdctl too, first on the instance's PATH).
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
ETCD = system_program("etcd")
ETCDCTL = system_program("etcdctl")
COREDNS_ANNOTATION = "standin.kubestep.io/deployed-by-kubeadm"
APPLIED_BY = "standin.kubestep.io/applied-by"
UNINITIALIZED_TAINT = "node.cloudprovider.kubernetes.io/uninitialized"
CONTROL_PLANE_TAINT = "node-role.kubernetes.io/control-plane"
PLURALS = {"Endpoints": "endpoints"}


class Failure(Exception):
    """The command fails with this message (and exit status 1)."""


# ---------------------------------------------------------------- shared state


@contextlib.contextmanager
def locked():
    with open(SHARED / "lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def load(name: str, default: Any = None) -> Any:
    path = SHARED / name
    return json.loads(path.read_text()) if path.exists() else default


def save(name: str, value: Any) -> None:
    path = SHARED / name
    path.with_suffix(".tmp").write_text(json.dumps(value, indent=1))
    path.with_suffix(".tmp").replace(path)


def record(event: str, **details: Any) -> None:
    """What happened, for the test's assertions (violations are events too)."""
    with locked(), (SHARED / "events.jsonl").open("a") as handle:
        handle.write(json.dumps({"event": event, "instance": INSTANCE, "at": time.time(), **details}) + "\n")


def violation(kind: str, message: str) -> None:
    record("violation", kind=kind, message=message)


def cluster() -> dict[str, Any]:
    return load("cluster.json")


def instances() -> dict[str, dict[str, Any]]:
    return load("instances.json", {})


def me() -> dict[str, Any]:
    return instances()[INSTANCE]


def instance_dir(instance_id: str) -> Path:
    return SHARED.parent / "instances" / instance_id


def host_path(path: str, instance: dict[str, Any] | None = None) -> Path:
    return Path((instance or me())["root"] + path)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=cluster().get("clock_offset", 0))


def iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------- addresses (stable names -> loopback)


def replica_address(host: str, instance: dict[str, Any] | None = None) -> str | None:
    """The loopback address a replica's etcd listens on, for a stable name, an instance's private
    address, or 127.0.0.1 (the instance's own)."""
    names = cluster()["replicas"]
    if host in names:
        return names[host]["address"]
    if host in ("127.0.0.1", "localhost"):
        instance = instance or me()
        return names[instance["replica_name"]]["address"] if instance.get("replica_name") else None
    for other in instances().values():
        if other["ip"] == host and other.get("replica_name"):
            return names[other["replica_name"]]["address"]
    return None


def to_loopback(url: str, instance: dict[str, Any] | None = None) -> str:
    parsed = urllib.parse.urlsplit(url)
    address = replica_address(parsed.hostname or "", instance)
    if address is None:
        return url
    return f"http://{address}:{parsed.port}"


def translate_urls(value: str, instance: dict[str, Any] | None = None) -> str:
    """Every URL in a comma-separated (optionally name=URL) list."""
    parts = []
    for part in value.split(","):
        name, sep, url = part.rpartition("=") if "=" in part and "://" in part.split("=", 1)[1] else ("", "", part)
        parts.append(f"{name}{sep}{to_loopback(url, instance)}")
    return ",".join(parts)


def from_loopback(text: str) -> str:
    for name, replica in cluster()["replicas"].items():
        text = text.replace(f"http://{replica['address']}:", f"https://{name}:")
    return text


# ---------------------------------------------------------------- etcd (real)


def etcdctl_run(args: list[str], timeout: float = 8.0) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}
    env["ETCDCTL_API"] = "3"
    try:
        return subprocess.run([ETCDCTL, *args], capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, 1, "", "etcdctl: timed out\n")


def etcdctl_wrapper(args: list[str]) -> int:
    """The real etcdctl, with stable names and private addresses mapped to loopback and TLS dropped."""
    endpoints = None
    passed: list[str] = []
    skip = False
    for i, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg in ("--cacert", "--cert", "--key"):
            skip = True
            continue
        if arg.startswith(("--cacert=", "--cert=", "--key=")):
            continue
        if arg.startswith("--endpoints="):
            endpoints = arg.split("=", 1)[1]
            continue
        if arg == "--endpoints":
            endpoints, skip = args[i + 1], True
            continue
        if arg.startswith("--peer-urls="):
            arg = "--peer-urls=" + translate_urls(arg.split("=", 1)[1])
        # `snapshot restore`'s member list and peer URL: the stable names resolve to the replicas.
        if i > 0 and args[i - 1] in ("--initial-cluster", "--initial-advertise-peer-urls"):
            arg = translate_urls(arg)
        for flag in ("--initial-cluster=", "--initial-advertise-peer-urls="):
            if arg.startswith(flag):
                arg = flag + translate_urls(arg.removeprefix(flag))
        passed.append(arg)
    endpoints = endpoints or os.environ.get("ETCDCTL_ENDPOINTS", "")
    if endpoints:
        passed.insert(0, "--endpoints=" + translate_urls(endpoints))
    passed = ["--dial-timeout=1s", "--command-timeout=3s", *passed]
    result = etcdctl_run(passed)
    record("etcdctl", args=args, returncode=result.returncode, stderr=result.stderr[-400:])
    sys.stdout.write(from_loopback(result.stdout))
    sys.stderr.write(from_loopback(result.stderr))
    return result.returncode


def etcd_state_file(instance_id: str) -> Path:
    return instance_dir(instance_id) / "etcd.json"


def process_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split()[2] not in ("Z", "X")
    except OSError:
        return False


def stop_etcd(instance_id: str) -> None:
    state_file = etcd_state_file(instance_id)
    if not state_file.exists():
        return
    pid = json.loads(state_file.read_text())["pid"]
    if process_alive(pid):
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not process_alive(pid):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
    state_file.unlink()


def manifest_flags(manifest: dict[str, Any]) -> dict[str, str]:
    """The last value of each --flag of the pod's command (what etcd itself takes)."""
    flags = {}
    for word in manifest["spec"]["containers"][0]["command"][1:]:
        name, _, value = word[2:].partition("=")
        flags[name] = value
    return flags


def etcd_command(instance: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    flags = manifest_flags(manifest)
    address = cluster()["replicas"][instance["replica_name"]]["address"]
    timing = cluster()["etcd_timing"]
    return [
        ETCD,
        f"--name={flags['name']}",
        f"--data-dir={instance['root']}{flags['data-dir']}",
        f"--listen-peer-urls=http://{address}:2380",
        f"--listen-client-urls=http://{address}:2379",
        f"--initial-advertise-peer-urls={translate_urls(flags['initial-advertise-peer-urls'], instance)}",
        f"--advertise-client-urls={translate_urls(flags['advertise-client-urls'], instance)}",
        f"--initial-cluster={translate_urls(flags['initial-cluster'], instance)}",
        f"--initial-cluster-state={flags.get('initial-cluster-state', 'new')}",
        f"--initial-cluster-token={flags.get('initial-cluster-token', 'etcd-cluster')}",
        f"--heartbeat-interval={timing['heartbeat']}",
        f"--election-timeout={timing['election']}",
    ]


def start_etcd(instance_id: str, command: list[str]) -> None:
    log = instance_dir(instance_id) / "etcd.log"
    with log.open("a") as handle:
        handle.write(f"\n--- started by the kubelet stand-in: {' '.join(command)}\n")
        handle.flush()
        process = subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    etcd_state_file(instance_id).write_text(json.dumps({"pid": process.pid, "command": command}))
    record("etcd-started", command=command)


# ---------------------------------------------------------------- the kubelet


def kubelet_file(instance_id: str) -> Path:
    return instance_dir(instance_id) / "kubelet.json"


def kubelet(instance_id: str | None = None) -> dict[str, Any]:
    path = kubelet_file(instance_id or INSTANCE)
    return json.loads(path.read_text()) if path.exists() else {"running": False}


def save_kubelet(state: dict[str, Any], instance_id: str | None = None) -> None:
    kubelet_file(instance_id or INSTANCE).write_text(json.dumps(state))


def manifests(instance: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    directory = host_path("/etc/kubernetes/manifests", instance)
    found = {}
    if directory.is_dir():
        for path in sorted(directory.glob("*.yaml")):
            found[path.stem] = yaml_load(path.read_text())
    return found


def sync_static_pods(instance_id: str | None = None) -> None:
    """What the kubelet does with /etc/kubernetes/manifests while it runs."""
    instance_id = instance_id or INSTANCE
    instance = instances()[instance_id]
    if not instance.get("alive") or not kubelet(instance_id)["running"]:
        return
    pods = manifests(instance)
    state_file = etcd_state_file(instance_id)
    current = json.loads(state_file.read_text()) if state_file.exists() else None
    if "etcd" in pods:
        command = etcd_command(instance, pods["etcd"])
        if current and (current["command"] != command or not process_alive(current["pid"])):
            stop_etcd(instance_id)
            current = None
        if current is None:
            start_etcd(instance_id, command)
    elif current:
        stop_etcd(instance_id)


def start_kubelet() -> None:
    state = kubelet()
    state["running"] = True
    save_kubelet(state)
    # The kubelet's certificate manager keeps the client certificate it runs with (rotation on).
    kubeconfig = host_path("/etc/kubernetes/kubelet.conf")
    pem = host_path("/var/lib/kubelet/pki/kubelet-client-current.pem")
    if kubeconfig.exists() and not pem.exists():
        user = yaml_load(kubeconfig.read_text())["users"][0]["user"]
        if "client-certificate-data" in user:
            pem.parent.mkdir(parents=True, exist_ok=True)
            pem.write_bytes(
                base64.b64decode(user["client-certificate-data"]) + base64.b64decode(user["client-key-data"])
            )
    sync_static_pods()
    record("kubelet-started")


# ---------------------------------------------------------------- certificates


def mint(common_name: str, organizations: tuple[str, ...] = (), days: float | None = None) -> tuple[bytes, bytes]:
    """A certificate (self-signed: the harness checks identities and expiry, not chains)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    days = cluster().get("certificate_days", 365) if days is None else days
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    names += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    subject = x509.Name(names)
    start = now() - datetime.timedelta(minutes=5)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def certificate_identity(pem: bytes) -> tuple[str, list[str], datetime.datetime]:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    certificate = x509.load_pem_x509_certificate(pem)
    common_name = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    organizations = [a.value for a in certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return common_name, organizations, certificate.not_valid_after_utc


LEAF_CERTIFICATES = {
    "apiserver": ("kube-apiserver", ()),
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", ("kubeadm:cluster-admins",)),
    "apiserver-etcd-client": ("kube-apiserver-etcd-client", ()),
    "front-proxy-client": ("front-proxy-client", ()),
    "etcd/server": ("kube-etcd", ()),
    "etcd/peer": ("kube-etcd-peer", ()),
    "etcd/healthcheck-client": ("kube-etcd-healthcheck-client", ()),
}


def write_certificates(renew: bool = False, only: str | None = None) -> None:
    pki = host_path("/etc/kubernetes/pki")
    for name, (common_name, organizations) in LEAF_CERTIFICATES.items():
        if only and name != only:
            continue
        crt = pki / f"{name}.crt"
        if crt.exists() and not renew:
            continue  # kubeadm keeps a certificate that is already there
        certificate, key = mint(common_name, organizations, cluster().get("renewed_days") if renew else None)
        crt.parent.mkdir(parents=True, exist_ok=True)
        crt.write_bytes(certificate)
        (pki / f"{name}.key").write_bytes(key)


def write_kubeconfig(path: Path, user: str, organizations: tuple[str, ...], server: str, days: float | None = None):
    certificate, key = mint(user, organizations, days)
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kubernetes", "cluster": {"server": server}}],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": base64.b64encode(certificate).decode(),
                    "client-key-data": base64.b64encode(key).decode(),
                },
            }
        ],
        "contexts": [{"name": "default", "context": {"cluster": "kubernetes", "user": user}}],
        "current-context": "default",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document))
    return document


# ---------------------------------------------------------------- the API (objects in etcd)


class Unavailable(Failure):
    pass


def api_serving(instance: dict[str, Any]) -> bool:
    """A replica's kube-apiserver process runs: its manifest is there and the kubelet runs it."""
    if not instance.get("alive") or not instance.get("replica_name"):
        return False
    return kubelet(instance["id"])["running"] and "kube-apiserver" in manifests(instance)


def api_ready(instance: dict[str, Any]) -> bool:
    """Its /readyz: serving, and its own etcd member answering a linearizable read (the API
    server's etcd check)."""
    if not api_serving(instance):
        return False
    read = [
        f"--endpoints={etcd_endpoint(instance)}",
        "--dial-timeout=1s",
        "--command-timeout=2s",
        "get",
        "/registry/health",
    ]
    return etcdctl_run(read, timeout=5).returncode == 0


def etcd_endpoint(instance: dict[str, Any]) -> str:
    return f"http://{cluster()['replicas'][instance['replica_name']]['address']}:2379"


class Api:
    """One kube-apiserver, reading and writing its own etcd member linearizably."""

    def __init__(self, instance: dict[str, Any]):
        self.instance = instance
        self.endpoint = etcd_endpoint(instance)

    def _etcdctl(self, *args: str) -> str:
        result = etcdctl_run([f"--endpoints={self.endpoint}", "--dial-timeout=1s", "--command-timeout=3s", *args])
        if result.returncode != 0:
            raise Unavailable(f"the server is currently unable to handle the request (etcd: {result.stderr.strip()})")
        return result.stdout

    def get(self, key: str) -> dict[str, Any] | None:
        out = self._etcdctl("get", key, "--print-value-only")
        return json.loads(out) if out.strip() else None

    def list(self, prefix: str) -> list[dict[str, Any]]:
        out = self._etcdctl("get", prefix, "--prefix", "-w", "json")
        kvs = json.loads(out).get("kvs", [])
        return [json.loads(base64.b64decode(kv["value"])) for kv in kvs]

    def put(self, key: str, value: dict[str, Any]) -> None:
        process = subprocess.run(
            [ETCDCTL, f"--endpoints={self.endpoint}", "--dial-timeout=1s", "--command-timeout=3s", "put", key],
            input=json.dumps(value),
            capture_output=True,
            text=True,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")}, "ETCDCTL_API": "3"},
            timeout=8,
        )
        if process.returncode != 0:
            raise Unavailable(f"the server is currently unable to handle the request (etcd: {process.stderr.strip()})")

    def delete(self, key: str) -> None:
        self._etcdctl("del", key)


def api_at(server: str) -> Api:
    """The API server a URL reaches: an instance's own, or the load balancer's pick."""
    host = urllib.parse.urlsplit(server).hostname
    if host == cluster()["endpoint"]:
        for instance in instances().values():
            if api_ready(instance):
                return Api(instance)
        raise Unavailable(f"dial tcp {host}:443: no healthy target behind the load balancer")
    for instance in instances().values():
        if instance["ip"] == host:
            # A request to one API server fails by itself when its etcd member cannot serve it.
            if not api_serving(instance):
                raise Unavailable(f"dial tcp {host}:6443: connect: connection refused")
            return Api(instance)
    raise Unavailable(f"dial tcp {host}: no such host")


def key(resource: str, namespace: str | None, name: str) -> str:
    return f"/registry/{resource}/{namespace or '_'}/{name}"


def resource_of(kind: str) -> str:
    return PLURALS.get(kind, kind.lower() + "s")


RESOURCE_ALIASES = {
    "node": "nodes",
    "nodes": "nodes",
    "pod": "pods",
    "pods": "pods",
    "configmap": "configmaps",
    "configmaps": "configmaps",
    "cm": "configmaps",
    "secret": "secrets",
    "secrets": "secrets",
    "daemonset": "daemonsets",
    "daemonsets": "daemonsets",
    "deployment": "deployments",
    "deployments": "deployments",
}
CLUSTER_SCOPED = {"nodes", "clusterroles", "clusterrolebindings", "namespaces", "customresourcedefinitions"}


def put_object(api: Api, document: dict[str, Any]) -> None:
    resource = resource_of(document["kind"])
    meta = document.setdefault("metadata", {})
    namespace = None if resource in CLUSTER_SCOPED else meta.get("namespace", "default")
    if "stringData" in document:
        document.setdefault("data", {}).update(
            {k: base64.b64encode(v.encode()).decode() for k, v in document.pop("stringData").items()}
        )
    api.put(key(resource, namespace, meta["name"]), document)


def get_object(api: Api, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
    return api.get(key(resource, None if resource in CLUSTER_SCOPED else namespace, name))


def list_objects(api: Api, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
    if resource in CLUSTER_SCOPED or namespace is None:
        return api.list(f"/registry/{resource}/")
    return api.list(f"/registry/{resource}/{namespace}/")


# ---------------------------------------------------------------- what the cluster itself does


def node_ready(node: dict[str, Any], api: Api) -> bool:
    owner = next((i for i in instances().values() if i["hostname"] == node["metadata"]["name"]), None)
    calico = get_object(api, "daemonsets", "kube-system", "calico-node")
    return bool(owner and owner.get("alive") and kubelet(owner["id"])["running"] and calico)


def controllers(api: Api) -> None:
    """The cloud controller manager initialises Nodes while its DaemonSet exists."""
    if not get_object(api, "daemonsets", "kube-system", "aws-cloud-controller-manager"):
        return
    for node in list_objects(api, "nodes"):
        taints = node["spec"].get("taints", [])
        if any(t["key"] == UNINITIALIZED_TAINT for t in taints):
            node["spec"]["taints"] = [t for t in taints if t["key"] != UNINITIALIZED_TAINT]
            node["metadata"]["labels"]["topology.kubernetes.io/zone"] = "us-east-1a"
            put_object(api, node)


def with_status(node: dict[str, Any], api: Api) -> dict[str, Any]:
    ready = "True" if node_ready(node, api) else "False"
    node.setdefault("status", {})["conditions"] = [{"type": "Ready", "status": ready}]
    return node


def register_node(api: Api, config: dict[str, Any]) -> None:
    """The kubelet registers its Node (what `--node-labels`, `--register-with-taints` and the
    KubeletConfiguration providerID give it; an external cloud provider adds the uninitialized taint)."""
    instance = me()
    registration = config["nodeRegistration"]
    args = {a["name"]: a["value"] for a in registration.get("kubeletExtraArgs", [])}
    labels = {"kubernetes.io/hostname": registration["name"]}
    for pair in filter(None, args.get("node-labels", "").split(",")):
        name, _, value = pair.partition("=")
        labels[name] = value
    taints = [dict(t) for t in registration.get("taints", [])]
    if args.get("cloud-provider") == "external":
        taints.append({"key": UNINITIALIZED_TAINT, "value": "true", "effect": "NoSchedule"})
    patch = host_path("/etc/kubestep/kubeadm/patches/kubeletconfiguration+merge.json")
    provider = json.loads(patch.read_text()).get("providerID") if patch.exists() else None
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": registration["name"], "labels": labels},
        "spec": {"taints": taints, **({"providerID": provider} if provider else {})},
        "status": {"nodeInfo": {"kubeletVersion": "v" + instance["version"]}},
    }
    existing = get_object(api, "nodes", None, registration["name"])
    if existing:
        existing["metadata"]["labels"].update(labels)
        existing["status"] = node["status"]
        node = existing
    put_object(api, node)
    state = kubelet()
    state["registered"] = registration["name"]
    save_kubelet(state)
    record("node-registered", node=registration["name"], version=instance["version"])
    mirror_pods(api)


def mirror_pods(api: Api) -> None:
    """The kubelet mirrors its static pods into the API (kubeadm reads kube-apiserver's image
    and etcd's client URL annotation from them)."""
    state = kubelet()
    node = state.get("registered")
    if not node:
        return
    for component, pod in manifests().items():
        container = pod["spec"]["containers"][0]
        mirror = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{component}-{node}",
                "namespace": "kube-system",
                "labels": {"component": component, "tier": "control-plane"},
                "annotations": pod["metadata"].get("annotations", {}),
            },
            "spec": {"nodeName": node, "containers": [{"name": component, "image": container["image"]}]},
        }
        put_object(api, mirror)


# ---------------------------------------------------------------- kubectl


def kubeconfig_identity(path: Path) -> tuple[str, str, list[str]]:
    """(server, user, groups) of a kubeconfig; refuses an expired client certificate."""
    document = yaml_load(path.read_text())
    user = document["users"][0]["user"]
    if "client-certificate-data" in user:
        pem = base64.b64decode(user["client-certificate-data"])
    else:
        pem = Path(ROOT + user["client-certificate"]).read_bytes()
    common_name, organizations, not_after = certificate_identity(pem)
    if not_after < now():
        raise Failure("error: You must be logged in to the server (Unauthorized)")
    return document["clusters"][0]["cluster"]["server"], common_name, organizations


def allowed(api: Api, user: str, groups: list[str], verb: str, resource: str, namespace: str | None) -> bool:
    if {"kubeadm:cluster-admins", "system:masters"} & set(groups):
        return True
    if user.startswith("system:node:"):
        return resource == "nodes" and verb in ("get", "list")
    for binding in list_objects(api, "rolebindings", namespace or "default"):
        if not any(s.get("kind") == "User" and s.get("name") == user for s in binding.get("subjects", [])):
            continue
        role = get_object(api, "roles", namespace, binding["roleRef"]["name"])
        for rule in (role or {}).get("rules", []):
            if resource in rule["resources"] and (verb in rule["verbs"] or "*" in rule["verbs"]):
                return True
    return False


def parse_kubectl(args: list[str]) -> tuple[dict[str, Any], list[str]]:
    options: dict[str, Any] = {"namespace": "default"}
    positional = []
    valued = {
        "--kubeconfig": "kubeconfig",
        "--server": "server",
        "-n": "namespace",
        "--namespace": "namespace",
        "-o": "output",
        "-l": "selector",
        "--field-selector": "field_selector",
        "-f": "file",
        "--field-manager": "manager",
        "--grace-period": "grace",
    }
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name in valued:
            options[valued[name]] = value if eq else args[i + 1]
            i += 1 if eq else 2
            continue
        if name == "--raw":
            options["raw"] = value if eq else args[i + 1]
            i += 1 if eq else 2
            continue
        if arg in ("-A", "--all-namespaces"):
            options["all_namespaces"] = True
        elif arg.startswith("--"):
            options[arg[2:].split("=")[0].replace("-", "_")] = True
        else:
            positional.append(arg)
        i += 1
    return options, positional


def matches(document: dict[str, Any], selector: str | None, field_selector: str | None) -> bool:
    for term in filter(None, (selector or "").split(",")):
        name, _, value = term.partition("=")
        labels = document.get("metadata", {}).get("labels", {})
        if name not in labels or (value and labels[name] != value):
            return False
    for term in filter(None, (field_selector or "").split(",")):
        name, _, value = term.partition("=")
        current: Any = document
        for part in name.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        if current != value:
            return False
    return True


def kubectl(args: list[str]) -> int:
    options, positional = parse_kubectl(args)
    kubeconfig = Path(options.get("kubeconfig") or ROOT + "/etc/kubernetes/admin.conf")
    server, user, groups = kubeconfig_identity(kubeconfig)
    api = api_at(options.get("server") or server)
    verb = positional[0] if positional else ""
    record("kubectl", args=args, user=user, api=api.instance["id"])
    if verb == "get" and options.get("raw"):
        if not api_ready(api.instance):
            raise Unavailable("readyz check failed: etcd")
        print("ok")
        return 0
    if verb == "apply":
        text = sys.stdin.read() if options["file"] == "-" else Path(options["file"]).read_text()
        documents = [d for d in yaml_load_all(text) if d]
        documents = [item for d in documents for item in (d["items"] if d["kind"] == "List" else [d])]
        for document in documents:
            resource = resource_of(document["kind"])
            namespace = document.get("metadata", {}).get("namespace")
            if not allowed(api, user, groups, "patch", resource, namespace):
                raise Failure(f'Error from server (Forbidden): {resource} is forbidden: User "{user}" cannot patch')
            document.setdefault("metadata", {}).setdefault("annotations", {})[APPLIED_BY] = json.dumps(
                {"instance": INSTANCE, "version": me()["version"], "manager": options.get("manager")}
            )
            put_object(api, document)
        record("applied", objects=[f"{d['kind']}/{d['metadata']['name']}" for d in documents], user=user)
        return 0
    resource = RESOURCE_ALIASES.get(positional[1], positional[1]) if len(positional) > 1 else ""
    namespace = None if options.get("all_namespaces") else options["namespace"]
    if not allowed(api, user, groups, "list" if len(positional) < 3 else verb, resource, namespace):
        raise Failure(f'Error from server (Forbidden): {resource} is forbidden: User "{user}" cannot {verb}')
    if verb == "get":
        if resource == "nodes":
            controllers(api)
        if len(positional) > 2:
            found = get_object(api, resource, namespace, positional[2])
            if found is None:
                if options.get("ignore_not_found"):
                    return 0
                raise Failure(f'Error from server (NotFound): {resource} "{positional[2]}" not found')
            print(json.dumps(with_status(found, api) if resource == "nodes" else found))
        else:
            items = [
                d
                for d in list_objects(api, resource, namespace)
                if matches(d, options.get("selector"), options.get("field_selector"))
            ]
            if resource == "nodes":
                items = [with_status(d, api) for d in items]
            print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
        return 0
    if verb == "delete":
        if len(positional) > 2:
            found = get_object(api, resource, namespace, positional[2])
            if found is None and not options.get("ignore_not_found"):
                raise Failure(f'Error from server (NotFound): {resource} "{positional[2]}" not found')
            targets = [found] if found else []
        else:
            targets = [
                d
                for d in list_objects(api, resource, namespace)
                if matches(d, options.get("selector"), options.get("field_selector"))
            ]
        for target in targets:
            meta = target["metadata"]
            api.delete(key(resource, None if resource in CLUSTER_SCOPED else meta.get("namespace"), meta["name"]))
        record("deleted", resource=resource, names=[t["metadata"]["name"] for t in targets])
        return 0
    raise Failure(f"kubectl stand-in: {' '.join(args)} is not modelled")


# ---------------------------------------------------------------- kubeadm


def read_config(args: list[str]) -> dict[str, dict[str, Any]]:
    path = dynamodb_cli.option(args, "--config")
    return {d["kind"]: d for d in yaml_load_all(Path(path).read_text()) if d} if path else {}


def patches_dir() -> Path:
    return host_path("/etc/kubestep/kubeadm/patches")


def apply_json_patch(document: dict[str, Any], patch: list[dict[str, Any]]) -> None:
    for operation in patch:
        assert operation["op"] == "add" and operation["path"].endswith("/-"), operation
        target: Any = document
        for part in operation["path"].strip("/").split("/")[:-1]:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target.append(operation["value"])


def write_manifest(name: str, pod: dict[str, Any]) -> None:
    path = host_path(f"/etc/kubernetes/manifests/{name}.yaml")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(pod))


def etcd_manifest(cluster_config: dict[str, Any], node_name: str, advertise: str) -> dict[str, Any]:
    """kubeadm's stacked etcd pod (phases/etcd/local.go getEtcdCommand), then this node's patches."""
    local = cluster_config["etcd"]["local"]
    command = [
        "etcd",
        f"--name={node_name}",
        f"--listen-client-urls=https://127.0.0.1:2379,https://{advertise}:2379",
        f"--advertise-client-urls=https://{advertise}:2379",
        f"--listen-peer-urls=https://{advertise}:2380",
        f"--initial-advertise-peer-urls=https://{advertise}:2380",
        f"--data-dir={local['dataDir']}",
        f"--initial-cluster={node_name}=https://{advertise}:2380",
    ]
    command += [f"--{a['name']}={a['value']}" for a in local.get("extraArgs", [])]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "etcd",
            "namespace": "kube-system",
            "annotations": {"kubeadm.kubernetes.io/etcd.advertise-client-urls": f"https://{advertise}:2379"},
        },
        "spec": {"containers": [{"name": "etcd", "image": "registry.k8s.io/etcd:standin", "command": command}]},
    }
    patch = patches_dir() / "etcd+json.json"
    if patch.exists():
        apply_json_patch(pod, json.loads(patch.read_text()))
    return pod


def control_plane_manifests(version: str) -> None:
    for component in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        write_manifest(
            component,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": component, "namespace": "kube-system"},
                "spec": {
                    "containers": [
                        {"name": component, "image": f"registry.k8s.io/{component}:{version}", "command": [component]}
                    ]
                },
            },
        )


def kubeconfigs(cluster_config: dict[str, Any], node_name: str, advertise: str, init: bool) -> None:
    endpoint = f"https://{cluster_config['controlPlaneEndpoint']}"
    directory = host_path("/etc/kubernetes")
    wanted = {
        "admin.conf": ("kubernetes-admin", ("kubeadm:cluster-admins",), endpoint),
        "controller-manager.conf": ("system:kube-controller-manager", (), f"https://{advertise}:6443"),
        "scheduler.conf": ("system:kube-scheduler", (), f"https://{advertise}:6443"),
    }
    if init:
        wanted["super-admin.conf"] = ("kubernetes-super-admin", ("system:masters",), f"https://{advertise}:6443")
        wanted["kubelet.conf"] = (f"system:node:{node_name}", ("system:nodes",), f"https://{advertise}:6443")
    for name, (user, organizations, server) in wanted.items():
        if not (directory / name).exists():
            write_kubeconfig(directory / name, user, organizations, server)


def lb_api() -> Api:
    return api_at(f"https://{cluster()['endpoint']}:443")


def admin_api() -> Api:
    server, _, _ = kubeconfig_identity(host_path("/etc/kubernetes/admin.conf"))
    return api_at(server)


def cluster_configuration_from(api: Api) -> dict[str, Any]:
    found = get_object(api, "configmaps", "kube-system", "kubeadm-config")
    if not found:
        raise Failure('unable to fetch the kubeadm-config ConfigMap: configmaps "kubeadm-config" not found')
    return yaml_load(found["data"]["ClusterConfiguration"])


def upload_config(api: Api, cluster_config: dict[str, Any], kubelet_config: dict[str, Any]) -> None:
    put_object(
        api,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
            "data": {"ClusterConfiguration": yaml.safe_dump(cluster_config)},
        },
    )
    put_object(
        api,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "kubelet-config", "namespace": "kube-system"},
            "data": {"kubelet": yaml.safe_dump(kubelet_config), "kubeadmVersion": "v" + me()["version"]},
        },
    )


def ensure_addons(api: Api, version: str) -> None:
    """kubeadm's CoreDNS and kube-proxy (kube-proxy at the cluster's version; CoreDNS as this
    kubeadm deploys it)."""
    kubeadm_version = "v" + me()["version"]
    put_object(
        api,
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "kube-proxy", "image": f"registry.k8s.io/kube-proxy:{version}"}]}
                }
            },
        },
    )
    put_object(
        api,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "coredns",
                "namespace": "kube-system",
                "annotations": {COREDNS_ANNOTATION: kubeadm_version},
            },
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": "coredns", "image": "registry.k8s.io/coredns/coredns:standin"}]}
                }
            },
        },
    )
    record("kubeadm-addons", version=version, by=kubeadm_version)


def bootstrap_tokens(api: Api, init_config: dict[str, Any]) -> None:
    for token in init_config.get("bootstrapTokens", []):
        token_id, secret = token["token"].split(".")
        seconds = parse_duration(token.get("ttl", "24h"))
        put_object(
            api,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "bootstrap.kubernetes.io/token",
                "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
                "stringData": {
                    "token-id": token_id,
                    "token-secret": secret,
                    "description": token.get("description", ""),
                    "expiration": iso(now() + datetime.timedelta(seconds=seconds)),
                    "usage-bootstrap-authentication": "true",
                    "usage-bootstrap-signing": "true",
                },
            },
        )
    put_object(
        api,
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "cluster-info", "namespace": "kube-public"},
            "data": {"kubeconfig": "standin"},
        },
    )


def parse_duration(text: str) -> float:
    total, number = 0.0, ""
    units = {"h": 3600, "m": 60, "s": 1}
    for char in text:
        if char.isdigit() or char == ".":
            number += char
        else:
            total += float(number or 0) * units[char]
            number = ""
    return total


def mark_control_plane(api: Api, node_name: str) -> None:
    node = get_object(api, "nodes", None, node_name)
    if node is None:
        raise Failure(f'error marking the node {node_name} as control-plane: nodes "{node_name}" not found')
    node["metadata"]["labels"]["node-role.kubernetes.io/control-plane"] = ""
    taints = node["spec"].setdefault("taints", [])
    if not any(t["key"] == CONTROL_PLANE_TAINT for t in taints):
        taints.append({"key": CONTROL_PLANE_TAINT, "effect": "NoSchedule"})
    put_object(api, node)


def wait_local_api(what: str) -> Api:
    deadline = time.monotonic() + cluster()["kubeadm_wait_seconds"]
    while True:
        sync_static_pods()
        if api_ready(me()):
            return Api(me())
        if time.monotonic() > deadline:
            raise Failure(f"{what}: timed out waiting for the local kube-apiserver (its etcd member does not serve)")
        time.sleep(0.3)


def minor(version: str) -> int:
    return int(version.lstrip("v").split(".")[1])


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.lstrip("v").split("."))


# -- discovery and the join workflow


def discovery(join_config: dict[str, Any]) -> dict[str, Any]:
    """Token discovery (cmd/kubeadm/app/discovery/token): cluster-info from kube-public, then the
    kubeadm-config ConfigMap with the bootstrap token, both through the load balancer. The
    token must exist and be unexpired."""
    token = join_config["discovery"]["bootstrapToken"]["token"]
    deadline = time.monotonic() + cluster()["kubeadm_wait_seconds"]
    last = ""
    while time.monotonic() < deadline:
        try:
            api = lb_api()
            token_id, secret = token.split(".")
            stored = get_object(api, "secrets", "kube-system", f"bootstrap-token-{token_id}")
            data = {k: base64.b64decode(v).decode() for k, v in (stored or {}).get("data", {}).items()}
            if not stored or data.get("token-secret") != secret or data.get("expiration", "9") < iso(now()):
                raise Failure(f"token id {token_id!r} is invalid for this cluster or it has expired")
            if not get_object(api, "configmaps", "kube-public", "cluster-info"):
                raise Failure("unable to fetch the cluster-info ConfigMap")
            return cluster_configuration_from(api)
        except Failure as error:
            last = str(error)
            time.sleep(0.5)
    record("discovery-failed", reason=last)
    raise Failure(f"couldn't validate the identity of the API Server / fetch the cluster configuration: {last}")


def preflight(join_config: dict[str, Any], cluster_config: dict[str, Any], extra_ignored: list[str]) -> None:
    ignored = set(join_config["nodeRegistration"].get("ignorePreflightErrors", [])) | set(extra_ignored)
    kubelet_version, control_plane = me()["version"], cluster_config["kubernetesVersion"]
    if minor(kubelet_version) > minor(control_plane) and "KubeletVersion" not in ignored:
        raise Failure(
            f"[preflight] Some fatal errors occurred: [ERROR KubeletVersion]: the kubelet version is higher than the "
            f'control plane version. Kubelet version: "{kubelet_version}" Control plane version: "{control_plane}"'
        )
    if "controlPlane" in join_config and manifests() and "DirAvailable--etc-kubernetes-manifests" not in ignored:
        raise Failure(
            "[preflight] [ERROR DirAvailable--etc-kubernetes-manifests]: /etc/kubernetes/manifests is not empty"
        )


def check_etcd() -> None:
    """check-etcd: every started member answers (CheckLocalEtcdClusterStatus)."""
    api = admin_api()
    endpoints = [
        p["metadata"]["annotations"]["kubeadm.kubernetes.io/etcd.advertise-client-urls"]
        for p in list_objects(api, "pods", "kube-system")
        if p["metadata"]["labels"].get("component") == "etcd"
    ]
    listing = etcdctl_run(
        [
            f"--endpoints={translate_urls(','.join(endpoints))}",
            "member",
            "list",
            "-w",
            "json",
            "--dial-timeout=1s",
            "--command-timeout=3s",
        ]
    )
    if listing.returncode != 0:
        raise Failure(f"etcd cluster is not healthy: {listing.stderr.strip()}")
    for member in json.loads(listing.stdout)["members"]:
        for url in member.get("clientURLs", []):
            if etcdctl_run(
                [f"--endpoints={url}", "endpoint", "status", "--dial-timeout=1s", "--command-timeout=3s"]
            ).returncode:
                raise Failure(f"etcd cluster is not healthy: {url} does not answer")


def kubeadm_etcd_join(cluster_config: dict[str, Any], join_config: dict[str, Any]) -> None:
    """kubeadm's own etcd join: a learner named after the node at the instance's address."""
    advertise = join_config["controlPlane"]["localAPIEndpoint"]["advertiseAddress"]
    violation(
        "etcd-member-on-instance-address",
        f"kubeadm's etcd join ran: it would add a learner at https://{advertise}:2380, not the replica's stable name",
    )
    raise Failure(f"etcdserver: failed to add member https://{advertise}:2380 (the harness stops here)")


def join(config: dict[str, dict[str, Any]], phase: list[str], extra_ignored: list[str]) -> None:
    join_config = config["JoinConfiguration"]
    control_plane = "controlPlane" in join_config
    name = join_config["nodeRegistration"]["name"]
    order = [
        "preflight",
        "control-plane-prepare",
        "check-etcd",
        "kubelet-start",
        "etcd-join",
        "kubelet-wait-bootstrap",
        "control-plane-join/etcd",
        "control-plane-join/mark-control-plane",
        "wait-control-plane",
    ]
    if phase:
        wanted = phase[0] if len(phase) == 1 or phase[1] == "all" else f"{phase[0]}/{phase[1]}"
        steps = [s for s in order if s == wanted or s.startswith(wanted + "/")]
    else:
        skipped = set(join_config.get("skipPhases", []))
        steps = [s for s in order if s not in skipped and s.split("/")[0] not in skipped]
    record("kubeadm-join", phases=steps)
    cluster_config = None
    for step in steps:
        if (
            step
            in (
                "check-etcd",
                "etcd-join",
                "control-plane-join/etcd",
                "control-plane-prepare",
                "control-plane-join/mark-control-plane",
                "wait-control-plane",
            )
            and not control_plane
        ):
            continue
        if cluster_config is None:
            cluster_config = discovery(join_config)
        if step == "preflight":
            preflight(join_config, cluster_config, extra_ignored)
        elif step == "control-plane-prepare":
            write_certificates()
            advertise = join_config["controlPlane"]["localAPIEndpoint"]["advertiseAddress"]
            kubeconfigs(cluster_config, name, advertise, init=False)
            control_plane_manifests(cluster_config["kubernetesVersion"])
        elif step == "check-etcd":
            check_etcd()
        elif step == "kubelet-start":
            kubelet_config = host_path("/var/lib/kubelet/config.yaml")
            kubelet_config.parent.mkdir(parents=True, exist_ok=True)
            kubelet_config.write_text("rotateCertificates: true\n")
            start_kubelet()
        elif step in ("etcd-join", "control-plane-join/etcd"):
            kubeadm_etcd_join(cluster_config, join_config)
        elif step == "kubelet-wait-bootstrap":
            # TLS bootstrap: a control-plane kubelet against its local API server (local mode).
            api = wait_local_api("kubelet-wait-bootstrap") if control_plane else lb_api()
            certificate, key_pem = mint(f"system:node:{name}", ("system:nodes",))
            pem = host_path("/var/lib/kubelet/pki/kubelet-client-current.pem")
            pem.parent.mkdir(parents=True, exist_ok=True)
            pem.write_bytes(certificate + key_pem)
            server = f"https://{cluster()['endpoint']}:443"
            document = write_kubeconfig(
                host_path("/etc/kubernetes/kubelet.conf"), f"system:node:{name}", ("system:nodes",), server
            )
            document["users"][0]["user"] = {
                "client-certificate": "/var/lib/kubelet/pki/kubelet-client-current.pem",
                "client-key": "/var/lib/kubelet/pki/kubelet-client-current.pem",
            }
            host_path("/etc/kubernetes/kubelet.conf").write_text(yaml.safe_dump(document))
            register_node(api, join_config)
        elif step == "control-plane-join/mark-control-plane":
            mark_control_plane(admin_api(), name)
        elif step == "wait-control-plane":
            wait_local_api("wait-control-plane")


# -- init and its phases


def split_brain_check() -> None:
    for instance in instances().values():
        if instance["id"] == INSTANCE or not instance.get("alive") or not instance.get("replica_name"):
            continue
        result = etcdctl_run(
            [
                f"--endpoints={etcd_endpoint(instance)}",
                "--dial-timeout=1s",
                "--command-timeout=2s",
                "get",
                key("configmaps", "kube-system", "kubeadm-config"),
                "--consistency=s",
                "--keys-only",
            ],
            timeout=5,
        )
        if result.returncode == 0 and result.stdout.strip():
            violation(
                "split-brain", f"kubeadm init on {INSTANCE} while {instance['id']}'s etcd already holds a cluster"
            )


def init_phase(config: dict[str, dict[str, Any]], phase: str, sub: str | None) -> None:
    init_config, cluster_config = config["InitConfiguration"], config["ClusterConfiguration"]
    name = init_config["nodeRegistration"]["name"]
    advertise = init_config["localAPIEndpoint"]["advertiseAddress"]
    version = cluster_config["kubernetesVersion"]
    if phase == "certs":
        write_certificates(only=None if sub in (None, "all") else sub)
    elif phase == "kubeconfig":
        kubeconfigs(cluster_config, name, advertise, init=True)
    elif phase == "etcd":
        write_manifest("etcd", etcd_manifest(cluster_config, name, advertise))
        sync_static_pods()
    elif phase == "control-plane":
        control_plane_manifests(version)
        sync_static_pods()
    elif phase == "kubelet-start":
        start_kubelet()
    elif phase == "mark-control-plane":
        api = wait_local_api("mark-control-plane")
        if not get_object(api, "nodes", None, name):
            register_node(api, init_config)
        mark_control_plane(api, name)
    elif phase == "kubelet-finalize":
        pem = "/var/lib/kubelet/pki/kubelet-client-current.pem"
        if host_path(pem).exists():
            path = host_path("/etc/kubernetes/kubelet.conf")
            document = yaml_load(path.read_text())
            document["users"][0]["user"] = {"client-certificate": pem, "client-key": pem}
            path.write_text(yaml.safe_dump(document))
    elif phase == "upload-config":
        upload_config(admin_api(), cluster_config, config.get("KubeletConfiguration", {}))
    else:
        raise Failure(f"kubeadm init phase {phase} is not modelled")
    record("kubeadm-init-phase", phase=phase, sub=sub)


def init(config: dict[str, dict[str, Any]]) -> None:
    split_brain_check()
    for phase in ("certs", "kubeconfig", "etcd", "control-plane", "kubelet-start"):
        init_phase(config, phase, None)
    api = wait_local_api("wait-control-plane")
    init_config, cluster_config = config["InitConfiguration"], config["ClusterConfiguration"]
    upload_config(api, cluster_config, config.get("KubeletConfiguration", {}))
    register_node(api, init_config)
    mark_control_plane(api, init_config["nodeRegistration"]["name"])
    bootstrap_tokens(api, init_config)
    init_phase(config, "kubelet-finalize", "all")
    ensure_addons(api, cluster_config["kubernetesVersion"])
    record("kubeadm-init")


# -- upgrades


def unupgraded_control_planes(api: Api, version: str) -> list[str]:
    return [
        p["spec"]["nodeName"]
        for p in list_objects(api, "pods", "kube-system")
        if p["metadata"]["labels"].get("component") == "kube-apiserver"
        and not p["spec"]["containers"][0]["image"].endswith(":" + version)
    ]


def upgrade_static_pods(api: Api, cluster_config: dict[str, Any], version: str) -> None:
    name = kubelet().get("registered")
    control_plane_manifests(version)
    advertise = me()["ip"]
    write_manifest("etcd", etcd_manifest(cluster_config, name, advertise))
    sync_static_pods()
    wait_local_api("upgrade/staticpods")
    mirror_pods(api)


def upgrade_apply(config: dict[str, dict[str, Any]]) -> None:
    options = config["UpgradeConfiguration"]["apply"]
    target = options["kubernetesVersion"]
    kubeadm_version = "v" + me()["version"]
    if not options.get("forceUpgrade") and not options.get("dryRun"):
        raise Failure("[upgrade] Are you sure you want to proceed? [y/N]: EOF: upgrade aborted (no confirmation)")
    if version_tuple(target) > version_tuple(kubeadm_version):
        raise Failure(
            f"Specified version to upgrade to {target!r} is higher than the kubeadm version {kubeadm_version!r}"
        )
    api = admin_api()
    cluster_config = cluster_configuration_from(api)
    current = cluster_config["kubernetesVersion"]
    if minor(target) > minor(current) + 1:
        raise Failure(
            f"Specified version to upgrade to {target!r} is too high; "
            "kubeadm can upgrade only 1 minor version at a time"
        )
    if version_tuple(target) < version_tuple(current):
        raise Failure(f"Specified version to upgrade to {target!r} is lower than the cluster version {current!r}")
    not_ready = [
        n["metadata"]["name"]
        for n in list_objects(api, "nodes")
        if CONTROL_PLANE_TAINT in {t["key"] for t in n["spec"].get("taints", [])} and not node_ready(n, api)
    ]
    ignored = set(options.get("ignorePreflightErrors", []))
    if not_ready and "ControlPlaneNodesReady" not in ignored:
        raise Failure(
            f"[preflight] [ERROR ControlPlaneNodesReady]: there are NotReady control-planes in the cluster: {not_ready}"
        )
    cluster_config["kubernetesVersion"] = target
    upgrade_static_pods(api, cluster_config, target)
    kubelet_config = yaml_load(get_object(api, "configmaps", "kube-system", "kubelet-config")["data"]["kubelet"])
    upload_config(api, cluster_config, kubelet_config)
    record("kubeadm-upgrade-apply", target=target, previous=current)
    upgrade_addons(api, cluster_config)


def upgrade_addons(api: Api, cluster_config: dict[str, Any]) -> None:
    version = cluster_config["kubernetesVersion"]
    waiting = unupgraded_control_planes(api, version)
    if waiting:
        record("kubeadm-addons-skipped", waiting=waiting)
        print(
            "[upgrade/addon] Skipping upgrade of addons because control plane instances "
            f"{waiting} have not been upgraded"
        )
        return
    ensure_addons(api, version)


def upgrade_node(config: dict[str, dict[str, Any]]) -> None:
    api = admin_api()
    cluster_config = cluster_configuration_from(api)
    version = cluster_config["kubernetesVersion"]
    if version_tuple(version) > version_tuple("v" + me()["version"]):
        raise Failure(f"the cluster runs {version}, newer than this kubeadm (v{me()['version']})")
    if manifests():
        upgrade_static_pods(api, cluster_config, version)
        upgrade_addons(api, cluster_config)
    record("kubeadm-upgrade-node", version=version)


# -- kubeconfig user, certs renew


def kubeconfig_user(args: list[str]) -> None:
    config = read_config(args)
    endpoint = config["ClusterConfiguration"]["controlPlaneEndpoint"]
    days = parse_duration(dynamodb_cli.option(args, "--validity-period") or "8760h") / 86400
    organizations = tuple(filter(None, (dynamodb_cli.option(args, "--org") or "").split(",")))
    certificate, key_pem = mint(dynamodb_cli.option(args, "--client-name"), organizations, days)
    print(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kubernetes", "cluster": {"server": f"https://{endpoint}"}}],
                "users": [
                    {
                        "name": "user",
                        "user": {
                            "client-certificate-data": base64.b64encode(certificate).decode(),
                            "client-key-data": base64.b64encode(key_pem).decode(),
                        },
                    }
                ],
                "contexts": [{"name": "default", "context": {"cluster": "kubernetes", "user": "user"}}],
                "current-context": "default",
            }
        )
    )


def certs_renew() -> None:
    write_certificates(renew=True)
    directory = host_path("/etc/kubernetes")
    for name in ("admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf"):
        path = directory / name
        if path.exists():
            document = yaml_load(path.read_text())
            user = document["users"][0]["user"]
            common_name, organizations, _ = certificate_identity(base64.b64decode(user["client-certificate-data"]))
            write_kubeconfig(
                path,
                common_name,
                tuple(organizations),
                document["clusters"][0]["cluster"]["server"],
                cluster().get("renewed_days"),
            )
    record("kubeadm-certs-renewed")


VALUED_FLAGS = {"--config", "--kubeconfig", "--client-name", "--validity-period", "--org", "--ttl", "--description"}


def positional_words(args: list[str]) -> list[str]:
    words, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in VALUED_FLAGS:
            skip = True
        elif not arg.startswith("-"):
            words.append(arg)
    return words


def kubeadm(args: list[str]) -> int:
    config = read_config(args)
    words = positional_words(args)
    extra_ignored = [
        v for a in args if a.startswith("--ignore-preflight-errors=") for v in a.split("=", 1)[1].split(",")
    ]
    record("kubeadm", args=args)
    sync_static_pods()
    if words[:2] == ["init", "phase"]:
        init_phase(config, words[2], words[3] if len(words) > 3 else None)
    elif words[:1] == ["init"]:
        init(config)
    elif words[:2] == ["join", "phase"]:
        join(config, words[2:], extra_ignored)
    elif words[:1] == ["join"]:
        join(config, [], extra_ignored)
    elif words[:2] == ["upgrade", "apply"]:
        upgrade_apply(config)
    elif words[:2] == ["upgrade", "node"]:
        upgrade_node(config)
    elif words[:2] == ["kubeconfig", "user"]:
        kubeconfig_user(args)
    elif words[:3] == ["certs", "renew", "all"]:
        certs_renew()
    elif words[:1] == ["reset"]:
        pass
    else:
        raise Failure(f"kubeadm stand-in: {' '.join(args)} is not modelled")
    sync_static_pods()
    return 0


# ---------------------------------------------------------------- AWS, IMDS, devices


def aws(args: list[str]) -> int:
    service, operation = args[0], args[1]
    record("aws", service=service, operation=operation)
    with locked():
        if service == "dynamodb":
            items = load("dynamodb.json", {})
            code = dynamodb_cli.run(items, operation, args)
            save("dynamodb.json", items)
            return code
        if service == "secretsmanager":
            print(load("secrets.json")[dynamodb_cli.option(args, "--secret-id")])
        elif service == "ec2":
            volumes = load("volumes.json")
            volume = volumes[dynamodb_cli.option(args, "--volume-ids") or dynamodb_cli.option(args, "--volume-id")]
            if operation == "describe-volumes":
                print(f"{volume['state']}\t{volume['attachedTo']}")
            elif operation == "attach-volume" and volume["state"] == "available":
                volume.update(state="in-use", attachedTo=dynamodb_cli.option(args, "--instance-id"))
            save("volumes.json", volumes)
        elif service == "s3api" and operation == "put-object":
            return s3_put_object(args)
        elif service == "s3api" and operation == "get-object":
            return s3_get_object(args)
        elif service == "route53" and operation == "change-resource-record-sets":
            batch = json.loads(dynamodb_cli.option(args, "--change-batch"))
            records = load("dns.json", {})
            for change in batch["Changes"]:
                rrs = change["ResourceRecordSet"]
                records[rrs["Name"]] = rrs["ResourceRecords"][0]["Value"]
            save("dns.json", records)
            print("/change/C0STANDIN")
    return 0


def s3_put_object(args: list[str]) -> int:
    """`aws s3api put-object --bucket B --key K --body FILE [--tagging T]` (AWS CLI Command
    Reference, s3api put-object): the file's bytes stored under the bucket and key (shared
    `s3/<bucket>/<key>`), its tags kept beside it (`s3.json`); prints the response's ETag. A
    missing body file fails as the CLI does (exit 255, "Error parsing parameter")."""
    bucket, key, body = (dynamodb_cli.option(args, f"--{name}") for name in ("bucket", "key", "body"))
    if not body or not os.path.isfile(body):
        sys.stderr.write(f"Error parsing parameter '--body': Blob values must be a path to a file: {body}\n")
        return 255
    target = SHARED / "s3" / bucket / key
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(body, target)
    objects = load("s3.json", {})
    objects[f"{bucket}/{key}"] = {"tagging": dynamodb_cli.option(args, "--tagging"), "instance": INSTANCE}
    save("s3.json", objects)
    print(json.dumps({"ETag": '"' + hashlib.md5(target.read_bytes()).hexdigest() + '"'}))
    return 0


def s3_get_object(args: list[str]) -> int:
    """`aws s3api get-object --bucket B --key K OUTFILE` (AWS CLI Command Reference, s3api
    get-object): the stored bytes to OUTFILE; a missing key exits 254 with S3's NoSuchKey."""
    bucket, key = dynamodb_cli.option(args, "--bucket"), dynamodb_cli.option(args, "--key")
    source = SHARED / "s3" / bucket / key
    if not source.is_file():
        sys.stderr.write(
            "An error occurred (NoSuchKey) when calling the GetObject operation: The specified key does not exist.\n"
        )
        return 254
    shutil.copyfile(source, args[-1])
    print(json.dumps({"ContentLength": source.stat().st_size}))
    return 0


def my_volume() -> dict[str, Any] | None:
    return next((v for v in load("volumes.json", {}).values() if v["attachedTo"] == INSTANCE), None)


def devices(name: str, args: list[str]) -> int:
    volume = my_volume()
    if name == "blkid":
        if not volume or not volume.get("filesystem"):
            return 2
        print(volume["filesystem"] if dynamodb_cli.option(args, "-s") == "TYPE" else volume["uuid"])
        return 0
    if name == "mkfs.ext4":
        with locked():
            volumes = load("volumes.json")
            for v in volumes.values():
                if v["attachedTo"] == INSTANCE:
                    v["filesystem"] = "ext4"
                    shutil.rmtree(v["dir"], ignore_errors=True)
                    Path(v["dir"]).mkdir(parents=True)
            save("volumes.json", volumes)
        return 0
    target = Path(args[-1])
    if name == "mountpoint":
        return 0 if target.is_symlink() else 1
    if name == "mount":
        if not volume:
            sys.stderr.write("mount: no volume attached\n")
            return 32
        if target.is_dir() and not target.is_symlink():
            target.rmdir()
        target.symlink_to(volume["dir"])
        return 0
    return 0


def curl(args: list[str]) -> int:
    url = next(a for a in args if a.startswith(("http://", "https://")))
    out = dynamodb_cli.option(args, "-o")
    instance = me()
    if url.endswith("/api/token"):
        print("imds-token")
    elif "/meta-data/" in url:
        field = url.split("/meta-data/", 1)[1]
        print(
            {
                "instance-id": instance["id"],
                "local-ipv4": instance["ip"],
                "local-hostname": instance["hostname"],
                "placement/availability-zone": instance["zone"],
            }[field],
            end="",
        )
    elif url.endswith("Release.key"):
        Path(out).write_text("kubernetes release key (stand-in)\n")
    elif url == cluster()["calico_url"]:
        shutil.copyfile(cluster()["calico_manifest"], out)
    elif url.endswith("/readyz"):
        try:
            lb_api()
        except Unavailable:
            return 22
        print("ok")
    else:
        return 22
    return 0


def crictl(args: list[str]) -> int:
    """`crictl ps --name ^NAME$ --state running -q`: a container id while the kubelet runs the static pod."""
    sync_static_pods()
    name = (dynamodb_cli.option(args, "--name") or "").strip("^$")
    if kubelet()["running"] and name in manifests():
        print(hashlib.sha256(name.encode()).hexdigest()[:12])
    return 0


def main(name: str, args: list[str]) -> int:
    try:
        if name == "etcdctl":
            return etcdctl_wrapper(args)
        if name == "kubectl":
            return kubectl(args)
        if name == "kubeadm":
            return kubeadm(args)
        if name == "aws":
            return aws(args)
        if name == "curl":
            return curl(args)
        if name == "crictl":
            return crictl(args)
        if name == "kubelet":
            print(f"Kubernetes v{me()['version']}")
            return 0
        if name in ("blkid", "mkfs.ext4", "mount", "mountpoint"):
            return devices(name, args)
    except Failure as error:
        record("failed", command=name, args=args, error=str(error))
        sys.stderr.write(f"{name}: {error}\n")
        return 1
    sys.stderr.write(f"stand-in: {name} is not modelled\n")
    return 2
