"""Every DynamoDB key format of the single table, in one place (docs/architecture.md, "State").

Nothing outside `kubestep.store` builds a key (a test keeps it so): callers ask the
repositories for records by name, uid or id."""

from __future__ import annotations

# Partition keys ----------------------------------------------------------------------------
NETWORK_PK = "NETWORK"
CLUSTER_PREFIX = "CLUSTER#"
OPERATION_PREFIX = "OPERATION#"
EVENTS_PREFIX = "EVENTS#"
BOOTSTRAP_PREFIX = "BOOTSTRAP#"
DEADLINE_PREFIX = "DEADLINE#"
UID_PREFIX = "UID#"
SCHEDULE_PREFIX = "SCHEDULE#"
# What the management service tells a cluster's control plane (instances read it, never write).
CLUSTER_ACCESS_PREFIX = "ACCESS#"

# Sort keys -----------------------------------------------------------------------------------
NETWORK_SK = "NETWORK"
CLUSTER_SK = "CLUSTER"
LOCK_SK = "LOCK"
NODE_POOL_PREFIX = "NODEPOOL#"
ETCD_MEMBER_PREFIX = "ETCD#MEMBER#"
ETCD_CONFIG_SK = "ETCD#CONFIG"
OPERATION_SK = "OPERATION"
EVENT_PREFIX = "EVENT#"
REPLICA_REPORT_PREFIX = "REPLICA#"
NODE_REPORT_PREFIX = "NODE#"
INIT_CLAIM_SK = "INIT"
UID_SK = "UID"
SCHEDULE_SK = "SCHEDULE"
ADMINS_SK = "ADMINS"

# GSI1 partitions -------------------------------------------------------------------------------
CLUSTERS_INDEX = "CLUSTERS"
OPERATIONS_INDEX_PREFIX = "OPS#"
ALL_OPERATIONS_INDEX = "OPERATIONS"
SCHEDULES_INDEX = "SCHEDULES"
IDEMPOTENCY_PK = "IDEMPOTENCY#api"

KEY_ATTRIBUTES = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "ttl")


def cluster_pk(name: str) -> str:
    return f"{CLUSTER_PREFIX}{name}"


def node_pool_sk(pool: str) -> str:
    return f"{NODE_POOL_PREFIX}{pool}"


def etcd_member_sk(index: int) -> str:
    return f"{ETCD_MEMBER_PREFIX}{index:02d}"


def operation_pk(operation_id: str) -> str:
    return f"{OPERATION_PREFIX}{operation_id}"


def operations_index(target: str) -> str:
    return f"{OPERATIONS_INDEX_PREFIX}{target}"


def events_pk(cluster: str) -> str:
    return f"{EVENTS_PREFIX}{cluster}"


def event_sk(involved_object: str, reason: str, digest: str) -> str:
    return f"{EVENT_PREFIX}{involved_object}#{reason}#{digest}"


def bootstrap_pk(uid: str) -> str:
    return f"{BOOTSTRAP_PREFIX}{uid}"


def replica_report_sk(index: int) -> str:
    return f"{REPLICA_REPORT_PREFIX}{index}"


def node_report_sk(instance_id: str) -> str:
    return f"{NODE_REPORT_PREFIX}{instance_id}"


def deadline_pk(operation_id: str) -> str:
    return f"{DEADLINE_PREFIX}{operation_id}"


def uid_pk(uid: str) -> str:
    return f"{UID_PREFIX}{uid}"


def schedule_pk(schedule_id: str) -> str:
    return f"{SCHEDULE_PREFIX}{schedule_id}"


def lock_pk_for(target: str) -> str:
    """The partition whose LOCK item guards `target` ("network" or a cluster name)."""
    return NETWORK_PK if target == "network" else cluster_pk(target)


def bootstrap_leading_key_pattern(uid: str = "*") -> str:
    """`dynamodb:LeadingKeys` value that scopes an instance role to its cluster's report items."""
    return f"{BOOTSTRAP_PREFIX}{uid}"


def cluster_access_pk(uid: str) -> str:
    return f"{CLUSTER_ACCESS_PREFIX}{uid}"


def cluster_access_leading_key(uid: str = "*") -> str:
    """`dynamodb:LeadingKeys` value that lets a control-plane role read (only) its cluster's
    administrators item."""
    return f"{CLUSTER_ACCESS_PREFIX}{uid}"
