"""Names and tags of every AWS resource kubestep creates.

AWS names use the cluster's uid, not its name, so a cluster can be deleted and re-created
under the same name at once; tags carry both."""

from __future__ import annotations

import hashlib
import secrets
import string

UID_ALPHABET = string.ascii_lowercase + string.digits
UID_LENGTH = 8

TAG_CLUSTER = "gke:cluster"
TAG_CLUSTER_UID = "gke:cluster-uid"
TAG_NODEPOOL = "gke:nodepool"
TAG_ROLE = "gke:role"
TAG_REPLICA = "gke:replica"
TAG_SERVICE = "gke:management-service"
# On etcd volumes a delete kept (keepEtcdVolumes): the operation that kept them; the orphan
# sweeper leaves them alone.
TAG_RETAINED_BY = "gke:retained-by"
# The spec an instance was launched with (a digest of its launch template data): rolls tell new
# instances from old by it.
TAG_SPEC = "gke:spec"
ROLE_CONTROL_PLANE = "control-plane"
ROLE_NODE = "node"


def new_uid() -> str:
    # First character a letter: some AWS names must not start with a digit.
    return secrets.choice(string.ascii_lowercase) + "".join(secrets.choice(UID_ALPHABET) for _ in range(UID_LENGTH - 1))


def k8s_cluster_tag(uid: str) -> str:
    return f"kubernetes.io/cluster/{uid}"


# Names (NLB and target group names: at most 32 characters; `gke-` + 8 + suffix fits).
def load_balancer(uid: str) -> str:
    return f"gke-{uid}-cp"


def target_group(uid: str) -> str:
    return f"gke-{uid}-cp-6443"


def security_group(uid: str, purpose: str) -> str:
    return f"gke-{uid}-{purpose}"


def replica(uid: str, index: int) -> str:
    return f"gke-{uid}-cp-{index}"


def etcd_volume(uid: str, index: int) -> str:
    return f"gke-{uid}-etcd-{index}"


def node_pool(uid: str, pool: str) -> str:
    return f"gke-{uid}-np-{pool}"


def control_plane_secret(uid: str) -> str:
    """CA keys, the service-account key, the Secrets encryption key: control plane only."""
    return f"gke-{uid}-controlplane"


def node_secret(uid: str) -> str:
    """The kubeadm join token: nodes (and the control plane, which registers it)."""
    return f"gke-{uid}-node"


def instance_role(uid: str, role: str) -> str:
    """Per-cluster IAM role and instance profile of `role` (control-plane | node)."""
    return f"gke-{uid}-{'controlplane' if role == ROLE_CONTROL_PLANE else 'node'}"


def execution_name(kind: str, uid: str, generation: int, suffix: str = "") -> str:
    """Deterministic execution names (<= 80 chars of [A-Za-z0-9-_])."""
    name = f"{kind}-{uid}-{generation}"
    return f"{name}-{suffix}"[:80] if suffix else name


def client_token(operation_id: str, logical_name: str) -> str:
    """EC2 ClientToken: at most 64 ASCII characters, unique per operation and resource."""
    token = f"{operation_id}-{logical_name}"
    if len(token) <= 64:
        return token
    return hashlib.sha256(token.encode()).hexdigest()[:64]


def cluster_tags(service: str, cluster: str, uid: str, **extra: str) -> dict[str, str]:
    tags = {
        TAG_SERVICE: service,
        TAG_CLUSTER: cluster,
        TAG_CLUSTER_UID: uid,
        k8s_cluster_tag(uid): "owned",
    }
    tags.update(extra)
    return tags


def ec2_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def tag_specifications(resource_type: str, tags: dict[str, str]) -> list[dict]:
    return [{"ResourceType": resource_type, "Tags": ec2_tags(tags)}]


def tags_dict(tag_list: list[dict] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tag_list or []}


def termination_queue(uid: str) -> str:
    """The cluster's SQS queue of node-termination lifecycle messages (the termination handler's)."""
    return f"gke-{uid}-node-termination"


def termination_rule(uid: str) -> str:
    return f"gke-{uid}-node-termination"


DRAIN_HOOK = "kubestep-drain"
