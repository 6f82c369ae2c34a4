"""What Kubernetes itself created in the cluster's name: Service load balancers (NLB/ALB and
classic), their target groups and security groups, and CSI volumes, all tagged
`kubernetes.io/cluster/<uid>`. Left behind they block VPC deletion (their ENIs and
security groups keep the subnets in use)."""

from __future__ import annotations

from datetime import timedelta

from kubestep import naming
from kubestep.aws import client
from kubestep.aws.errors import DEPENDENCY_VIOLATION, Kind, is_error, is_in_use, is_not_found
from kubestep.flow.steps import Poll, step
from kubestep.resources.context import TAG_CREATED_BY, ClusterContext
from kubestep.resources.kind import DeleteStep, ResourceKind

GONE = Poll(deadline=timedelta(minutes=20), interval=10)


def _k8s_owned(tags: dict[str, str], uid: str) -> bool:
    # Ours carry a created-by tag and are deleted by their own steps.
    return naming.k8s_cluster_tag(uid) in tags and TAG_CREATED_BY not in tags


def _tagged_load_balancing(ctx: ClusterContext) -> dict[str, dict[str, str]]:
    """ARN -> tags of every Elastic Load Balancing resource tagged `kubernetes.io/cluster/<uid>`
    (any value: `owned` or `shared`)."""
    tagging = client("resourcegroupstaggingapi", ctx.settings.region)
    found: dict[str, dict[str, str]] = {}
    for page in tagging.get_paginator("get_resources").paginate(TagFilters=[{"Key": naming.k8s_cluster_tag(ctx.uid)}]):
        for mapping in page["ResourceTagMappingList"]:
            if ":elasticloadbalancing:" in mapping["ResourceARN"]:
                found[mapping["ResourceARN"]] = naming.tags_dict(mapping.get("Tags"))
    return found


def _kind(arn: str) -> str:
    """`loadbalancer` (a Network or Application Load Balancer: `loadbalancer/net/<name>/<id>`),
    `classic` (`loadbalancer/<name>`), `targetgroup`, or what else the ARN names."""
    resource = arn.split(":", 5)[-1]
    kind, _, rest = resource.partition("/")
    if kind == "loadbalancer":
        return "loadbalancer" if "/" in rest else "classic"
    return kind


@step(poll=GONE)
def delete_kubernetes_resources(ctx: ClusterContext) -> dict:
    """Service load balancers, their target and security groups, and CSI volumes that
    Kubernetes created under `kubernetes.io/cluster/<uid>`."""
    uid, vpc = ctx.uid, ctx.vpc_id
    removed: dict[str, list[str]] = {"loadBalancers": [], "targetGroups": [], "volumes": [], "securityGroups": []}

    # Found by their tag through the Resource Groups Tagging API: a Describe of every load
    # balancer and target group in the account (EC2's token buckets, other tenants' resources)
    # would only be filtered here. The tag names this incarnation's uid; `_k8s_owned` still
    # checks each one's tags before anything is deleted.
    tagged = _tagged_load_balancing(ctx)
    for arn, tags in tagged.items():
        if _kind(arn) == "loadbalancer" and _k8s_owned(tags, uid):
            ctx.elbv2.delete_load_balancer(LoadBalancerArn=arn)
            removed["loadBalancers"].append(arn)
        elif _kind(arn) == "classic" and _k8s_owned(tags, uid):
            name = arn.rpartition("loadbalancer/")[2]
            client("elb", ctx.settings.region).delete_load_balancer(LoadBalancerName=name)
            removed["loadBalancers"].append(name)
    for arn, tags in tagged.items():
        if _kind(arn) == "targetgroup" and _k8s_owned(tags, uid):
            try:
                ctx.elbv2.delete_target_group(TargetGroupArn=arn)
                removed["targetGroups"].append(arn)
            except Exception as exc:
                if is_in_use(exc):
                    ctx.pending("a Kubernetes target group is still in use")
                if not is_not_found(exc, Kind.TARGET_GROUP):
                    raise

    tag_key = [{"Name": "tag-key", "Values": [naming.k8s_cluster_tag(uid)]}]
    for volume in ctx.ec2.describe_volumes(Filters=tag_key)["Volumes"]:
        if not _k8s_owned(naming.tags_dict(volume.get("Tags")), uid):
            continue
        if volume["State"] == "in-use":
            ctx.pending(f"Kubernetes volume {volume['VolumeId']} is still attached")
        ctx.ec2.delete_volume(VolumeId=volume["VolumeId"])
        removed["volumes"].append(volume["VolumeId"])

    groups = ctx.ec2.describe_security_groups(Filters=[*tag_key, {"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]
    for group in groups:
        if not _k8s_owned(naming.tags_dict(group.get("Tags")), uid):
            continue
        try:
            ctx.ec2.delete_security_group(GroupId=group["GroupId"])
            removed["securityGroups"].append(group["GroupId"])
        except Exception as exc:
            if is_error(exc, DEPENDENCY_VIOLATION):
                ctx.pending(f"Kubernetes security group {group['GroupId']} is still in use")
            if not is_not_found(exc, Kind.SECURITY_GROUP):
                raise
    return {k: len(v) for k, v in removed.items()}


# Not kubestep's own: what Kubernetes made goes once a cluster that ran is deleted, before the
# security groups its load balancers reference are gone.
KIND = ResourceKind(
    "kubernetesResources", delete=(DeleteStep(delete_kubernetes_resources, args=(), whole_cluster_only=True),)
)
