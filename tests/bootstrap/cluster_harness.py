"""A cluster of instances running the real rendered bootstrap script against real etcd.

Each instance gets what cloud-init would write (every `write_files` entry of its rendered
cloud-config, under its own root: the script's KUBESTEP_ROOT) and runs
/usr/local/sbin/kubestep-bootstrap with bash. The commands it calls are the stand-ins of
cluster_standin.py (kubeadm, kubectl, etcdctl, aws, curl, the kubelet, the devices), which share
one "cloud" (DynamoDB items, DNS records, volumes, secrets) and one cluster (a real etcd process
per control-plane replica, each on its own loopback address in a block chosen per harness, so
harnesses running at once never meet). Trivial commands (apt-get, systemctl, ...) are the
recording bash stub; `sleep` really sleeps, shortened, because the script waits for real
processes. Everything is torn down (etcd processes killed) by `close()`."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from kubestep import pki
from kubestep.bootstrap import BootstrapParams, components
from kubestep.bootstrap.cloud_init import files, write_files
from kubestep.store import keys
from tests.bootstrap.conftest import ACCOUNT, CONTROL_PLANE_SECRET, JOIN_TOKEN, NODE_SECRET, control_plane, node
from tests.bootstrap.dynamodb_cli import item_key

HERE = Path(__file__).parent
# Where the stand-ins' third-party imports live (PyYAML, cryptography: one site-packages).
THIRD_PARTY = Path(yaml.__file__).parent.parent
STANDIN_COMMANDS = [
    "kubeadm",
    "kubectl",
    "etcdctl",
    "aws",
    "curl",
    "kubelet",
    "crictl",
    "blkid",
    "mkfs.ext4",
    "mount",
    "mountpoint",
]
STUB_COMMANDS = ["apt-get", "apt-mark", "snap", "gpg", "systemctl", "sysctl", "modprobe", "chown", "sleep"]
CALICO_MANIFEST = HERE / "fixtures" / "calico-vxlan-standin.yaml"
UID = control_plane().uid
REGION = control_plane().region


@dataclasses.dataclass
class Boot:
    instance: str
    returncode: int
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class ClusterHarness:
    def __init__(self, base: Path, *, replica_count: int = 3, certificate_days: float = 365):
        self.base = base
        self.shared = base / "shared"
        self.shared.mkdir(parents=True)
        self.replica_count = replica_count
        self._counter = 0
        self._running: dict[str, subprocess.Popen] = {}
        block = f"127.{random.randint(100, 250)}.{random.randint(1, 250)}"
        names = {
            control_plane(i).replica_name: {"index": i, "address": f"{block}.{i + 1}"} for i in range(replica_count)
        }
        self.names = sorted(names, key=lambda n: names[n]["index"])
        endpoint = control_plane(0).endpoint
        self.calico_url = components.calico_manifest(control_plane(0).minor)[0]
        self._write(
            "cluster.json",
            {
                "replicas": names,
                "endpoint": endpoint,
                "calico_url": self.calico_url,
                "calico_manifest": str(CALICO_MANIFEST),
                "etcd_timing": {"heartbeat": 50, "election": 500},
                "kubeadm_wait_seconds": 20,
                "certificate_days": certificate_days,
                "renewed_days": 365,
            },
        )
        self._write("instances.json", {})
        self._write("dynamodb.json", {})
        self._write("dns.json", {})
        self.set_node_secret({"token": JOIN_TOKEN})
        volumes = {}
        for i in range(replica_count):
            volume_id = control_plane(i).etcd_volume_id
            directory = base / "volumes" / volume_id
            directory.mkdir(parents=True)
            volumes[volume_id] = {
                "state": "available",
                "attachedTo": "None",
                "dir": str(directory),
                "filesystem": None,
                "uuid": f"0b7ab1e5-0000-4000-8000-00000000e7c{i}",
            }
        self._write("volumes.json", volumes)
        self.bin = base / "bin"
        self.bin.mkdir()
        launcher = self.bin / "standin"
        # `-S`: no site (the venv's .pth files, the editable install's import finder), which cost a
        # stand-in start about as much as its own work; the stand-in needs only its own directory
        # and the one holding PyYAML and cryptography.
        launcher.write_text(
            f"#!{sys.executable} -S\nimport os, sys\nsys.path.insert(0, {str(HERE)!r})\n"
            f"sys.path.append({str(THIRD_PARTY)!r})\n"
            "from cluster_standin import main\nsys.exit(main(os.path.basename(sys.argv[0]), sys.argv[1:]))\n"
        )
        launcher.chmod(launcher.stat().st_mode | stat.S_IEXEC)
        fast = self.bin / "stub-fast"
        fast.write_text((HERE / "stub.sh").read_text())
        fast.chmod(fast.stat().st_mode | stat.S_IEXEC)
        for name in STANDIN_COMMANDS:
            (self.bin / name).symlink_to(launcher)
        for name in STUB_COMMANDS:
            (self.bin / name).symlink_to(fast)
        (self.shared / "no-failures.sh").write_text("")

    # ------------------------------------------------------------ shared state

    def _write(self, name: str, value: Any) -> None:
        (self.shared / name).write_text(json.dumps(value, indent=1))

    def _read(self, name: str) -> Any:
        return json.loads((self.shared / name).read_text())

    def _update(self, name: str, change) -> None:
        value = self._read(name)
        change(value)
        self._write(name, value)

    def set_node_secret(self, value: dict[str, Any]) -> None:
        secrets = self._read("secrets.json") if (self.shared / "secrets.json").exists() else {}
        secrets[NODE_SECRET] = json.dumps(value)
        secrets[CONTROL_PLANE_SECRET] = json.dumps(control_plane_secret())
        self._write("secrets.json", secrets)

    def configure(self, **values: Any) -> None:
        self._update("cluster.json", lambda c: c.update(values))

    def dynamodb(self) -> dict[str, Any]:
        return self._read("dynamodb.json")

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        path = self.shared / "events.jsonl"
        found = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        return [e for e in found if kind is None or e["event"] == kind]

    def violations(self) -> list[dict[str, Any]]:
        return self.events("violation")

    def instances(self) -> dict[str, dict[str, Any]]:
        return self._read("instances.json")

    # The items where the management service's store reads them (kubestep.store.keys), so a
    # script writing anywhere else fails the test that looks.

    @staticmethod
    def report_key(instance: dict[str, Any]) -> str:
        if instance.get("replica") is not None:
            return item_key(keys.bootstrap_pk(UID), keys.replica_report_sk(instance["replica"]))
        # A node's partition is named by its instance ARN (its role's ec2:SourceInstanceARN).
        arn = f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance['id']}"
        return item_key(keys.node_report_pk(UID, arn), keys.node_report_sk(instance["id"]))

    @staticmethod
    def init_claim_key() -> str:
        return item_key(keys.init_claim_pk(UID), keys.INIT_CLAIM_SK)

    def report(self, instance: dict[str, Any] | str) -> dict[str, Any]:
        instance = self.instances()[instance] if isinstance(instance, str) else instance
        return self.dynamodb()[self.report_key(instance)]

    def version_claims(self) -> dict[str, dict[str, Any]]:
        """The once-per-version claims by sort key (`UPGRADE#<v>`, `ADDONS#<v>`)."""
        partition = item_key(keys.version_claim_pk(UID), "")
        return {k.removeprefix(partition): v for k, v in self.dynamodb().items() if k.startswith(partition)}

    # ------------------------------------------------------------ instances

    def _new_instance(self, params: BootstrapParams) -> dict[str, Any]:
        self._counter += 1
        instance_id = f"i-{self._counter:017x}"
        index = params.replica_index
        ip = f"10.0.{index if index is not None else 9}.{10 + self._counter}"
        root = self.base / "instances" / instance_id / "root"
        root.mkdir(parents=True)
        with calico_pinned_to_the_fixture():
            # Every file of the instance, as its loader leaves them (tests/bootstrap/test_loader.py
            # runs the loader itself).
            entries = write_files(files(params))
        for entry in entries:
            path = root / entry["path"].lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(entry["content"])
            path.chmod(int(entry["permissions"], 8))
        instance = {
            "id": instance_id,
            "root": str(root),
            "ip": ip,
            "hostname": f"ip-{ip.replace('.', '-')}.ec2.internal",
            "zone": "us-east-1a",
            "alive": True,
            "version": params.version,
            "role": params.role,
            "replica": index,
            "replica_name": params.replica_name if params.is_control_plane else None,
        }
        if params.is_control_plane:
            device = root / "dev" / "nvme1n1"
            device.parent.mkdir(parents=True)
            device.write_text("")
            link = (
                root
                / "dev"
                / "disk"
                / "by-id"
                / f"nvme-Amazon_Elastic_Block_Store_{params.etcd_volume_id.replace('-', '')}"
            )
            link.parent.mkdir(parents=True)
            link.symlink_to(device)
        self._update("instances.json", lambda i: i.__setitem__(instance_id, instance))
        return instance

    def _environment(self, instance: dict[str, Any]) -> dict[str, str]:
        return {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": str(self.base),
            "LANG": "C.UTF-8",
            "KUBESTEP_ROOT": instance["root"],
            "STANDIN_SHARED": str(self.shared),
            "STANDIN_INSTANCE": instance["id"],
            "STUB_LOG": str(self.base / "instances" / instance["id"] / "stub-calls.jsonl"),
            "STUB_SCENARIO": str(self.shared / "no-failures"),
            "STUB_SLEEP_SCALE": "0.05",
            "KUBESTEP_HEALTH_ATTEMPTS": "20",
            "KUBESTEP_WAIT_ATTEMPTS": "40",
            "KUBESTEP_PROMOTE_ATTEMPTS": "60",
            "KUBESTEP_NODE_JOIN_ATTEMPTS": "2",
        }

    def start(self, params: BootstrapParams, command: str = "") -> dict[str, Any]:
        """Launch an instance for `params`; its boot runs in the background (see wait)."""
        instance = self._new_instance(params)
        self._running[instance["id"]] = self._spawn(instance, command)
        return instance

    def _spawn(self, instance: dict[str, Any], command: str) -> subprocess.Popen:
        script = Path(instance["root"]) / "usr/local/sbin/kubestep-bootstrap"
        log = self.base / "instances" / instance["id"] / f"bootstrap{('-' + command) if command else ''}.log"
        with log.open("a") as handle:
            return subprocess.Popen(
                ["bash", str(script), *([command] if command else [])],
                env=self._environment(instance),
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def wait(self, instance: dict[str, Any], timeout: float = 240) -> Boot:
        process = self._running.pop(instance["id"])
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            returncode = -9
        log = sorted((self.base / "instances" / instance["id"]).glob("bootstrap*.log"))[-1]
        return Boot(instance["id"], returncode, log.read_text())

    def boot(self, params: BootstrapParams) -> tuple[dict[str, Any], Boot]:
        instance = self.start(params)
        return instance, self.wait(instance)

    def run(
        self, instance: dict[str, Any], script: str, *args: str, stdin: str | None = None
    ) -> subprocess.CompletedProcess:
        """Another of the instance's scripts (a timer's), to completion."""
        path = Path(instance["root"]) / script.lstrip("/")
        return subprocess.run(
            ["bash", str(path), *args],
            env=self._environment(instance),
            capture_output=True,
            text=True,
            timeout=180,
            input=stdin,
        )

    def command(self, instance: dict[str, Any], *args: str) -> subprocess.CompletedProcess:
        """One command as the instance runs it (its stand-ins first on PATH)."""
        return subprocess.run(list(args), env=self._environment(instance), capture_output=True, text=True, timeout=60)

    def replica(self, index: int, version: str, **changes: Any) -> BootstrapParams:
        return control_plane(index, version=version, replica_count=self.replica_count, **changes)

    def node(self, version: str, **changes: Any) -> BootstrapParams:
        return node(version=version, **changes)

    def terminate(self, instance: dict[str, Any]) -> None:
        """The instance is gone: its processes stop, its volume is released."""
        pid_file = self.base / "instances" / instance["id"] / "etcd.json"
        if pid_file.exists():
            kill(json.loads(pid_file.read_text())["pid"])
            pid_file.unlink()

        def dead(instances: dict[str, Any]) -> None:
            instances[instance["id"]]["alive"] = False

        def release(volumes: dict[str, Any]) -> None:
            for volume in volumes.values():
                if volume["attachedTo"] == instance["id"]:
                    volume.update(state="available", attachedTo="None")

        self._update("instances.json", dead)
        self._update("volumes.json", release)

    def lose_volume(self, index: int) -> None:
        """The replica's etcd volume is replaced by an empty one (no filesystem, no data)."""
        volume_id = control_plane(index).etcd_volume_id

        def wipe(volumes: dict[str, Any]) -> None:
            volume = volumes[volume_id]
            for child in Path(volume["dir"]).iterdir():
                subprocess.run(["rm", "-rf", str(child)], check=True)
            volume["filesystem"] = None

        self._update("volumes.json", wipe)

    # ------------------------------------------------------------ looking at the cluster

    def live_addresses(self) -> list[str]:
        replicas = self._read("cluster.json")["replicas"]
        alive = {i["replica_name"] for i in self.instances().values() if i["alive"] and i.get("replica_name")}
        return [f"http://{replicas[name]['address']}:2379" for name in self.names if name in alive]

    def etcdctl(self, *args: str, endpoints: list[str] | None = None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCDCTL_")} | {"ETCDCTL_API": "3"}
        return subprocess.run(
            [
                "etcdctl",
                f"--endpoints={','.join(endpoints or self.live_addresses())}",
                "--dial-timeout=2s",
                "--command-timeout=5s",
                *args,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )

    def members(self) -> list[dict[str, Any]]:
        result = self.etcdctl("member", "list", "-w", "json")
        assert result.returncode == 0, result.stderr
        replicas = self._read("cluster.json")["replicas"]
        back = {f"http://{r['address']}:2380": f"https://{name}:2380" for name, r in replicas.items()}
        return [m | {"peerURLs": [back.get(u, u) for u in m["peerURLs"]]} for m in json.loads(result.stdout)["members"]]

    def get(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        result = self.etcdctl("get", f"/registry/{resource}/{namespace or '_'}/{name}", "--print-value-only")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout) if result.stdout.strip() else None

    def list(self, resource: str) -> list[dict[str, Any]]:
        result = self.etcdctl("get", f"/registry/{resource}/", "--prefix", "-w", "json")
        assert result.returncode == 0, result.stderr
        return [json.loads(base64.b64decode(kv["value"])) for kv in json.loads(result.stdout).get("kvs", [])]

    def close(self) -> None:
        for process in self._running.values():
            process.kill()
            process.wait()
        for pid_file in (self.base / "instances").glob("*/etcd.json"):
            kill(json.loads(pid_file.read_text())["pid"])


def kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            time.sleep(0.1)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def calico_pinned_to_the_fixture():
    """The stand-in download serves a small manifest in the pinned one's shape; pin its checksum."""
    digest = hashlib.sha256(CALICO_MANIFEST.read_bytes()).hexdigest()
    pinned = components.calico_manifest
    components.calico_manifest = lambda minor: (pinned(minor)[0], digest)
    try:
        yield
    finally:
        components.calico_manifest = pinned


def control_plane_secret() -> dict[str, str]:
    """The control-plane secret as the PKI step makes it (kubestep.pki): real CA certificates and
    keys of the type new clusters get, so the report reads real certificates."""
    return pki.generate().material
