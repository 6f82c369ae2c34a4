"""Which cluster incarnation an AWS resource a request names was made for.

A request may name instance profiles, security groups and subnets of its own (the AWS
account's). What kubestep made for a cluster (its instance profiles carry the cluster's role and
reach its secrets; its security groups open its etcd and kubelets) and what Kubernetes made for
one (its Service load balancers' groups) belong to that cluster incarnation alone: naming one
in another cluster's request, or in a later cluster of the same name, is refused. kubestep knows
its own by their tags (`gke:cluster-uid`, `kubernetes.io/cluster/<uid>=owned`) and, where IAM
does not show tags, by their names (`gke-<uid>-controlplane`, `gke-<uid>-nodes`, ...), which it
reserves."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kubestep import naming

_UID = "[a-z][a-z0-9]{" + str(naming.UID_LENGTH - 1) + "}"
# Names kubestep gives a cluster's instance profiles and security groups (kubestep.naming).
PROFILE_NAME = re.compile(rf"^gke-({_UID})-(controlplane|node)$")
SECURITY_GROUP_NAME = re.compile(rf"^gke-({_UID})-(lb|controlplane|nodes)$")
K8S_CLUSTER_TAG = re.compile(r"^kubernetes\.io/cluster/(.+)$")


@dataclass(frozen=True)
class Maker:
    """Who made a resource for which cluster incarnation."""

    uid: str
    by: str  # "kubestep" or "Kubernetes"
    cluster: str | None = None  # the cluster's name, when its tags say

    def described(self) -> str:
        who = f"cluster {self.cluster!r} (uid {self.uid})" if self.cluster else f"cluster uid {self.uid}"
        return f"the one {self.by} made for {who}"


def made_for(name: str | None, tags: dict[str, str], name_pattern: re.Pattern[str] | None = None) -> Maker | None:
    """The cluster incarnation kubestep or Kubernetes made this resource for, or None when it is
    the account's own."""
    cluster = tags.get(naming.TAG_CLUSTER)
    if tags.get(naming.TAG_CLUSTER_UID):
        return Maker(tags[naming.TAG_CLUSTER_UID], "kubestep", cluster)
    match = name_pattern.match(name) if name and name_pattern else None
    if match:
        return Maker(match.group(1), "kubestep", cluster)
    for key, value in tags.items():
        owned = K8S_CLUSTER_TAG.match(key)
        if owned and value == "owned":
            return Maker(owned.group(1), "Kubernetes", cluster)
    return None


def foreign_problem(kind: str, resource: str, maker: Maker | None, uid: str | None) -> str | None:
    """Why `uid`'s request may not name this resource (None: it may). `uid` None: a cluster not
    created yet, which owns nothing."""
    if maker is None or maker.uid == uid:
        return None
    return f"{kind} {resource} is {maker.described()}: a cluster may use only its own"


def profile_problem(name: str, tags: dict[str, str], uid: str | None, role: str) -> str | None:
    """An instance profile in a request for `uid`'s `role` instances. Of the profiles kubestep made
    for its own cluster, a role's instances use their own: a node must never run with the control
    plane's role (which reads the cluster's CA keys)."""
    maker = made_for(name, tags, PROFILE_NAME)
    problem = foreign_problem("instance profile", repr(name), maker, uid)
    if problem or maker is None:
        return problem
    own = naming.instance_role(maker.uid, role)
    if name != own:
        return f"instance profile {name!r} is this cluster's profile for other instances: {role} instances use {own}"
    return None


def security_group_problem(group: dict, uid: str | None) -> str | None:
    tags = naming.tags_dict(group.get("Tags"))
    maker = made_for(group.get("GroupName"), tags, SECURITY_GROUP_NAME)
    return foreign_problem("security group", group["GroupId"], maker, uid)


def subnet_problem(subnet: dict, uid: str | None) -> str | None:
    """A subnet is shared by design (`kubernetes.io/cluster/<uid>=shared`); one a cluster owns
    outright is that cluster's."""
    tags = naming.tags_dict(subnet.get("Tags"))
    return foreign_problem("subnet", subnet["SubnetId"], made_for(None, tags), uid)
