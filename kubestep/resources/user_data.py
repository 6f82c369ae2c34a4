"""The bootstrap parameters of a cluster's instances (kubestep.bootstrap): only non-secret
values, from the cluster record, its etcd configuration and the network. The instances read
their key material from the secrets these name, with their own role."""

from __future__ import annotations

from kubestep import bootstrap, naming, pki
from kubestep.models import AWSCluster, AWSNodePool
from kubestep.resources import bootstrap_bundles, termination
from kubestep.resources.context import ClusterContext
from kubestep.store import Resource


def _common(ctx: ClusterContext, role: str, version: str) -> dict:
    record = ctx.record
    networking = ctx.spec.spec.networking
    node_secret = ctx.resource_id(Resource.NODE_SECRET)
    assert record.endpoint, "the load balancer step records the endpoint first"
    assert record.ca_cert_hash and node_secret, "the PKI step records the CA and the secrets first"
    return {
        "table": ctx.settings.table_name,
        "region": ctx.settings.region,
        "service_name": ctx.settings.service_name,
        "cluster_name": ctx.name,
        "uid": ctx.uid,
        "role": role,
        "version": version,
        "endpoint": record.endpoint,
        "ca_cert_hash": record.ca_cert_hash,
        "node_secret_arn": node_secret,
        "pod_cidr": networking.pod_address_cidr_blocks[0],
        "service_cidr": networking.service_address_cidr_blocks[0],
    }


def control_plane(ctx: ClusterContext, replica: int, volume_id: str, cluster: AWSCluster | None = None) -> str:
    """User-data of replica `replica` running `cluster` (default: the recorded spec)."""
    cluster = cluster or ctx.spec
    cp = cluster.spec.control_plane
    config = ctx.store.etcd.config(ctx.name)
    assert config is not None, "replicas are planned first"
    network = ctx.network
    assert network.hosted_zone_id and network.dns_domain
    # The script reads the init claim in its own partition: a claim from before must be there.
    ctx.store.reports.adopt_shared_partition_claim(ctx.uid)
    # The leaf key type follows the CA the cluster has, read off its certificate on the record
    # (the secret's own `ca.crt`, written by the PKI step): no field to migrate, and a cluster made
    # with RSA keys (before P-256) keeps rendering RSA-2048 through every upgrade and repair.
    assert ctx.record.cluster_ca_certificate, "the PKI step records the CA first"
    params = bootstrap.BootstrapParams(
        **_common(ctx, naming.ROLE_CONTROL_PLANE, cp.version),
        control_plane_secret_arn=ctx.resource_id(Resource.CONTROL_PLANE_SECRET),
        dns=bootstrap.DnsZone(network.hosted_zone_id, network.dns_domain),
        replica_index=replica,
        replica_count=config.members,
        etcd_volume_id=volume_id,
        # No administrators here: the replicas read them from the cluster's administrators item
        # (kubestep.resources.cluster_admins), so changing them replaces no instance.
        encrypt_secrets=cp.database_encryption.kms_key_arn is not None,
        encryption_algorithm=pki.encryption_algorithm(ctx.record.cluster_ca_certificate),
        node_termination_queue_url=termination.queue_url(ctx) if ctx.resource_id(Resource.TERMINATION_QUEUE) else None,
    )
    return bootstrap.render_user_data(params, bootstrap_bundles.ensure_bundle(ctx, params))


def node(ctx: ClusterContext, pool: AWSNodePool) -> str:
    spec = pool.spec
    params = bootstrap.BootstrapParams(
        **_common(ctx, naming.ROLE_NODE, spec.version),
        node_labels=dict(spec.labels),
        node_taints=tuple(bootstrap.Taint(t.key, t.value, t.effect) for t in spec.taints),
        max_pods=spec.max_pods_per_node,
    )
    return bootstrap.render_user_data(params, bootstrap_bundles.ensure_bundle(ctx, params))
