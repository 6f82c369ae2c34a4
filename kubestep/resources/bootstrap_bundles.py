"""A cluster's bootstrap bundles (kubestep/bootstrap/bundle.py): objects under
`bootstrap/<uid>/` in the service's bucket, written by the steps that make the launch templates
and read by the instances at boot.

A bundle's key is its SHA-256, so writing one is idempotent (an object already there is the same
bytes) and a launch template version keeps naming the bundle it was made with. They all stay
while the cluster lives (an older template version, or an instance launched from it and
rebooted later, may still need one; each is tens of kilobytes) and go with it. The bucket is
versioned: a delete leaves a delete marker, and S3 expires the noncurrent version a day later
(infra/backups.py)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from functools import partial
from typing import Any

from kubestep import bootstrap, naming
from kubestep.aws import client
from kubestep.aws.errors import Kind, is_not_found
from kubestep.bootstrap import BootstrapParams, BundleRef
from kubestep.bootstrap import bundle as layout
from kubestep.flow.steps import step
from kubestep.resources.context import ClusterContext
from kubestep.resources.kind import MISSING, DeleteStep, Found, ResourceKind, Scope, exists
from kubestep.settings import Settings

# The object's metadata naming its cluster (S3 keeps the uid in the key; the sweep needs both).
CLUSTER_METADATA = "kubestep-cluster"


def bucket(settings: Settings) -> str:
    if not settings.backup_bucket:
        raise RuntimeError(
            "the management service has no bucket (KUBESTEP_BACKUP_BUCKET): deploy the current stack, "
            "whose instances fetch their bootstrap bundle from it"
        )
    return settings.backup_bucket


def ensure_bundle(ctx: ClusterContext, params: BootstrapParams) -> BundleRef:
    """The bundle of an instance of `params` in the bucket (uploaded unless already there)."""
    packed = bootstrap.render_bundle(params)
    name, key = bucket(ctx.settings), packed.key(ctx.uid)
    s3 = client("s3", ctx.settings.region)
    if not exists(partial(s3.head_object, Bucket=name, Key=key), Kind.S3_OBJECT):
        s3.put_object(
            Bucket=name,
            Key=key,
            Body=packed.data,
            ContentType="application/gzip",
            # S3 refuses the upload unless the bytes it stored have this digest.
            ChecksumSHA256=base64.b64encode(bytes.fromhex(packed.sha256)).decode(),
            Metadata={CLUSTER_METADATA: ctx.name},
        )
    return BundleRef(name, key, packed.sha256)


def _keys(s3: Any, name: str, prefix: str) -> Iterator[dict]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name, Prefix=prefix):
        yield from page.get("Contents", [])


@step
def delete_bootstrap_bundles(ctx: ClusterContext, scope: str) -> dict:
    """Every bundle of the cluster incarnation (its whole prefix: the incarnation, and so each of
    its bundles, is this cluster's alone, in a create's rollback as in a delete)."""
    if not ctx.settings.backup_bucket:
        return {"deleted": 0}
    name, s3 = ctx.settings.backup_bucket, client("s3", ctx.settings.region)
    keys = [o["Key"] for o in _keys(s3, name, layout.cluster_prefix(ctx.uid))]
    for key in keys:  # a few per cluster (one per replica and node pool spec it ran)
        s3.delete_object(Bucket=name, Key=key)
    return {"deleted": len(keys)}


def find_bundles(scope: Scope, uid: str | None) -> Iterator[Found]:
    """The bundles in the service's bucket (none without it), by the uid their key names."""
    if not scope.bucket:
        return
    s3 = scope.clients("s3")
    for listed in _keys(s3, scope.bucket, layout.cluster_prefix(uid) if uid else f"{layout.PREFIX}/"):
        owner = layout.uid_of(listed["Key"])
        if owner is None:
            continue
        metadata = s3.head_object(Bucket=scope.bucket, Key=listed["Key"]).get("Metadata", {})
        tags = {naming.TAG_CLUSTER: metadata.get(CLUSTER_METADATA, ""), naming.TAG_CLUSTER_UID: owner}
        tags = {k: v for k, v in tags.items() if v}
        detail = {"key": listed["Key"], "size": listed.get("Size")}
        yield Found(owner, listed["Key"], tags, listed.get("LastModified"), detail, tagged=False)


def bundle_drift(ctx: ClusterContext, found: dict[str, str]) -> dict[str, str]:
    """A bundle a replica's or a node pool's launch template names, gone: what that template
    launches cannot boot (the next update, or a repair, uploads it again)."""
    ec2, s3 = ctx.ec2, client("s3", ctx.settings.region)
    owners = [(f"replica-{m.index}", m.launch_template_id) for m in ctx.store.etcd.members(ctx.name)]
    owners += [(f"nodepool-{p.name}", p.launch_template_id) for p in ctx.store.node_pools.list(ctx.name)]
    drift = {}
    for owner, template_id in owners:
        if not template_id:
            continue
        try:
            versions = ec2.describe_launch_template_versions(LaunchTemplateId=template_id, Versions=["$Latest"])
        except Exception as exc:
            if is_not_found(exc, Kind.LAUNCH_TEMPLATE):
                continue  # the launch templates' kind reports it (with its bundle, it is made again)
            raise
        user_data = versions["LaunchTemplateVersions"][0]["LaunchTemplateData"].get("UserData")
        ref = layout.reference(user_data)
        if ref and not exists(partial(s3.head_object, Bucket=ref.bucket, Key=ref.key), Kind.S3_OBJECT):
            where = f"s3://{ref.bucket}/{ref.key}"
            drift[f"{owner}/bootstrap-bundle"] = f"{MISSING} from {where}: its instances cannot boot"
    return drift


KIND = ResourceKind(
    "bootstrapBundles",
    label="BootstrapBundle",
    find=find_bundles,
    ensure=("EnsureReplicaLaunchTemplate", "EnsureNodePoolLaunchTemplate"),
    delete=(DeleteStep(delete_bootstrap_bundles),),
    drift=bundle_drift,
    # The steps that make the launch templates upload a missing bundle again.
    blocks_updates=False,
)
