"""What Kubernetes itself created in the cluster's name: Service load balancers (NLB/ALB and
classic), their target groups and security groups, and CSI volumes, all tagged
`kubernetes.io/cluster/<uid>`. Left behind they block VPC deletion (ANCHORS pain point 1)."""

from __future__ import annotations

from kubestep import naming
from kubestep.aws import client, is_error
from kubestep.errors import ResourcePending
from kubestep.resources.context import TAG_CREATED_BY, ClusterContext


def _k8s_owned(tags: dict[str, str], uid: str) -> bool:
    # Ours carry a created-by tag and are deleted by their own steps.
    return naming.k8s_cluster_tag(uid) in tags and TAG_CREATED_BY not in tags


def delete(ctx: ClusterContext) -> dict:
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
                    if is_error(exc, "ResourceInUse"):
                        raise ResourcePending("a Kubernetes target group is still in use") from None
                    raise

    tag_key = [{"Name": "tag-key", "Values": [naming.k8s_cluster_tag(uid)]}]
    for volume in ctx.ec2.describe_volumes(Filters=tag_key)["Volumes"]:
        if not _k8s_owned(naming.tags_dict(volume.get("Tags")), uid):
            continue
        if volume["State"] == "in-use":
            raise ResourcePending(f"Kubernetes volume {volume['VolumeId']} is still attached")
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
            if is_error(exc, "DependencyViolation"):
                raise ResourcePending(f"Kubernetes security group {group['GroupId']} is still in use") from None
            if not is_error(exc, "InvalidGroup.NotFound"):
                raise
    return {k: len(v) for k, v in removed.items()}
