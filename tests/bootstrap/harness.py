"""A sandbox that runs the real rendered bootstrap script with bash.

cloud-init's and the loader's parts are played by writing every file of the instance (the
user-data's and the bootstrap bundle's) under a temporary root (the script's KUBESTEP_ROOT); with
`via_loader`, only the user-data's files are written and the bundle is an object the `aws`
stand-in serves, so the real loader fetches, checks and unpacks it. Every system command the script calls is
a recording stub (tests/bootstrap/stub.py) first on PATH. Tests then read what ran (in order,
with the kubeadm configuration files as they were when kubeadm ran) and what was written."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jmespath

from kubestep.bootstrap import BootstrapParams, BundleRef, components, render_bundle
from kubestep.bootstrap.cloud_init import files, user_data_files, write_files

STUB_SOURCE = Path(__file__).with_name("stub.py")
FAST_STUB_SOURCE = Path(__file__).with_name("stub.sh")
# Commands that answer questions (Python) and commands that only succeed or write a file (bash:
# a Python start per call would make each run several seconds).
STUBBED = ["curl", "aws", "kubeadm", "kubectl", "kubelet", "etcdctl", "blkid", "mkfs.ext4"]
FAST_STUBBED = [
    "apt-get",
    "apt-mark",
    "snap",
    "gpg",
    "systemctl",
    "mount",
    "mountpoint",
    "sysctl",
    "modprobe",
    "openssl",
    "chown",
    "sleep",
    "crictl",
]
FIXTURES = Path(__file__).with_name("fixtures")
BUNDLE_BUCKET = "svc-kubestep-state-0123456789ab"


@dataclass
class Run:
    returncode: int
    stderr: str
    calls: list[dict[str, Any]]

    def commands(self, name: str) -> list[list[str]]:
        return [c["args"] for c in self.calls if c["cmd"] == name]

    def index(self, predicate) -> int:
        return next(i for i, c in enumerate(self.calls) if predicate(c))

    def aws(self, service: str, operation: str) -> list[list[str]]:
        return [a for a in self.commands("aws") if a[:2] == [service, operation]]

    def kubeadm(self, *words: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["cmd"] == "kubeadm" and c["args"][: len(words)] == list(words)]

    def applied(self) -> list[str]:
        """The files `kubectl apply -f` got, in order."""
        return [c["file"] for c in self.calls if c["cmd"] == "kubectl" and "apply" in c["args"]]


@dataclass
class Sandbox:
    base: Path
    params: BootstrapParams
    scenario: dict[str, Any] = field(default_factory=dict)
    aws_preinstalled: bool = True
    via_loader: bool = False
    bundle_bucket: str = BUNDLE_BUCKET

    def __post_init__(self) -> None:
        self.root = self.base / "root"
        self.bin = self.base / "bin"
        self.log = self.base / "calls.jsonl"
        self.state = self.base / "state.json"
        for directory in (self.root, self.bin):
            directory.mkdir(parents=True, exist_ok=True)
        program = self.base / "stub-program"
        program.write_text(f"#!{sys.executable} -S\n" + STUB_SOURCE.read_text())
        program.chmod(program.stat().st_mode | stat.S_IEXEC)
        fast = self.base / "stub-fast"
        fast.write_text(FAST_STUB_SOURCE.read_text())
        fast.chmod(fast.stat().st_mode | stat.S_IEXEC)
        for name in STUBBED + FAST_STUBBED:
            if name == "aws" and not self.aws_preinstalled:
                continue
            (self.bin / name).symlink_to(program if name in STUBBED else fast)
        self.program = program
        self.state.write_text(json.dumps(self.scenario.pop("state", {})))
        self.scenario.setdefault("version", self.params.version)
        self.scenario.setdefault("calico_url", components.calico_manifest(self.params.minor)[0])
        self.scenario.setdefault("calico_manifest", str(FIXTURES / "calico-vxlan-standin.yaml"))
        self.scenario.setdefault(
            "metadata",
            {
                "instance-id": "i-0aaaaaaaaaaaaaaa1",
                "local-ipv4": "10.0.1.10",
                "local-hostname": "ip-10-0-1-10.ec2.internal",
                "placement/availability-zone": "us-east-1a",
            },
        )
        self.bundle = render_bundle(self.params)
        self.bundle_ref = BundleRef(self.bundle_bucket, self.bundle.key(self.params.uid), self.bundle.sha256)
        if self.via_loader and "objects" not in self.scenario:
            served = self.base / "bundle.tar.gz"
            served.write_bytes(self.bundle.data)
            self.scenario["objects"] = {f"{self.bundle_bucket}/{self.bundle_ref.key}": str(served)}
        (self.base / "scenario.json").write_text(json.dumps(self.scenario))
        # What the bash stubs read: one `fail=REGEX` line per pattern, `mounted=true`.
        shell = [f"fail={pattern}" for pattern in self.scenario.get("fail", [])]
        shell += ["mounted=true"] if self.scenario.get("mounted") else []
        (self.base / "scenario.json.sh").write_text("".join(line + "\n" for line in shell))
        installed = user_data_files if self.via_loader else files
        self.cloud_config = {"write_files": write_files(installed(self.params, self.bundle_ref))}
        self.install_files()

    def install_files(self) -> None:
        """What cloud-init's write_files does (and, without `via_loader`, the loader)."""
        for entry in self.cloud_config["write_files"]:
            path = self.file(entry["path"])
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(entry["content"])
            path.chmod(int(entry["permissions"], 8))

    def file(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def read(self, path: str) -> str:
        return self.file(path).read_text()

    def run(self, script: str = "/usr/local/sbin/kubestep-bootstrap", *args: str, **env: str) -> Run:
        start = len(self.log.read_text().splitlines()) if self.log.exists() else 0
        environment = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": str(self.base),
            "KUBESTEP_ROOT": str(self.root),
            "KUBESTEP_HEALTH_ATTEMPTS": "3",
            "KUBESTEP_WAIT_ATTEMPTS": "3",
            "STUB_LOG": str(self.log),
            "STUB_STATE": str(self.state),
            "STUB_SCENARIO": str(self.base / "scenario.json"),
            "STUB_PROGRAM": str(self.program),
            "STUB_TESTS_DIR": str(STUB_SOURCE.parent),
            "STUB_JMESPATH_DIR": str(Path(jmespath.__file__).parent.parent),
            **env,
        }
        result = subprocess.run(
            ["bash", str(self.file(script)), *args], env=environment, capture_output=True, text=True, timeout=120
        )
        lines = self.log.read_text().splitlines()[start:] if self.log.exists() else []
        return Run(result.returncode, result.stderr, [json.loads(line) for line in lines])

    def dynamodb_items(self) -> dict[str, Any]:
        return json.loads(self.state.read_text()).get("items", {})

    def etcd_members(self) -> list[dict[str, str]]:
        return json.loads(self.state.read_text()).get("members", [])
