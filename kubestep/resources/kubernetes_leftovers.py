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


@step(poll=GONE)
def delete_kubernetes_resources(ctx: ClusterContext) -> dict:
    """Service load balancers, their target and security groups, and CSI volumes that
    Kubernetes created under `kubernetes.io/cluster/<uid>`."""
    uid, vpc = ctx.uid, ctx.vpc_id
    removed: dict[str, list[str]] = {"loadBalancers": [], "targetGroups": [], "volumes": [], "securityGroups": []}

    arns = [
        lb["LoadBalancerArn"]
        for page in ctx.elbv2.get_paginator("describe_load_balancers").paginate()
        for lb in page["LoadBalancers"]
        if lb.get("VpcId") == vpc
    ]
    for i in range(0, len(arns), 20):
        for desc in ctx.elbv2.describe_tags(ResourceArns=arns[i : i + 20])["TagDescriptions"]:
            if _k8s_owned(naming.tags_dict(desc["Tags"]), uid):
                ctx.elbv2.delete_load_balancer(LoadBalancerArn=desc["ResourceArn"])
                removed["loadBalancers"].append(desc["ResourceArn"])

    elb = client("elb", ctx.settings.region)
    classic = [
        lb["LoadBalancerName"]
        for lb in elb.describe_load_balancers()["LoadBalancerDescriptions"]
        if lb.get("VPCId") == vpc
    ]
    for i in range(0, len(classic), 20):
        for desc in elb.describe_tags(LoadBalancerNames=classic[i : i + 20])["TagDescriptions"]:
            if _k8s_owned(naming.tags_dict(desc["Tags"]), uid):
                elb.delete_load_balancer(LoadBalancerName=desc["LoadBalancerName"])
                removed["loadBalancers"].append(desc["LoadBalancerName"])

    tg_arns = [
        tg["TargetGroupArn"]
        for page in ctx.elbv2.get_paginator("describe_target_groups").paginate()
        for tg in page["TargetGroups"]
        if tg.get("VpcId") == vpc
    ]
    for i in range(0, len(tg_arns), 20):
        for desc in ctx.elbv2.describe_tags(ResourceArns=tg_arns[i : i + 20])["TagDescriptions"]:
            if _k8s_owned(naming.tags_dict(desc["Tags"]), uid):
                try:
                    ctx.elbv2.delete_target_group(TargetGroupArn=desc["ResourceArn"])
                    removed["targetGroups"].append(desc["ResourceArn"])
                except Exception as exc:
                    if is_in_use(exc):
                        ctx.pending("a Kubernetes target group is still in use")
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
