"""The control plane's internal Network Load Balancer, its target group and listener.

TCP 443 -> 6443, client IP preservation off (otherwise a replica reaching itself through the
NLB times out and `kubeadm init`/`join` hang), HTTPS `/readyz` health check on 6443,
deregistration delay 30 s, cross-zone load balancing on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from kubestep import naming
from kubestep.aws.errors import IN_USE, Kind, is_error, is_not_found
from kubestep.flow.steps import Poll, step
from kubestep.resources import placement
from kubestep.resources.context import ClusterContext
from kubestep.resources.kind import MISSING, DeleteStep, Found, ResourceKind, Scope
from kubestep.store import Resource

# AWS: an NLB is `provisioning` for a few minutes (the replicas' health gate waits for it); its
# ENIs linger about a minute after a delete (and block the security groups' delete): the first
# look after 50 s, then every few seconds.
INTERFACES_RELEASED = Poll(deadline=timedelta(minutes=15), interval=3, backoff=1.2, max_delay=20, first=50)
DELETED = Poll(deadline=timedelta(minutes=15), interval=5)
TARGET_GROUP_ATTRIBUTES = {
    "preserve_client_ip.enabled": "false",
    "deregistration_delay.timeout_seconds": "30",
}
LOAD_BALANCER_ATTRIBUTES = {"load_balancing.cross_zone.enabled": "true"}


def _elb_tags(tags: dict[str, str]) -> list[dict]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _describe_lb(ctx: ClusterContext) -> dict | None:
    try:
        return ctx.elbv2.describe_load_balancers(Names=[naming.load_balancer(ctx.uid)])["LoadBalancers"][0]
    except Exception as exc:
        if is_not_found(exc, Kind.LOAD_BALANCER):
            return None
        raise


def _describe_tg(ctx: ClusterContext) -> dict | None:
    try:
        return ctx.elbv2.describe_target_groups(Names=[naming.target_group(ctx.uid)])["TargetGroups"][0]
    except Exception as exc:
        if is_not_found(exc, Kind.TARGET_GROUP):
            return None
        raise


def _differs(current: list[dict[str, str]], wanted: dict[str, str]) -> bool:
    """Whether any wanted attribute has another value (a re-run modifies nothing that is set)."""
    have = {a["Key"]: a.get("Value") for a in current}
    return any(have.get(key) != value for key, value in wanted.items())


@step(creates=True)
def ensure_load_balancer(ctx: ClusterContext) -> dict:
    """The internal NLB, its target group (TCP 6443, HTTPS /readyz) and its TCP 443 listener."""
    subnets = sorted({r.subnet_id for r in placement.replicas(ctx)})
    lb = _describe_lb(ctx)
    if lb is None:
        # CreateLoadBalancer is idempotent by name with identical settings.
        lb = ctx.elbv2.create_load_balancer(
            Name=naming.load_balancer(ctx.uid),
            Subnets=subnets,
            SecurityGroups=[ctx.resource_id(Resource.SG_LB)],
            Scheme="internal",
            Type="network",
            IpAddressType="ipv4",
            Tags=_elb_tags(ctx.tags(Name=naming.load_balancer(ctx.uid), **{naming.TAG_ROLE: "control-plane-lb"})),
        )["LoadBalancers"][0]
    if ctx.resource_id(Resource.NLB) != lb["LoadBalancerArn"]:
        ctx.record_resource(Resource.NLB, lb["LoadBalancerArn"])
    current = ctx.elbv2.describe_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"])["Attributes"]
    if _differs(current, LOAD_BALANCER_ATTRIBUTES):
        ctx.elbv2.modify_load_balancer_attributes(
            LoadBalancerArn=lb["LoadBalancerArn"],
            Attributes=[{"Key": k, "Value": v} for k, v in LOAD_BALANCER_ATTRIBUTES.items()],
        )
    tg = _describe_tg(ctx)
    if tg is None:
        tg = ctx.elbv2.create_target_group(
            Name=naming.target_group(ctx.uid),
            Protocol="TCP",
            Port=6443,
            VpcId=ctx.vpc_id,
            TargetType="instance",
            HealthCheckProtocol="HTTPS",
            HealthCheckPort="6443",
            HealthCheckPath="/readyz",
            HealthCheckIntervalSeconds=10,
            # A hung API server must fail its check well inside the interval (NLB allows 2-120 s).
            HealthCheckTimeoutSeconds=5,
            HealthyThresholdCount=2,
            UnhealthyThresholdCount=2,
            Tags=_elb_tags(ctx.tags(Name=naming.target_group(ctx.uid), **{naming.TAG_ROLE: "control-plane-tg"})),
        )["TargetGroups"][0]
    if ctx.resource_id(Resource.TARGET_GROUP) != tg["TargetGroupArn"]:
        ctx.record_resource(Resource.TARGET_GROUP, tg["TargetGroupArn"])
    current = ctx.elbv2.describe_target_group_attributes(TargetGroupArn=tg["TargetGroupArn"])["Attributes"]
    if _differs(current, TARGET_GROUP_ATTRIBUTES):
        ctx.elbv2.modify_target_group_attributes(
            TargetGroupArn=tg["TargetGroupArn"],
            Attributes=[{"Key": k, "Value": v} for k, v in TARGET_GROUP_ATTRIBUTES.items()],
        )
    listeners = ctx.elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    listener = next((item for item in listeners if item["Port"] == 443), None)
    forward = [{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}]
    if listener is not None and [a.get("TargetGroupArn") for a in listener["DefaultActions"]] != [tg["TargetGroupArn"]]:
        # The target group was made again (a repair): forward to the new one.
        ctx.elbv2.modify_listener(ListenerArn=listener["ListenerArn"], DefaultActions=forward)
    if listener is None:
        listener = ctx.elbv2.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"],
            Protocol="TCP",
            Port=443,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
            Tags=_elb_tags(ctx.tags()),
        )["Listeners"][0]
    if ctx.resource_id(Resource.LISTENER) != listener["ListenerArn"]:
        ctx.record_resource(Resource.LISTENER, listener["ListenerArn"])
    ctx.store.clusters.update(ctx.name, endpoint=lb["DNSName"])
    return {"loadBalancerDns": lb["DNSName"]}


def load_balancer_state(ctx: ClusterContext) -> str | None:
    """`provisioning`, `active`, `failed`, … (None if not visible yet). A failed NLB never
    recovers: that fails the step."""
    lb = _describe_lb(ctx)
    if lb is None:
        return None
    state = lb["State"]["Code"]
    if state == "failed":
        raise RuntimeError(f"load balancer {lb['LoadBalancerName']} failed: {lb['State'].get('Reason')}")
    return state


def target_health(ctx: ClusterContext) -> dict[str, str]:
    tg = _describe_tg(ctx)
    if tg is None:
        return {}
    descriptions = ctx.elbv2.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"]
    return {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in descriptions}


def _ours(ctx: ClusterContext, arn: str, scope: str) -> bool:
    tags = ctx.elbv2.describe_tags(ResourceArns=[arn])["TagDescriptions"]
    return bool(tags) and ctx.owned(naming.tags_dict(tags[0]["Tags"]), scope)


@step(poll=INTERFACES_RELEASED)
def delete_load_balancer(ctx: ClusterContext, scope: str) -> dict:
    """Delete the NLB, then wait until its network interfaces are released."""
    lb = _describe_lb(ctx)
    if lb is not None and _ours(ctx, lb["LoadBalancerArn"], scope):
        ctx.elbv2.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
        ctx.pending(f"load balancer {lb['LoadBalancerName']} is being deleted")
    # The NLB's network interfaces linger after it is gone and block security group deletion.
    enis = ctx.ec2.describe_network_interfaces(
        Filters=[{"Name": "description", "Values": [f"ELB net/{naming.load_balancer(ctx.uid)}/*"]}]
    )["NetworkInterfaces"]
    if enis:
        ctx.pending(f"{len(enis)} network interfaces of the load balancer are still attached")
    return {"deleted": bool(lb)}


@step(poll=DELETED)
def delete_target_group(ctx: ClusterContext, scope: str) -> dict:
    """Delete the control plane's target group once no load balancer uses it."""
    tg = _describe_tg(ctx)
    if tg is None or not _ours(ctx, tg["TargetGroupArn"], scope):
        return {"deleted": False}
    try:
        ctx.elbv2.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])
    except Exception as exc:
        if is_error(exc, *IN_USE):
            ctx.pending("the target group is still in use")
        if not is_not_found(exc, Kind.TARGET_GROUP):
            raise
    return {"deleted": True}


# ---------------------------------------------------------------- the kinds: NLB, listener, target group


def _tagged_arns(scope: Scope, arns: list[str]) -> dict[str, dict[str, str]]:
    elbv2, tags = scope.clients("elbv2"), {}
    for start in range(0, len(arns), 20):
        for desc in elbv2.describe_tags(ResourceArns=arns[start : start + 20])["TagDescriptions"]:
            tags[desc["ResourceArn"]] = naming.tags_dict(desc.get("Tags"))
    return tags


def find_load_balancers(scope: Scope, uid: str | None) -> Iterator[Found]:
    balancers = scope.clients("elbv2").describe_load_balancers()["LoadBalancers"]
    tags = _tagged_arns(scope, [lb["LoadBalancerArn"] for lb in balancers])
    for lb in balancers:
        found = scope.found(
            uid,
            lb["LoadBalancerArn"],
            tags.get(lb["LoadBalancerArn"], {}),
            lb.get("CreatedTime"),
            name=lb["LoadBalancerName"],
            dns=lb["DNSName"],
            scheme=lb["Scheme"],
            type=lb["Type"],
            zones=sorted(z["ZoneName"] for z in lb["AvailabilityZones"]),
            securityGroups=lb.get("SecurityGroups", []),
        )
        if found:
            yield found


def find_listeners(scope: Scope, uid: str | None) -> Iterator[Found]:
    """Listeners of this service's load balancers (they go with their load balancer)."""
    elbv2 = scope.clients("elbv2")
    for lb in find_load_balancers(scope, uid):
        for listener in elbv2.describe_listeners(LoadBalancerArn=lb.id)["Listeners"]:
            yield Found(lb.uid, listener["ListenerArn"], lb.tags, lb.created, {"port": listener["Port"]}, tagged=False)


def find_target_groups(scope: Scope, uid: str | None) -> Iterator[Found]:
    groups = scope.clients("elbv2").describe_target_groups()["TargetGroups"]
    tags = _tagged_arns(scope, [tg["TargetGroupArn"] for tg in groups])
    for tg in groups:
        health = f"{tg.get('HealthCheckProtocol')} {tg.get('HealthCheckPath', '')} :{tg.get('HealthCheckPort')}"
        found = scope.found(
            uid,
            tg["TargetGroupArn"],
            tags.get(tg["TargetGroupArn"], {}),
            name=tg["TargetGroupName"],
            protocol=tg["Protocol"],
            port=tg["Port"],
            healthCheck=health,
        )
        if found:
            yield found


def load_balancer_drift(ctx: ClusterContext, found: dict[str, str]) -> dict[str, str]:
    return {} if _describe_lb(ctx) else {Resource.NLB.value: MISSING}


def target_group_drift(ctx: ClusterContext, found: dict[str, str]) -> dict[str, str]:
    return {} if _describe_tg(ctx) else {Resource.TARGET_GROUP.value: MISSING}


def listener_drift(ctx: ClusterContext, found: dict[str, str]) -> dict[str, str]:
    """The HTTPS listener, forwarding to the control plane's target group (unless either is gone:
    the repair makes the listener with them)."""
    lb = _describe_lb(ctx)
    if lb is None:
        return {}
    listeners = ctx.elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    listener = next((li for li in listeners if li["Port"] == 443), None)
    if listener is None:
        return {Resource.LISTENER.value: MISSING}
    tg = _describe_tg(ctx)
    if tg and [a.get("TargetGroupArn") for a in listener["DefaultActions"]] != [tg["TargetGroupArn"]]:
        return {Resource.LISTENER.value: "forwards to another target group"}
    return {}


LISTENERS = ResourceKind(
    "listeners",
    label="Listener",
    find=find_listeners,
    ensure=("EnsureLoadBalancer",),
    delete=(DeleteStep(delete_load_balancer),),  # a listener goes with its load balancer
    needs=("loadBalancers", "targetGroups"),
    drift=listener_drift,
)
LOAD_BALANCERS = ResourceKind(
    "loadBalancers",
    label="NLB",
    find=find_load_balancers,
    ensure=("EnsureLoadBalancer",),
    delete=(DeleteStep(delete_load_balancer),),
    needs=("securityGroups",),
    drift=load_balancer_drift,
)
TARGET_GROUPS = ResourceKind(
    "targetGroups",
    label="TargetGroup",
    find=find_target_groups,
    ensure=("EnsureLoadBalancer",),
    delete=(DeleteStep(delete_target_group),),
    drift=target_group_drift,
)
