"""`kubestep diagnose snapshot`: what support needs about one cluster, in one tarball, and a
summary of what looks wrong.

Everything comes through the management API, so it works against a deployed service with the
same credentials as the CLI: the cluster and node-pool records, the etcd configuration and
members (no secret: the API never serves one), the events, the last operations and their
progress step by step. With direct AWS access (the user's credentials; the local runtime's
emulator) it adds the raw Step Functions histories of those operations and an inventory of the
cluster's AWS resources found by their `gke:cluster-uid` tag; without it the snapshot says so.

Every value is scrubbed before it is written (`scrub`): PEM blocks (the public cluster CA
becomes its kubeadm hash), aws-iam-authenticator tokens, kubeadm bootstrap tokens, AWS access
key ids, secret access keys and session tokens, and any value under a key that names a secret."""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubestep import files
from kubestep.api.client import ApiClient, ApiError
from kubestep.execution_history import history

DEFAULT_OPERATIONS = 5
MAX_OPERATIONS = 50
FAILED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")
TROUBLED_PHASES = ("ERROR", "DEGRADED")
TRANSITIONAL_PHASES = ("PROVISIONING", "RECONCILING", "STOPPING")

REDACTED = "[redacted]"
# Values that are secret wherever they appear.
_SECRET_VALUES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"-----BEGIN [A-Z0-9 ]+-----.*?(-----END [A-Z0-9 ]+-----|\Z)", re.DOTALL), "[redacted PEM block]"),
    (re.compile(r"k8s-aws-v1\.[A-Za-z0-9_=-]+"), "[redacted aws-iam-authenticator token]"),
    # kubeadm bootstrap tokens: [a-z0-9]{6}.[a-z0-9]{16} (k8s.io/cluster-bootstrap/token/api).
    (re.compile(r"(?<![A-Za-z0-9.])[a-z0-9]{6}\.[a-z0-9]{16}(?![A-Za-z0-9])"), "[redacted bootstrap token]"),
    (re.compile(r"(?<![A-Z0-9])(AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"), "[redacted access key id]"),
)
# `"key": "value"`, `key: value` and `key=value` inside free text (a pasted JSON document, an
# environment dump): the value goes when the key names a secret (`_secret_key`).
_KEYED_VALUE = re.compile(
    r"""(?P<quote>["']?)(?P<key>[A-Za-z][A-Za-z0-9._-]{1,60})(?P=quote)(?P<sep>\s*[:=]\s*)"""
    r"""(?:"(?P<dq>(?:[^"\\]|\\.)*)"|'(?P<sq>[^']*)'|(?P<bare>[^\s"',}\]]+))"""
)
# Keys whose value is secret (compared lower-case, without punctuation).
_SECRET_KEYS = frozenset(
    {
        "token",
        "bootstraptoken",
        "cakey",
        "etcdcakey",
        "frontproxycakey",
        "sakey",
        "encryptionkey",
        "certificatekey",
        "clientsecret",
        "secretstring",
        "secretbinary",
        "awssecretaccesskey",
        "secretaccesskey",
        "awssessiontoken",
        "sessiontoken",
    }
)
_SECRET_KEY_ENDINGS = ("password", "privatekey", "secretaccesskey", "sessiontoken")


def _secret_key(key: str) -> bool:
    normalized = re.sub(r"[^a-z0-9]", "", key.lower())
    return normalized in _SECRET_KEYS or normalized.endswith(_SECRET_KEY_ENDINGS)


@dataclass
class Scrubber:
    """Replaces secret material; counts what it replaced (the summary reports the count)."""

    redactions: int = 0

    def text(self, value: str) -> str:
        for pattern, replacement in _SECRET_VALUES:
            value, count = pattern.subn(replacement, value)
            self.redactions += count
        return _KEYED_VALUE.sub(self._keyed, value)

    def _keyed(self, match: re.Match[str]) -> str:
        if not _secret_key(match.group("key")):
            return match.group(0)
        self.redactions += 1
        quote = '"' if match.group("dq") is not None else "'" if match.group("sq") is not None else ""
        key = f"{match.group('quote')}{match.group('key')}{match.group('quote')}"
        return f"{key}{match.group('sep')}{quote}{REDACTED}{quote}"

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if _secret_key(str(key)) and item not in (None, ""):
                    self.redactions += 1
                    out[key] = REDACTED
                else:
                    out[key] = self(item)
            return out
        if isinstance(value, list | tuple):
            return [self(item) for item in value]
        return value


def scrub(value: Any) -> Any:
    return Scrubber()(value)


@dataclass
class Finding:
    severity: str  # "error" | "warning"
    title: str
    detail: str = ""
    source: str = ""  # the file of the snapshot that shows it

    def as_dict(self) -> dict[str, str]:
        return {"severity": self.severity, "title": self.title, "detail": self.detail, "source": self.source}


@dataclass
class Snapshot:
    cluster: str
    generated_at: str
    files: dict[str, Any] = field(default_factory=dict)  # path in the tarball -> JSON value
    problems: list[str] = field(default_factory=list)  # what could not be collected, and why
    findings: list[Finding] = field(default_factory=list)
    redactions: int = 0

    @property
    def directory(self) -> str:
        stamp = self.generated_at.replace("-", "").replace(":", "").split(".")[0]
        return f"kubestep-diagnose-{self.cluster}-{stamp}"


AwsClients = Callable[[str], Any]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: _iso(v) if isinstance(v, datetime) else str(v)))


def collect(
    client: ApiClient,
    name: str,
    *,
    operations: int = DEFAULT_OPERATIONS,
    aws: AwsClients | None = None,
    now: datetime | None = None,
) -> Snapshot:
    """Gather the snapshot of cluster `name` (also of a deleted one: its events and operations
    outlive it). A part that cannot be read is named in `problems`; the rest is still kept."""
    snapshot = Snapshot(cluster=name, generated_at=_iso(now or datetime.now(UTC)))
    files = snapshot.files

    def attempt(what: str, read: Callable[[], Any]) -> Any:
        try:
            return read()
        except ApiError as exc:
            snapshot.problems.append(f"{what}: {exc.one_line()}")
        except Exception as exc:  # boto3 errors, missing permissions, an unreachable endpoint
            snapshot.problems.append(f"{what}: {type(exc).__name__}: {' '.join(str(exc).split())[:500]}")
        return None

    files["version.json"] = attempt("service version", client.version)
    cluster = attempt("cluster record", lambda: _cluster_or_none(client, name))
    if cluster is None and not any(p.startswith("cluster record") for p in snapshot.problems):
        snapshot.problems.append(
            f"cluster record: {name} does not exist (deleted?); its events and operations are kept"
        )
    if cluster is not None:
        files["cluster.json"] = _public_cluster(cluster)
        status = cluster.get("status") or {}
        files["nodepools.json"] = status.get("nodePools") or []
        control_plane = status.get("controlPlane") or {}
        files["etcd.json"] = {
            "configuration": control_plane.get("etcd"),
            "members": control_plane.get("replicas") or [],
        }
    files["events.json"] = attempt("events", lambda: client.events(name)) or []
    listed = attempt(
        "operations",
        lambda: client.request("GET", "operations", query={"cluster": name, "limit": operations})["items"],
    )
    recent = (listed or [])[:operations]
    files["operations.json"] = recent
    for operation in recent:
        op_id = operation["id"]
        files[f"operations/{op_id}/steps.json"] = attempt(f"steps of {op_id}", lambda i=op_id: _all_steps(client, i))
        arn = operation.get("executionArn")
        if aws is not None and arn:
            files[f"operations/{op_id}/history.json"] = attempt(
                f"execution history of {op_id}", lambda a=arn: _jsonable(history(aws("stepfunctions"), a))
            )
    uid = (cluster or {}).get("metadata", {}).get("uid")
    if aws is None:
        snapshot.problems.append("AWS inventory and raw execution histories: skipped (no direct AWS access)")
    elif uid:
        # Here, not at the top: `kubestep diagnose -h` (and `kubestep -h`) import this module.
        from kubestep import inventory

        files["inventory.json"] = attempt(
            "AWS inventory", lambda: {"uid": uid, "resources": inventory.cluster_resources(uid, aws)}
        )
    scrubber = Scrubber()
    snapshot.files = {path: scrubber(value) for path, value in files.items() if value is not None}
    snapshot.problems = [scrubber.text(problem) for problem in snapshot.problems]
    snapshot.findings = [
        Finding(f.severity, scrubber.text(f.title), scrubber.text(f.detail), f.source) for f in findings(snapshot.files)
    ]
    snapshot.redactions = scrubber.redactions
    return snapshot


def _cluster_or_none(client: ApiClient, name: str) -> dict[str, Any] | None:
    try:
        return client.get_cluster(name)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


def _all_steps(client: ApiClient, operation_id: str) -> dict[str, Any]:
    answer = client.operation_steps(operation_id)
    return {"operationId": operation_id, "status": answer["status"], "items": answer["items"]}


def _public_cluster(cluster: dict[str, Any]) -> dict[str, Any]:
    """The cluster as the API shows it, with the CA certificate replaced by its hash: the CA is
    public, but a snapshot carries no PEM block at all (simpler to check, and to trust)."""
    view = json.loads(json.dumps(cluster))
    status = view.get("status") or {}
    pem = status.pop("clusterCaCertificate", None)
    if pem:
        from kubestep import pki

        try:
            status["clusterCaCertHash"] = pki.ca_cert_hash(pem)
        except ValueError:
            status["clusterCaCertHash"] = "unreadable certificate"
    return view


# ------------------------------------------------------------------ what looks wrong


def findings(files: dict[str, Any]) -> list[Finding]:
    """Errors first, then warnings: the cluster's phase, failed operations and their failing
    step, unhealthy replicas and node pools, Warning events, drift."""
    found: list[Finding] = []
    cluster = files.get("cluster.json")
    if cluster:
        found += _cluster_findings(cluster)
    for operation in files.get("operations.json") or []:
        if operation.get("status") in FAILED_STATUSES:
            steps = files.get(f"operations/{operation['id']}/steps.json") or {}
            found.append(_failed_operation(operation, steps.get("items") or []))
    for event in files.get("events.json") or []:
        if event.get("type") == "Warning":
            count = event.get("count") or 1
            found.append(
                Finding(
                    "warning",
                    f"Warning event {event.get('reason')} on {event.get('involvedObject')}"
                    + (f" ({count} times)" if count > 1 else ""),
                    f"{event.get('message') or ''} (last {event.get('lastTimestamp')}"
                    + (f", operation {event['operationId']})" if event.get("operationId") else ")"),
                    "events.json",
                )
            )
    if cluster and isinstance(files.get("inventory.json"), dict):
        found += _drift_findings(cluster, files["inventory.json"].get("resources") or {})
    return sorted(found, key=lambda f: 0 if f.severity == "error" else 1)


def _cluster_findings(cluster: dict[str, Any]) -> list[Finding]:
    found: list[Finding] = []
    status = cluster.get("status") or {}
    phase = status.get("phase")
    last_error = status.get("lastError") or {}
    if phase in TROUBLED_PHASES:
        detail = ": ".join(str(v) for v in (last_error.get("error"), last_error.get("message")) if v)
        found.append(Finding("error", f"cluster phase is {phase}", detail or "no last error recorded", "cluster.json"))
    elif phase in TRANSITIONAL_PHASES and not status.get("currentOperation"):
        found.append(Finding("warning", f"cluster is {phase} with no operation running", "", "cluster.json"))
    # Once created (RUNNING, or DEGRADED by a roll), every replica and node pool should be up.
    running = phase in ("RUNNING", "DEGRADED")
    for replica in (status.get("controlPlane") or {}).get("replicas") or []:
        where = f"replica {replica.get('index')} ({replica.get('zone')}, {replica.get('autoScalingGroup')})"
        report = replica.get("bootstrap")
        if report and report != "ok":
            found.append(Finding("error", f"{where} is unhealthy", f"its bootstrap report says {report}", "etcd.json"))
        elif running and not report:
            found.append(Finding("warning", f"{where} has no bootstrap report", "", "etcd.json"))
        if running and not replica.get("instanceId"):
            found.append(Finding("warning", f"{where} has no instance", "", "etcd.json"))
    for pool in status.get("nodePools") or []:
        name = pool.get("metadata", {}).get("name")
        pool_phase = (pool.get("status") or {}).get("phase")
        if pool_phase in TROUBLED_PHASES:
            found.append(Finding("error", f"node pool {name} is {pool_phase}", "", "nodepools.json"))
        minimum = (pool.get("spec") or {}).get("minNodeCount") or 0
        ready = (pool.get("status") or {}).get("readyNodes") or 0
        if running and ready < minimum:
            found.append(
                Finding(
                    "warning",
                    f"node pool {name} has {ready} ready nodes, fewer than its minimum {minimum}",
                    "",
                    "nodepools.json",
                )
            )
    for logical, what in (status.get("drift") or {}).items():
        found.append(Finding("warning", f"drift: {logical}", str(what), "cluster.json"))
    return found


def _failed_operation(operation: dict[str, Any], steps: list[dict[str, Any]]) -> Finding:
    failing = next((s for s in steps if s.get("type") == "error" and s.get("step")), None)
    where = f" at step {failing['step']}" if failing else ""
    if failing and failing.get("item"):
        where += f" ({failing.get('map')}, {failing['item']})"
    detail = (
        failing["message"] if failing else ": ".join(v for v in (operation.get("error"), operation.get("cause")) if v)
    )
    title = f"operation {operation['id']} ({operation.get('kind')}) {operation.get('status')}{where}"
    return Finding("error", title, detail or "", f"operations/{operation['id']}/steps.json")


def _drift_findings(cluster: dict[str, Any], resources: dict[str, list[dict[str, Any]]]) -> list[Finding]:
    """Resources the records name that the tag inventory does not find (deleted by hand, or
    their tags removed)."""
    names: set[str] = set()
    for kind in resources.values():
        for resource in kind:
            names.update(str(resource.get(key)) for key in ("id", "name", "arn") if resource.get(key))
    status = cluster.get("status") or {}
    expected: list[tuple[str, str, str]] = []  # (what, recorded id, the id or name the inventory lists)
    for logical, recorded in (status.get("resources") or {}).items():
        listed = _inventory_name(recorded)
        if listed:
            expected.append((f"resource {logical}", recorded, listed))
    for replica in (status.get("controlPlane") or {}).get("replicas") or []:
        for key in ("autoScalingGroup", "etcdVolumeId", "instanceId", "launchTemplateId"):
            if replica.get(key):
                expected.append((f"replica {replica.get('index')} {key}", replica[key], replica[key]))
    for pool in status.get("nodePools") or []:
        for key in ("autoScalingGroup", "launchTemplateId"):
            value = (pool.get("status") or {}).get(key)
            if value:
                expected.append((f"node pool {pool['metadata']['name']} {key}", value, value))
    return [
        Finding("warning", f"drift: {what} {recorded} is recorded but not found by its tags", "", "inventory.json")
        for what, recorded, listed in expected
        if listed not in names
    ]


def _inventory_name(recorded: str) -> str | None:
    """How `kubestep.inventory` lists a recorded id: security groups, listeners, instance roles and
    profiles by id or ARN; load balancers and target groups by name (from their ARN); secrets by
    name (the ARN adds a random suffix); the termination queue and rule by name. None for what it
    does not know."""
    if recorded.startswith("sg-") or re.match(r"arn:[^:]+:(iam::|elasticloadbalancing:.*:listener/)", recorded):
        return recorded
    match = re.match(r"arn:[^:]+:(sqs:[^:]*:[^:]*:|events:[^:]*:[^:]*:rule/)([^/:]+)$", recorded)
    if match:
        return match.group(2)
    match = re.match(r"arn:[^:]+:elasticloadbalancing:[^:]*:[^:]*:(loadbalancer/[^/]+|targetgroup)/([^/]+)/", recorded)
    if match:
        return match.group(2)
    match = re.match(r"arn:[^:]+:secretsmanager:[^:]*:[^:]*:secret:(.+)-[A-Za-z0-9]{6}$", recorded)
    if match:
        return match.group(1)
    return None


# ------------------------------------------------------------------ the tarball


def summary_markdown(snapshot: Snapshot) -> str:
    cluster = snapshot.files.get("cluster.json") or {}
    status = cluster.get("status") or {}
    lines = [
        f"# kubestep diagnose snapshot: {snapshot.cluster}",
        "",
        f"- Generated: {snapshot.generated_at}",
        f"- Phase: {status.get('phase', 'unknown (no cluster record)')}",
        f"- Version: {status.get('version', '-')}",
        f"- Endpoint: {status.get('endpoint') or '-'}",
        f"- Secret material redacted: {snapshot.redactions} value(s)",
        "",
        "## What looks wrong",
        "",
    ]
    if snapshot.findings:
        lines += [
            f"- **{f.severity.upper()}** {f.title}" + (f": {f.detail}" if f.detail else "") + f" (`{f.source}`)"
            for f in snapshot.findings
        ]
    else:
        lines.append("Nothing: the cluster, its operations and its events look healthy.")
    if snapshot.problems:
        lines += ["", "## Not collected", ""] + [f"- {problem}" for problem in snapshot.problems]
    lines += ["", "## Files", ""] + [f"- `{path}`" for path in sorted(snapshot.files)]
    return "\n".join(lines) + "\n"


def summary_json(snapshot: Snapshot) -> dict[str, Any]:
    status = (snapshot.files.get("cluster.json") or {}).get("status") or {}
    return {
        "cluster": snapshot.cluster,
        "generatedAt": snapshot.generated_at,
        "phase": status.get("phase"),
        "findings": [f.as_dict() for f in snapshot.findings],
        "notCollected": snapshot.problems,
        "redactions": snapshot.redactions,
        "files": sorted([*snapshot.files, "summary.md", "summary.json"]),
    }


def write_tarball(snapshot: Snapshot, path: Path) -> list[str]:
    """Write the snapshot as a gzipped tarball (mode 0600, created: never overwrites a file);
    return the paths inside it."""
    members: dict[str, bytes] = {
        rel: (json.dumps(value, indent=2, sort_keys=False) + "\n").encode() for rel, value in snapshot.files.items()
    }
    members["summary.json"] = (json.dumps(summary_json(snapshot), indent=2) + "\n").encode()
    members["summary.md"] = summary_markdown(snapshot).encode()
    buffer = io.BytesIO()
    stamp = time.time()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for rel in sorted(members):
            data = members[rel]
            info = tarfile.TarInfo(f"{snapshot.directory}/{rel}")
            info.size, info.mode, info.mtime = len(data), 0o600, stamp
            tar.addfile(info, io.BytesIO(data))
    # Exclusive: an existing file, symlink or device is never overwritten (files.UnsafeTarget).
    files.create_file(path, buffer.getvalue(), what="--output")
    return sorted(members)
