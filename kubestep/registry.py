"""The DynamoDB single table: network, clusters, node pools, etcd members, operations,
events and locks (DESIGN §3; key layout in docs/architecture.md).

Parallel `Map` branches each write their own item (one per etcd member, one per node pool)
or their own attribute path, so no branch overwrites another's work."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import boto3
from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from kubestep.aws import RETRY_CONFIG, is_error
from kubestep.errors import AlreadyExists, LockHeld, NetworkNotReady, NotFound

EVENT_TTL = timedelta(days=30)
OPERATION_TTL = timedelta(days=90)
LOCK_TTL = timedelta(hours=3)  # longer than any state machine's TimeoutSeconds
# An API reservation names an execution it is about to start; until it appears, don't take over.
LOCK_START_GRACE = timedelta(minutes=2)


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime | None = None) -> str:
    return (moment or now()).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def plain(value: Any) -> Any:
    """DynamoDB's Decimals back to ints/floats, recursively."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def cluster_pk(name: str) -> str:
    return f"CLUSTER#{name}"


NETWORK_PK = "NETWORK"
CLUSTERS_INDEX_PK = "CLUSTERS"
KEY_FIELDS = ("pk", "sk", "gsi1pk", "gsi1sk", "ttl")


def _strip(item: dict | None) -> dict | None:
    if item is None:
        return None
    return {k: plain(v) for k, v in item.items() if k not in KEY_FIELDS}


class Registry:
    def __init__(self, table_name: str, dynamodb: Any = None):
        resource = dynamodb or boto3.session.Session().resource("dynamodb", config=RETRY_CONFIG)
        self.table = resource.Table(table_name)
        self.table_name = table_name

    # ------------------------------------------------------------------ generic
    def _get(self, pk: str, sk: str) -> dict | None:
        return self.table.get_item(Key={"pk": pk, "sk": sk}, ConsistentRead=True).get("Item")

    def _update(self, pk: str, sk: str, fields: dict[str, Any], condition: Any = None) -> dict:
        names, values, sets = {}, {}, []
        for i, (key, value) in enumerate(fields.items()):
            # "a.b" updates one entry of a map attribute without touching its siblings.
            parts = key.split(".")
            path = ".".join(f"#n{i}_{j}" for j in range(len(parts)))
            for j, part in enumerate(parts):
                names[f"#n{i}_{j}"] = part
            values[f":v{i}"] = value
            sets.append(f"{path} = :v{i}")
        kwargs: dict[str, Any] = {
            "Key": {"pk": pk, "sk": sk},
            "UpdateExpression": "SET " + ", ".join(sets),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
        }
        if condition is not None:
            kwargs["ConditionExpression"] = condition
        return self.table.update_item(**kwargs)["Attributes"]

    def _query_all(self, **kwargs: Any) -> list[dict]:
        items: list[dict] = []
        while True:
            page = self.table.query(**kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # ------------------------------------------------------------------ network
    def get_network(self) -> dict | None:
        return _strip(self._get(NETWORK_PK, "NETWORK"))

    def ready_network(self, service_name: str) -> dict:
        """The network record, or NetworkNotReady saying how to get there."""
        network = self.get_network()
        if not network or network.get("status") != "READY":
            state = network.get("status") if network else "not provisioned"
            raise NetworkNotReady(
                f"the management service's network is {state}: start the {service_name}-ProvisionNetwork "
                "state machine (execution name provision-network, input {}) and wait for it to succeed"
            )
        return network

    def update_network(self, **fields: Any) -> dict:
        fields.setdefault("updatedAt", iso())
        return plain(self._update(NETWORK_PK, "NETWORK", fields))

    def delete_network(self) -> None:
        self.table.delete_item(Key={"pk": NETWORK_PK, "sk": "NETWORK"})

    # ------------------------------------------------------------------ clusters
    def get_cluster(self, name: str) -> dict | None:
        return _strip(self._get(cluster_pk(name), "CLUSTER"))

    def require_cluster(self, name: str) -> dict:
        cluster = self.get_cluster(name)
        if cluster is None:
            raise NotFound(f"cluster {name!r} does not exist")
        return cluster

    def create_cluster(self, name: str, uid: str, spec: dict, operation_id: str, node_pools: list[dict]) -> dict:
        """The cluster record and its node pools, all or nothing."""
        stamp = iso()
        record = {
            "pk": cluster_pk(name),
            "sk": "CLUSTER",
            "gsi1pk": CLUSTERS_INDEX_PK,
            "gsi1sk": name,
            "name": name,
            "uid": uid,
            "generation": 1,
            "phase": "PROVISIONING",
            "spec": spec,
            "version": spec["spec"]["controlPlane"]["version"],
            "resources": {},
            "createdAt": stamp,
            "updatedAt": stamp,
            "createdBy": operation_id,
            "currentOperation": operation_id,
        }
        items = [{"Put": {"Item": record, "ConditionExpression": "attribute_not_exists(pk)"}}]
        for pool in node_pools:
            items.append({"Put": {"Item": self._node_pool_item(name, pool, operation_id, stamp)}})
        client = self.table.meta.client
        try:
            client.transact_write_items(
                TransactItems=[{k: {**v, "TableName": self.table_name}} for i in items for k, v in i.items()]
            )
        except ClientError as exc:
            if is_error(exc, "TransactionCanceledException"):
                raise AlreadyExists(f"cluster {name!r} already exists") from None
            raise
        return _strip(record)  # type: ignore[return-value]

    def update_cluster(self, name: str, **fields: Any) -> dict:
        fields.setdefault("updatedAt", iso())
        try:
            return plain(self._update(cluster_pk(name), "CLUSTER", fields, Attr("pk").exists()))
        except ClientError as exc:
            if is_error(exc, "ConditionalCheckFailedException"):
                raise NotFound(f"cluster {name!r} does not exist") from None
            raise

    def record_resource(self, pk: str, sk: str, logical: str, resource_id: str, operation_id: str) -> None:
        """Remember a new AWS id right after creating it, with the operation that created it
        (compensation deletes only what its own operation created)."""
        self._update(pk, sk, {f"resources.{logical}": {"id": resource_id, "createdBy": operation_id}})

    def list_clusters(self, limit: int = 100, start: str | None = None) -> tuple[list[dict], str | None]:
        kwargs: dict[str, Any] = {
            "IndexName": "gsi1",
            "KeyConditionExpression": Key("gsi1pk").eq(CLUSTERS_INDEX_PK),
            "Limit": limit,
        }
        if start:
            kwargs["ExclusiveStartKey"] = {
                "gsi1pk": CLUSTERS_INDEX_PK,
                "gsi1sk": start,
                "pk": cluster_pk(start),
                "sk": "CLUSTER",
            }
        page = self.table.query(**kwargs)
        items = [_strip(i) for i in page.get("Items", [])]
        last = page.get("LastEvaluatedKey")
        return items, (last["gsi1sk"] if last else None)  # type: ignore[return-value]

    def cluster_items(self, name: str) -> list[dict]:
        return self._query_all(KeyConditionExpression=Key("pk").eq(cluster_pk(name)), ConsistentRead=True)

    def delete_cluster_records(self, name: str, keep_lock_of: str | None = None) -> int:
        """Everything under the cluster's key (record, pools, etcd members, lock); events
        live under their own key and stay readable."""
        items = self.cluster_items(name)
        with self.table.batch_writer() as batch:
            for item in items:
                batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})
        return len(items)

    # ------------------------------------------------------------------ node pools
    @staticmethod
    def _node_pool_item(cluster: str, pool: dict, operation_id: str, stamp: str) -> dict:
        return {
            "pk": cluster_pk(cluster),
            "sk": f"NODEPOOL#{pool['metadata']['name']}",
            "name": pool["metadata"]["name"],
            "cluster": cluster,
            "spec": pool,
            "phase": "PROVISIONING",
            "version": pool["spec"]["version"],
            "resources": {},
            "createdAt": stamp,
            "updatedAt": stamp,
            "createdBy": operation_id,
        }

    def add_node_pool(self, cluster: str, pool: dict, operation_id: str) -> bool:
        """Record a node pool unless one of that name exists; True if it was added."""
        try:
            self.table.put_item(
                Item=self._node_pool_item(cluster, pool, operation_id, iso()),
                ConditionExpression="attribute_not_exists(pk)",
            )
            return True
        except ClientError as exc:
            if is_error(exc, "ConditionalCheckFailedException"):
                return False
            raise

    def get_node_pool(self, cluster: str, pool: str) -> dict | None:
        return _strip(self._get(cluster_pk(cluster), f"NODEPOOL#{pool}"))

    def list_node_pools(self, cluster: str) -> list[dict]:
        items = self._query_all(
            KeyConditionExpression=Key("pk").eq(cluster_pk(cluster)) & Key("sk").begins_with("NODEPOOL#"),
            ConsistentRead=True,
        )
        return [_strip(i) for i in items]  # type: ignore[misc]

    def update_node_pool(self, cluster: str, pool: str, **fields: Any) -> dict:
        fields.setdefault("updatedAt", iso())
        return plain(self._update(cluster_pk(cluster), f"NODEPOOL#{pool}", fields, Attr("pk").exists()))

    # ------------------------------------------------------------------ etcd
    def put_etcd_member(self, cluster: str, index: int, fields: dict) -> dict:
        """One item per member: parallel replica branches never overwrite each other.
        Re-planning keeps what an earlier run recorded (zone, subnet, resources)."""
        item = {
            "pk": cluster_pk(cluster),
            "sk": f"ETCD#MEMBER#{index:02d}",
            "index": index,
            "resources": {},
            **fields,
        }
        try:
            self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if not is_error(exc, "ConditionalCheckFailedException"):
                raise
        return self.get_etcd_member(cluster, index)  # type: ignore[return-value]

    def get_etcd_member(self, cluster: str, index: int) -> dict | None:
        return _strip(self._get(cluster_pk(cluster), f"ETCD#MEMBER#{index:02d}"))

    def list_etcd_members(self, cluster: str) -> list[dict]:
        items = self._query_all(
            KeyConditionExpression=Key("pk").eq(cluster_pk(cluster)) & Key("sk").begins_with("ETCD#MEMBER#"),
            ConsistentRead=True,
        )
        return [_strip(i) for i in items]  # type: ignore[misc]

    def update_etcd_member(self, cluster: str, index: int, **fields: Any) -> dict:
        return plain(self._update(cluster_pk(cluster), f"ETCD#MEMBER#{index:02d}", fields, Attr("pk").exists()))

    def put_etcd_config(self, cluster: str, fields: dict) -> None:
        item = {"pk": cluster_pk(cluster), "sk": "ETCD#CONFIG", **fields}
        try:
            self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as exc:
            if not is_error(exc, "ConditionalCheckFailedException"):
                raise

    def get_etcd_config(self, cluster: str) -> dict | None:
        return _strip(self._get(cluster_pk(cluster), "ETCD#CONFIG"))

    # ------------------------------------------------------------------ bootstrap reports
    def bootstrap_reports(self, uid: str) -> dict[str, dict]:
        items = self._query_all(KeyConditionExpression=Key("pk").eq(f"BOOTSTRAP#{uid}"), ConsistentRead=True)
        return {i["sk"]: _strip(i) for i in items}  # type: ignore[misc]

    def bootstrap_report(self, uid: str, key: str) -> dict | None:
        return _strip(self._get(f"BOOTSTRAP#{uid}", key))

    def delete_bootstrap_reports(self, uid: str) -> None:
        items = self._query_all(KeyConditionExpression=Key("pk").eq(f"BOOTSTRAP#{uid}"))
        with self.table.batch_writer() as batch:
            for item in items:
                batch.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})

    # ------------------------------------------------------------------ operations
    def put_operation(self, operation_id: str, kind: str, target: str, execution_arn: str | None, **extra: Any) -> dict:
        """Record (or re-record) an operation; re-recording keeps its first start time."""
        stamp = iso()
        fields = {
            "operationId": operation_id,
            "kind": kind,
            "target": target,
            "status": "RUNNING",
            "gsi1pk": f"OPS#{target}",
            "startedAt": stamp,
            "ttl": int((now() + OPERATION_TTL).timestamp()),
            **extra,
        }
        if execution_arn:
            fields["executionArn"] = execution_arn
        names = {f"#f{i}": k for i, k in enumerate(fields)}
        values = {f":v{i}": v for i, v in enumerate(fields.values())}
        sets = []
        for i, key in enumerate(fields):
            if key in ("startedAt",):
                sets.append(f"#f{i} = if_not_exists(#f{i}, :v{i})")
            else:
                sets.append(f"#f{i} = :v{i}")
        sets.append("gsi1sk = if_not_exists(gsi1sk, :start)")
        values[":start"] = stamp
        item = self.table.update_item(
            Key={"pk": f"OPERATION#{operation_id}", "sk": "OPERATION"},
            UpdateExpression="SET " + ", ".join(sets),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return _strip(item)  # type: ignore[return-value]

    def finish_operation(
        self, operation_id: str, status: str, error: str | None = None, cause: str | None = None
    ) -> None:
        fields: dict[str, Any] = {"status": status, "endedAt": iso()}
        if error:
            fields["error"] = error
        if cause:
            fields["cause"] = cause[:4000]
        try:
            self._update(f"OPERATION#{operation_id}", "OPERATION", fields, Attr("pk").exists())
        except ClientError as exc:
            if not is_error(exc, "ConditionalCheckFailedException"):
                raise

    def get_operation(self, operation_id: str) -> dict | None:
        return _strip(self._get(f"OPERATION#{operation_id}", "OPERATION"))

    def list_operations(self, target: str, limit: int = 20) -> list[dict]:
        page = self.table.query(
            IndexName="gsi1",
            KeyConditionExpression=Key("gsi1pk").eq(f"OPS#{target}"),
            ScanIndexForward=False,
            Limit=limit,
        )
        return [_strip(i) for i in page.get("Items", [])]  # type: ignore[misc]

    # ------------------------------------------------------------------ events
    def record_event(
        self,
        cluster: str,
        type_: str,
        reason: str,
        message: str,
        involved_object: str,
        operation_id: str | None = None,
    ) -> None:
        """Kubernetes-style events: the same (object, reason, message) aggregates into one
        item with a count, as kubectl shows them."""
        digest = hashlib.sha1(message.encode(), usedforsecurity=False).hexdigest()[:10]
        stamp = iso()
        values: dict[str, Any] = {
            ":type": type_,
            ":reason": reason,
            ":message": message[:2000],
            ":object": involved_object,
            ":one": 1,
            ":now": stamp,
            ":ttl": int((now() + EVENT_TTL).timestamp()),
            ":cluster": cluster,
        }
        update = (
            "SET #type = :type, reason = :reason, message = :message, involvedObject = :object, "
            "firstTimestamp = if_not_exists(firstTimestamp, :now), lastTimestamp = :now, #ttl = :ttl, "
            "#cluster = :cluster ADD #count :one"
        )
        names = {"#type": "type", "#ttl": "ttl", "#count": "count", "#cluster": "cluster"}
        if operation_id:
            update = update.replace(" ADD", ", operationId = :op ADD")
            values[":op"] = operation_id
        self.table.update_item(
            Key={"pk": f"EVENTS#{cluster}", "sk": f"EVENT#{involved_object}#{reason}#{digest}"},
            UpdateExpression=update,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def list_events(self, cluster: str) -> list[dict]:
        items = self._query_all(KeyConditionExpression=Key("pk").eq(f"EVENTS#{cluster}"))
        events = [_strip(i) for i in items]
        return sorted(events, key=lambda e: e["lastTimestamp"])  # type: ignore[index]

    # ------------------------------------------------------------------ locks
    def get_lock(self, pk: str) -> dict | None:
        return _strip(self._get(pk, "LOCK"))

    def acquire_lock(
        self,
        pk: str,
        operation_id: str,
        execution_arn: str | None,
        execution_running: Callable[[str], bool | None],
    ) -> dict:
        """Take the lock for `operation_id` (again, if it already holds it), or take it over
        from a holder whose execution is no longer running or whose lease expired.

        `execution_running(arn)` answers True/False, or None when the execution does not
        exist (yet)."""
        stamp = now()
        lock = {
            "pk": pk,
            "sk": "LOCK",
            "operationId": operation_id,
            "acquiredAt": iso(stamp),
            "expiresAt": iso(stamp + LOCK_TTL),
        }
        if execution_arn:
            lock["executionArn"] = execution_arn
        for _ in range(3):
            try:
                self.table.put_item(
                    Item=lock,
                    ConditionExpression=Attr("pk").not_exists() | Attr("operationId").eq(operation_id),
                )
                return _strip(lock)  # type: ignore[return-value]
            except ClientError as exc:
                if not is_error(exc, "ConditionalCheckFailedException"):
                    raise
            holder = self.get_lock(pk)
            if holder is None:
                continue
            if not self._lock_abandoned(holder, execution_running):
                raise LockHeld(pk.replace("CLUSTER#", "cluster "), holder)
            try:
                # Take over only the very lock we judged abandoned.
                self.table.put_item(Item=lock, ConditionExpression=Attr("operationId").eq(holder["operationId"]))
                lock["tookOverFrom"] = holder["operationId"]
                return _strip(lock)  # type: ignore[return-value]
            except ClientError as exc:
                if not is_error(exc, "ConditionalCheckFailedException"):
                    raise
            time.sleep(0.2)
        raise LockHeld(pk, self.get_lock(pk) or {})

    @staticmethod
    def _lock_abandoned(holder: dict, execution_running: Callable[[str], bool | None]) -> bool:
        if parse_iso(holder["expiresAt"]) < now():
            return True
        arn = holder.get("executionArn")
        if not arn:
            return False
        running = execution_running(arn)
        if running is None:  # reserved by the API, execution not visible yet
            return parse_iso(holder["acquiredAt"]) + LOCK_START_GRACE < now()
        return not running

    def release_lock(self, pk: str, operation_id: str) -> bool:
        try:
            self.table.delete_item(
                Key={"pk": pk, "sk": "LOCK"}, ConditionExpression=Attr("operationId").eq(operation_id)
            )
            return True
        except ClientError as exc:
            if is_error(exc, "ConditionalCheckFailedException"):
                return False
            raise

    # ------------------------------------------------------------------ step deadlines
    def step_started(self, step: str, operation_id: str) -> datetime:
        """When this operation first ran `step`: deadlines survive Lambda retries."""
        key = {"pk": f"DEADLINE#{operation_id}", "sk": step}
        result = self.table.update_item(
            Key=key,
            UpdateExpression="SET startedAt = if_not_exists(startedAt, :now), #ttl = :ttl",
            ExpressionAttributeNames={"#ttl": "ttl"},
            ExpressionAttributeValues={":now": iso(), ":ttl": int((now() + timedelta(days=2)).timestamp())},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        return parse_iso(result["startedAt"])
