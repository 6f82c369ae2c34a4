"""A client for the management API: SigV4-signed for a deployed stack (API Gateway with IAM
auth, service `execute-api`), plain HTTP for the embedded local runtime.

`base_url` is the stack's `ApiUrl` output (the stage URL, `https://<id>.execute-api.<region>.
amazonaws.com/v1/`) or the local runtime's API URL; routes live below it under `v1/`.
Only the standard library and botocore: the CLI needs no extra HTTP dependency."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

API_PREFIX = "v1"
# Answers worth retrying: throttling and API Gateway / Lambda hiccups (and a first attempt with
# the same Idempotency-Key still in progress). POSTs and DELETEs are only retried with an
# Idempotency-Key, which makes the retry return the first answer.
RETRY_STATUSES = (429, 502, 503, 504)
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


# An operation's status while its execution still runs (rolling back or cancelling included).
ACTIVE_STATUSES = ("RUNNING", "CANCELLING", "ROLLING_BACK")


class ApiError(Exception):
    """A non-2xx answer: `code` and `details` come from the API's error body when it has one."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, str]] | None = None,
        operation_id: str | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.operation_id = operation_id
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The message once: the API's messages usually already name each detail."""
        text = self.message.replace("\n", " ").strip()
        details = [f"{d.get('field')}: {d.get('rule')}" for d in self.details]
        missing = [detail for detail in details if detail not in text]
        if missing:
            text = f"{text}: {'; '.join(missing)}" if text else "; ".join(missing)
        return f"{text} ({self.code}, HTTP {self.status})" if self.status else f"{text} ({self.code})"


def _boto3_session(profile: str | None) -> Any:
    # boto3 (and botocore's signer below) only when requests are signed: the local runtime's
    # plain HTTP, and every CLI command that never reaches the API, start without them.
    import boto3

    return boto3.Session(profile_name=profile)


class ApiClient:
    def __init__(
        self,
        base_url: str,
        *,
        region: str | None = None,
        profile: str | None = None,
        sign: bool = True,
        timeout: float = 30.0,
        retries: int = 3,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.sign = sign
        self.timeout = timeout
        self.retries = retries
        self._session = _boto3_session(profile) if sign else None
        # The API's own region first: a signature scoped to another region is refused.
        self.region = region or _region_of(base_url) or (self._session.region_name if self._session else None)
        if sign and not self.region:
            raise ValueError(f"no AWS region to sign requests to {base_url} with: pass region= or set AWS_REGION")
        # urllib.request here: every CLI command imports ApiError, few make a request.
        from urllib.request import ProxyHandler, build_opener

        # The local runtime listens on loopback: never send its requests through an HTTP proxy.
        handlers = [] if sign else [ProxyHandler({})]
        self._opener = build_opener(*handlers)

    # ------------------------------------------------------------------ transport
    def url(self, path: str, query: dict[str, Any] | None = None) -> str:
        url = f"{self.base_url}/{API_PREFIX}/{path.lstrip('/')}"
        params = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        return f"{url}?{urlencode(params, quote_via=quote)}" if params else url

    def _headers(self, method: str, url: str, data: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        if not self.sign:
            return headers
        assert self._session is not None
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = self._session.get_credentials()
        if credentials is None:
            raise ApiError(0, "NoCredentials", "no AWS credentials found to sign the request (configure a profile)")
        request = AWSRequest(method=method, url=url, data=data or b"", headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(request)
        return dict(request.headers.items())

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        from urllib.request import Request

        url = self.url(path, query)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        safe_to_retry = method == "GET" or idempotency_key is not None
        attempts = self.retries + 1 if safe_to_retry else 1
        for attempt in range(attempts):
            # Signatures carry a timestamp: sign every attempt afresh.
            signed = self._headers(method, url, data, headers)
            try:
                with self._opener.open(
                    Request(url, data=data, headers=signed, method=method),
                    timeout=self.timeout,
                ) as response:
                    return _json(response.read())
            except urllib.error.HTTPError as exc:
                error = _error(exc.code, exc.read())
                retryable = exc.code in RETRY_STATUSES or error.code == "IdempotencyInProgress"
                if retryable and attempt + 1 < attempts:
                    time.sleep(min(2**attempt * 0.5, 5))
                    continue
                raise error from None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt + 1 < attempts:
                    time.sleep(min(2**attempt * 0.5, 5))
                    continue
                reason = getattr(exc, "reason", exc)
                raise ApiError(0, "Unreachable", f"cannot reach {self.base_url}: {reason}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ clusters
    def create_cluster(
        self, body: dict[str, Any], idempotency_key: str | None = None, *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Start CreateCluster; `body` is `{cluster, nodePools, rollbackOnFailure}`. A key is
        generated when none is given, so a retried request never starts a second execution.
        `dry_run`: the server checks everything and answers what it would create."""
        if dry_run:
            return self.request("POST", "clusters", body=body, query={"dryRun": True})
        return self.request("POST", "clusters", body=body, idempotency_key=idempotency_key or _new_key())

    def list_clusters(self, page_size: int = 100) -> list[dict[str, Any]]:
        return list(self.iter_clusters(page_size))

    def iter_clusters(self, page_size: int = 100) -> Iterator[dict[str, Any]]:
        token: str | None = None
        while True:
            page = self.request("GET", "clusters", query={"limit": page_size, "nextToken": token})
            yield from page["items"]
            token = page.get("nextToken")
            if not token:
                return

    def get_cluster(self, name: str) -> dict[str, Any]:
        return self.request("GET", f"clusters/{_segment(name)}")

    def delete_cluster(
        self,
        name: str,
        keep_etcd_volumes: bool = False,
        idempotency_key: str | None = None,
        *,
        dry_run: bool = False,
        delete_backups: bool = False,
    ) -> dict[str, Any]:
        query: dict[str, Any] = {"keepEtcdVolumes": keep_etcd_volumes}
        if delete_backups:
            query["deleteBackups"] = True
        if dry_run:
            return self.request("DELETE", f"clusters/{_segment(name)}", query={**query, "dryRun": True})
        return self.request(
            "DELETE", f"clusters/{_segment(name)}", query=query, idempotency_key=idempotency_key or _new_key()
        )

    def upgrade_cluster(
        self,
        name: str,
        version: str,
        *,
        node_pools: str | list[str] | None = None,
        at: str | None = None,
        idempotency_key: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """UpdateCluster to `version` (the operation), or with `at` a one-off schedule."""
        body: dict[str, Any] = {"version": version}
        if node_pools is not None:
            body["nodePools"] = node_pools
        if at is not None:
            body["at"] = at
        return self._mutate("POST", f"clusters/{_segment(name)}/upgrade", body, idempotency_key, dry_run)

    def update_cluster(
        self, name: str, changes: dict[str, Any], idempotency_key: str | None = None, *, dry_run: bool = False
    ) -> dict[str, Any]:
        """`changes`: `{controlPlane: {...}, upgradePolicy: {...}, nodePools: "all" | [names]}`."""
        return self._mutate("PATCH", f"clusters/{_segment(name)}", changes, idempotency_key, dry_run)

    def events(self, name: str) -> list[dict[str, Any]]:
        return self.request("GET", f"clusters/{_segment(name)}/events")["items"]

    def list_backups(self, name: str, *, all_incarnations: bool = False) -> list[dict[str, Any]]:
        return self.backup_listing(name, all_incarnations=all_incarnations)["items"]

    def backup_listing(self, name: str, *, all_incarnations: bool = False) -> dict[str, Any]:
        """The whole answer: the items, the policy, the deleted incarnations that left backups."""
        query = {"allIncarnations": True} if all_incarnations else None
        return self.request("GET", f"clusters/{_segment(name)}/backups", query=query)

    def delete_backups(
        self, name: str, uid: str, backup_id: str | None = None, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """DeleteBackups of the deleted incarnation `uid` of cluster `name`: one backup, or every one."""
        path = f"clusters/{_segment(name)}/backups/{_segment(uid)}" + (f"/{_segment(backup_id)}" if backup_id else "")
        return self.request("DELETE", path, idempotency_key=idempotency_key or _new_key())

    def backup_cluster(self, name: str) -> dict[str, Any]:
        return self.request("POST", f"clusters/{_segment(name)}/backups")

    def restore_cluster(
        self, name: str, backup_id: str, idempotency_key: str | None = None, *, dry_run: bool = False
    ) -> dict[str, Any]:
        """RestoreCluster from one of the cluster's backups; `dry_run`: what it would do."""
        path = f"clusters/{_segment(name)}/restore"
        return self._mutate("POST", path, {"backupId": backup_id}, idempotency_key, dry_run)

    def server_config(self) -> dict[str, Any]:
        return self.request("GET", "serverconfig")

    # ------------------------------------------------------------------ node pools
    def list_node_pools(self, cluster: str) -> list[dict[str, Any]]:
        return self.request("GET", f"clusters/{_segment(cluster)}/nodepools")["items"]

    def get_node_pool(self, cluster: str, pool: str) -> dict[str, Any]:
        return self.request("GET", f"clusters/{_segment(cluster)}/nodepools/{_segment(pool)}")

    def create_node_pool(
        self, cluster: str, pool: dict[str, Any], idempotency_key: str | None = None, *, dry_run: bool = False
    ) -> dict[str, Any]:
        return self._mutate("POST", f"clusters/{_segment(cluster)}/nodepools", pool, idempotency_key, dry_run)

    def update_node_pool(
        self,
        cluster: str,
        pool: str,
        changes: dict[str, Any],
        idempotency_key: str | None = None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        path = f"clusters/{_segment(cluster)}/nodepools/{_segment(pool)}"
        return self._mutate("PATCH", path, changes, idempotency_key, dry_run)

    def delete_node_pool(
        self, cluster: str, pool: str, idempotency_key: str | None = None, *, dry_run: bool = False
    ) -> dict[str, Any]:
        path = f"clusters/{_segment(cluster)}/nodepools/{_segment(pool)}"
        return self._mutate("DELETE", path, None, idempotency_key, dry_run)

    # ------------------------------------------------------------------ schedules
    def list_schedules(self, cluster: str | None = None) -> list[dict[str, Any]]:
        return self.request("GET", "schedules", query={"cluster": cluster})["items"]

    def get_schedule(self, schedule_id: str) -> dict[str, Any]:
        return self.request("GET", f"schedules/{_segment(schedule_id)}")

    def cancel_schedule(self, schedule_id: str) -> dict[str, Any]:
        return self.request("DELETE", f"schedules/{_segment(schedule_id)}")

    def _mutate(self, method: str, path: str, body: Any, idempotency_key: str | None, dry_run: bool) -> dict[str, Any]:
        # A generated key makes the request safe to retry: a retry never starts a second execution.
        if dry_run:
            return self.request(method, path, body=body, query={"dryRun": True})
        return self.request(method, path, body=body, idempotency_key=idempotency_key or _new_key())

    # ------------------------------------------------------------------ operations
    def repair_cluster(
        self, name: str, detect_only: bool = False, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        return self.request(
            "POST",
            f"clusters/{_segment(name)}:repair",
            query={"detectOnly": detect_only},
            idempotency_key=idempotency_key or _new_key(),
        )

    def sweep_orphans(
        self, dry_run: bool = True, grace_period_seconds: int = 3600, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        body = {"dryRun": dry_run, "gracePeriodSeconds": grace_period_seconds}
        return self.request("POST", "orphans:sweep", body=body, idempotency_key=idempotency_key or _new_key())

    def operation(self, operation_id: str) -> dict[str, Any]:
        return self.request("GET", f"operations/{_segment(operation_id)}")

    def list_operations(self, cluster: str | None = None, page_size: int = 100) -> list[dict[str, Any]]:
        """Every operation (newest first per cluster), or one cluster's."""
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            query = {"cluster": cluster, "limit": page_size, "nextToken": token}
            page = self.request("GET", "operations", query=query)
            found += page["items"]
            token = page.get("nextToken")
            if not token:
                return found

    def cancel_operation(self, operation_id: str) -> dict[str, Any]:
        """Stop the operation's execution; it then ends ABORTED (poll it)."""
        return self.request("POST", f"operations/{_segment(operation_id)}:cancel")

    def operation_steps(self, operation_id: str, after: int = 0) -> dict[str, Any]:
        """Progress items after the first `after`; pass the answer's `next` on the next call."""
        return self.request("GET", f"operations/{_segment(operation_id)}/steps", query={"after": after})

    def version(self) -> dict[str, Any]:
        return self.request("GET", "version")

    def wait_operation(self, operation_id: str, timeout: float = 3600.0, poll: float = 5.0) -> dict[str, Any]:
        """Poll until the operation is no longer RUNNING; its final state (check `status`)."""
        deadline = time.monotonic() + timeout
        while True:
            operation = self.operation(operation_id)
            if operation.get("status") not in ACTIVE_STATUSES:
                return operation
            if time.monotonic() + poll > deadline:
                raise TimeoutError(f"operation {operation_id} still RUNNING after {timeout:.0f} s")
            time.sleep(poll)

    def openapi(self) -> dict[str, Any]:
        return self.request("GET", "openapi.json")


def _new_key() -> str:
    return f"kubestep-{uuid.uuid4()}"


def _segment(value: str) -> str:
    return quote(value, safe="")


def _query_value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _json(payload: bytes) -> Any:
    return json.loads(payload) if payload else None


def _region_of(base_url: str) -> str | None:
    match = _EXECUTE_API_HOST.match(urlsplit(base_url).hostname or "")
    return match.group(1) if match else None


def _error(status: int, payload: bytes) -> ApiError:
    try:
        body = json.loads(payload) if payload else {}
    except ValueError:
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return ApiError(
            status,
            str(error.get("code") or f"HTTP{status}"),
            str(error.get("message") or ""),
            list(error.get("details") or []),
            error.get("operationId"),
        )
    # API Gateway's own answers (IAM denials, throttling): {"message": ...} or {"Message": ...}.
    message = (body.get("message") or body.get("Message")) if isinstance(body, dict) else None
    text = message or payload.decode(errors="replace")[:500] or f"HTTP {status}"
    code = {403: "Forbidden", 429: "Throttled"}.get(status, f"HTTP{status}")
    return ApiError(status, code, text)
