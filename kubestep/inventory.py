"""Every AWS resource that carries a cluster's uid, found by tags: what the demo prints and
what the tests use to prove a delete or a rollback left nothing behind."""

from __future__ import annotations

from typing import Any

from kubestep import naming


def cluster_resources(uid: str, clients: Any) -> dict[str, list[dict]]:
    """`clients(service)` returns a boto3 client. Terminated instances don't count."""
    ec2, asg, elbv2, secrets = clients("ec2"), clients("autoscaling"), clients("elbv2"), clients("secretsmanager")
    uid_filter = [{"Name": f"tag:{naming.TAG_CLUSTER_UID}", "Values": [uid]}]
    found: dict[str, list[dict]] = {}

    found["autoScalingGroups"] = [
        {
            "name": g["AutoScalingGroupName"],
            "zones": g["AvailabilityZones"],
            "min": g["MinSize"],
            "max": g["MaxSize"],
            "subnets": g["VPCZoneIdentifier"],
            "healthCheck": g["HealthCheckType"],
            "targetGroups": g.get("TargetGroupARNs", []),
            "instances": [i["InstanceId"] for i in g["Instances"]],
            "role": naming.tags_dict([{"Key": t["Key"], "Value": t["Value"]} for t in g["Tags"]]).get(naming.TAG_ROLE),
        }
        for page in asg.get_paginator("describe_auto_scaling_groups").paginate(Filters=uid_filter)
        for g in page["AutoScalingGroups"]
    ]
    found["instances"] = [
        {"id": i["InstanceId"], "zone": i["Placement"]["AvailabilityZone"], "state": i["State"]["Name"]}
        for page in ec2.get_paginator("describe_instances").paginate(Filters=uid_filter)
        for r in page["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] != "terminated"
    ]
    found["volumes"] = [
        {
            "id": v["VolumeId"],
            "zone": v["AvailabilityZone"],
            "size": v["Size"],
            "type": v["VolumeType"],
            "encrypted": v["Encrypted"],
            "state": v["State"],
            "role": naming.tags_dict(v.get("Tags")).get(naming.TAG_ROLE),
        }
        for v in ec2.describe_volumes(Filters=uid_filter)["Volumes"]
    ]
    found["launchTemplates"] = [
        {"id": t["LaunchTemplateId"], "name": t["LaunchTemplateName"]}
        for t in ec2.describe_launch_templates(Filters=uid_filter)["LaunchTemplates"]
    ]
    found["securityGroups"] = [
        {"id": g["GroupId"], "name": g["GroupName"]}
        for g in ec2.describe_security_groups(Filters=uid_filter)["SecurityGroups"]
    ]
    found["loadBalancers"], found["targetGroups"] = [], []
    lbs = elbv2.describe_load_balancers()["LoadBalancers"]
    tgs = elbv2.describe_target_groups()["TargetGroups"]
    arns = [lb["LoadBalancerArn"] for lb in lbs] + [tg["TargetGroupArn"] for tg in tgs]
    ours = set()
    for i in range(0, len(arns), 20):
        for desc in elbv2.describe_tags(ResourceArns=arns[i : i + 20])["TagDescriptions"]:
            if naming.tags_dict(desc["Tags"]).get(naming.TAG_CLUSTER_UID) == uid:
                ours.add(desc["ResourceArn"])
    found["loadBalancers"] = [
        {
            "name": lb["LoadBalancerName"],
            "dns": lb["DNSName"],
            "scheme": lb["Scheme"],
            "type": lb["Type"],
            "zones": sorted(z["ZoneName"] for z in lb["AvailabilityZones"]),
            "securityGroups": lb.get("SecurityGroups", []),
        }
        for lb in lbs
        if lb["LoadBalancerArn"] in ours
    ]
    found["targetGroups"] = [
        {
            "name": tg["TargetGroupName"],
            "protocol": tg["Protocol"],
            "port": tg["Port"],
            "healthCheck": (
                f"{tg.get('HealthCheckProtocol')} {tg.get('HealthCheckPath', '')} :{tg.get('HealthCheckPort')}"
            ),
        }
        for tg in tgs
        if tg["TargetGroupArn"] in ours
    ]
    found["secrets"] = [
        {"name": s["Name"]}
        for s in secrets.list_secrets(Filters=[{"Key": "tag-value", "Values": [uid]}])["SecretList"]
        if naming.tags_dict(s.get("Tags")).get(naming.TAG_CLUSTER_UID) == uid and not s.get("DeletedDate")
    ]
    return found


def count(resources: dict[str, list[dict]]) -> int:
    return sum(len(v) for v in resources.values())
