"""Every DynamoDB key format of the single table, in one place (docs/architecture.md, "State").

Nothing outside `kubestep.store` builds a key (a test keeps it so): callers ask the
repositories for records by name, uid or id."""

from __future__ import annotations

from enum import StrEnum

# Partition keys ----------------------------------------------------------------------------
NETWORK_PK = "NETWORK"
CLUSTER_PREFIX = "CLUSTER#"
OPERATION_PREFIX = "OPERATION#"
EVENTS_PREFIX = "EVENTS#"
BOOTSTRAP_PREFIX = "BOOTSTRAP#"
DEADLINE_PREFIX = "DEADLINE#"
UID_PREFIX = "UID#"
SCHEDULE_PREFIX = "SCHEDULE#"
ORPHAN_PREFIX = "ORPHAN#"
# What the management service tells a cluster's control plane (instances read it, never write).
CLUSTER_ACCESS_PREFIX = "ACCESS#"
# A cluster incarnation's etcd backups, written by its control plane's etcd leader.
BACKUPS_PREFIX = "BACKUPS#"
# The deleted incarnations of a cluster name whose etcd backups were kept (by name).
INCARNATIONS_PREFIX = "INCARNATIONS#"

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
NODE_REPORT_PARTITION = "#NODE#"
# Once-per-version claims of the cluster-wide upgrade steps (docs/contracts.md): `UPGRADE#1.37.1`.
UPGRADE_CLAIM_PREFIX = "UPGRADE#"
ADDONS_CLAIM_PREFIX = "ADDONS#"
UID_SK = "UID"
SCHEDULE_SK = "SCHEDULE"
SIGHTING_PREFIX = "SEEN#"
ADMINS_SK = "ADMINS"
BACKUP_POLICY_SK = "BACKUP"
BACKUP_PREFIX = "BACKUP#"
LATEST_BACKUP_SK = "LATEST"
# A restore in progress (ACCESS#<uid>): the backup each replica restores at boot before etcd starts.
RESTORE_REQUEST_SK = "RESTORE"
INCARNATION_PREFIX = "INCARNATION#"

# GSI1 partitions -------------------------------------------------------------------------------
CLUSTERS_INDEX = "CLUSTERS"
OPERATIONS_INDEX_PREFIX = "OPS#"
SERVICE_OPERATIONS_INDEX_PREFIX = "SERVICE#OPS#"
ALL_OPERATIONS_INDEX = "OPERATIONS"
SCHEDULES_INDEX = "SCHEDULES"
IDEMPOTENCY_PK = "IDEMPOTENCY#api"

KEY_ATTRIBUTES = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "ttl")


class ServiceTarget(StrEnum):
    """What an operation works on when it is not a cluster: the management service's network, or
    the orphan sweep. Keys are chosen by the target's type, never by its text: a cluster named
    "network" is a `str` and keys under `CLUSTER#` and `OPS#`, so it can never hold the network's
    lock or mix into its operations (the names are also refused for clusters, so that a name in an
    API call means one thing)."""

    NETWORK = "network"
    ORPHANS = "orphans"


Target = str | ServiceTarget


def target_named(name: str) -> Target:
    """The target a name in a request means: a service target's name, else a cluster's."""
    return ServiceTarget(name) if name in {target.value for target in ServiceTarget} else name


def cluster_pk(name: str) -> str:
    return f"{CLUSTER_PREFIX}{name}"


def node_pool_sk(pool: str) -> str:
    return f"{NODE_POOL_PREFIX}{pool}"


def etcd_member_sk(index: int) -> str:
    return f"{ETCD_MEMBER_PREFIX}{index:02d}"


def operation_pk(operation_id: str) -> str:
    return f"{OPERATION_PREFIX}{operation_id}"


def operations_index(target: Target) -> str:
    if isinstance(target, ServiceTarget):
        return f"{SERVICE_OPERATIONS_INDEX_PREFIX}{target.value}"
    return f"{OPERATIONS_INDEX_PREFIX}{target}"


def events_pk(cluster: str) -> str:
    return f"{EVENTS_PREFIX}{cluster}"


def event_sk(involved_object: str, reason: str, digest: str) -> str:
    return f"{EVENT_PREFIX}{involved_object}#{reason}#{digest}"


def bootstrap_pk(uid: str) -> str:
    """The control-plane replicas' reports (`REPLICA#<index>`)."""
    return f"{BOOTSTRAP_PREFIX}{uid}"


def init_claim_pk(uid: str) -> str:
    """The init claim, alone in its partition: IAM scopes items by partition key only
    (`dynamodb:LeadingKeys`), so a role that may write reports cannot touch the claim."""
    return f"{BOOTSTRAP_PREFIX}{uid}#INIT"


def version_claim_pk(uid: str) -> str:
    """The once-per-version claims (`UPGRADE#<version>`, `ADDONS#<version>`), in a partition of
    their own: the control-plane role writes them for every upgrade, long after the init claim is
    sealed, and the reports' partition only takes the report's attributes."""
    return f"{BOOTSTRAP_PREFIX}{uid}#VERSION"


def node_report_pk(uid: str, instance_arn: str) -> str:
    """One node's report, alone in its partition: the node role may write exactly
    `node_report_pk(uid, "${ec2:SourceInstanceARN}")`, its own."""
    return f"{BOOTSTRAP_PREFIX}{uid}{NODE_REPORT_PARTITION}{instance_arn}"


def replica_report_sk(index: int) -> str:
    return f"{REPLICA_REPORT_PREFIX}{index}"


def node_report_sk(instance_id: str) -> str:
    return f"{NODE_REPORT_PREFIX}{instance_id}"


def addons_claim_sk(version: str) -> str:
    return f"{ADDONS_CLAIM_PREFIX}{version}"


def upgrade_claim_sk(version: str) -> str:
    return f"{UPGRADE_CLAIM_PREFIX}{version}"


def deadline_pk(operation_id: str) -> str:
    return f"{DEADLINE_PREFIX}{operation_id}"


def uid_pk(uid: str) -> str:
    return f"{UID_PREFIX}{uid}"


def schedule_pk(schedule_id: str) -> str:
    return f"{SCHEDULE_PREFIX}{schedule_id}"


def lock_pk_for(target: Target) -> str:
    """The partition whose LOCK item guards `target`: the network's, or the cluster's."""
    if target is ServiceTarget.NETWORK:
        return NETWORK_PK
    if isinstance(target, ServiceTarget):
        raise ValueError(f"{target.value} takes no lock")
    return cluster_pk(target)


def orphan_pk(uid: str) -> str:
    return f"{ORPHAN_PREFIX}{uid}"


def sighting_sk(resource_id: str) -> str:
    return f"{SIGHTING_PREFIX}{resource_id}"


def bootstrap_leading_key_patterns(uid: str = "*") -> list[str]:
    """`dynamodb:LeadingKeys` values (StringLike) of every partition a cluster's instances write."""
    return [bootstrap_pk(uid), init_claim_pk(uid), version_claim_pk(uid), node_report_pk(uid, "*")]


def cluster_access_pk(uid: str) -> str:
    return f"{CLUSTER_ACCESS_PREFIX}{uid}"


def cluster_access_leading_key(uid: str = "*") -> str:
    """`dynamodb:LeadingKeys` value that lets a control-plane role read (only) its cluster's
    administrators item."""
    return f"{CLUSTER_ACCESS_PREFIX}{uid}"


def backups_pk(uid: str) -> str:
    """The records of one incarnation's etcd snapshots (`BACKUP#<id>`), alone in their partition:
    the control-plane role writes them and nothing else there."""
    return f"{BACKUPS_PREFIX}{uid}"


def backup_sk(backup_id: str) -> str:
    return f"{BACKUP_PREFIX}{backup_id}"


def incarnations_pk(cluster: str) -> str:
    """A cluster name's deleted incarnations that left backups (`INCARNATION#<uid>`): what lists
    them by name once the cluster record, which maps the name to its uid, is gone."""
    return f"{INCARNATIONS_PREFIX}{cluster}"


def incarnation_sk(uid: str) -> str:
    return f"{INCARNATION_PREFIX}{uid}"
