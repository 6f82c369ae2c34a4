"""kubeadm `v1beta4` configuration documents, rendered from the params.

Values only the instance knows (its IP, node name, instance id, the join token read from
Secrets Manager, etcd's initial cluster) are `@@NAME@@` placeholders: the bootstrap script
fills them from its variables when it writes the files (mode 0600: they hold the token).

Per-node etcd and kubelet settings go in kubeadm patches (`patches.directory`), which kubeadm
applies to what it generates on this node only. The ClusterConfiguration is cluster-wide:
joining replicas read it back from the cluster, so it holds nothing replica-specific; every
replica's stable name is in the etcd certificate SANs, and each replica's own etcd identity
(member name, advertised URLs, initial cluster) is appended to etcd's command line by its patch
(etcd takes the last value of a repeated flag)."""

from __future__ import annotations

import json
from typing import Any

from kubestep.bootstrap import paths, yaml_text
from kubestep.bootstrap.params import BootstrapParams

KUBEADM_API = "kubeadm.k8s.io/v1beta4"
KUBELET_API = "kubelet.config.k8s.io/v1beta1"
API_PORT = 6443
ETCD_PEER_PORT = 2380
ETCD_CLIENT_PORT = 2379
# A replica replaced with an empty etcd volume while an upgrade rolls joins the cluster at the
# cluster's (older) version with its newer kubelet, then upgrades the cluster with `kubeadm
# upgrade apply`; kubeadm's kubelet-newer-than-control-plane check would stop that join.
CONTROL_PLANE_JOIN_IGNORED_PREFLIGHT = ("KubeletVersion",)
# kubestep joins etcd itself, on the replica's stable name (kubeadm would register the member
# under the instance's address): kubeadm's etcd join is `etcd-join` while the
# ControlPlaneKubeletLocalMode feature gate is on (the default since Kubernetes 1.33), and
# `control-plane-join/etcd` without it. Both are skipped should a full `kubeadm join` ever run.
CONTROL_PLANE_JOIN_SKIPPED_PHASES = ("etcd-join", "control-plane-join/etcd")
# Control-plane nodes carry their replica index, so a replacement finds its predecessors' Nodes.
REPLICA_LABEL = "kubestep.io/replica"
NODE_JOIN_TOKEN_GROUP = "system:bootstrappers:kubeadm:default-node-token"


def placeholder(name: str) -> str:
    return f"@@{name}@@"


def _args(pairs: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in pairs]


def api_endpoint(p: BootstrapParams) -> str:
    return f"{p.endpoint}:443"


def kubelet_extra_args(p: BootstrapParams) -> list[dict[str, str]]:
    # The external AWS cloud controller manager initialises nodes (providerID, addresses,
    # zone labels); in-tree cloud providers are gone since Kubernetes 1.29.
    args = [("cloud-provider", "external"), ("node-ip", placeholder("PRIVATE_IP"))]
    labels = dict(p.node_labels)
    if p.is_control_plane:
        labels[REPLICA_LABEL] = str(p.replica_index)
    if labels:
        args.append(("node-labels", ",".join(f"{k}={v}" for k, v in sorted(labels.items()))))
    return _args(args)


def node_registration(p: BootstrapParams) -> dict[str, Any]:
    registration: dict[str, Any] = {
        # The EC2 private DNS name (IMDS local-hostname): what the AWS tooling expects a node's name to be.
        "name": placeholder("NODE_NAME"),
        "criSocket": paths.CRI_SOCKET,
        "kubeletExtraArgs": kubelet_extra_args(p),
    }
    if not p.is_control_plane:
        # Unset taints would be defaulted to the control-plane taint only on control-plane nodes;
        # nodes get exactly their pool's taints (kubelet --register-with-taints).
        registration["taints"] = [{"key": t.key, "value": t.value, "effect": t.effect} for t in p.node_taints]
    return registration


def cluster_configuration(p: BootstrapParams) -> dict[str, Any]:
    api_server_args = [("authentication-token-webhook-config-file", paths.AUTHENTICATOR_WEBHOOK_KUBECONFIG)]
    volumes = [
        {
            "name": "aws-iam-authenticator",
            "hostPath": paths.AUTHENTICATOR_WEBHOOK_DIR,
            "mountPath": paths.AUTHENTICATOR_WEBHOOK_DIR,
            "readOnly": True,
            "pathType": "DirectoryOrCreate",
        }
    ]
    if p.encrypt_secrets:
        api_server_args.append(("encryption-provider-config", paths.ENCRYPTION_CONFIG))
        volumes.append(
            {
                "name": "kubestep-encryption",
                "hostPath": paths.ENCRYPTION_DIR,
                "mountPath": paths.ENCRYPTION_DIR,
                "readOnly": True,
                "pathType": "DirectoryOrCreate",
            }
        )
    return {
        "apiVersion": KUBEADM_API,
        "kind": "ClusterConfiguration",
        "clusterName": p.cluster_name,
        "kubernetesVersion": f"v{p.version}",
        "controlPlaneEndpoint": api_endpoint(p),
        "certificatesDir": paths.PKI_DIR,
        # The key type of every key and certificate kubeadm makes on a replica (init, the join's
        # control-plane-prepare, a restart's `init phase certs`, `certs renew`): the cluster CA's
        # (pkiutil GeneratePrivateKey). Joining replicas read it back from kubeadm-config.
        "encryptionAlgorithm": p.encryption_algorithm,
        "networking": {"podSubnet": p.pod_cidr, "serviceSubnet": p.service_cidr, "dnsDomain": "cluster.local"},
        "etcd": {
            "local": {
                "dataDir": paths.ETCD_DATA_DIR,
                "extraArgs": _args([("initial-cluster-token", p.etcd_cluster_token)]),
                "serverCertSANs": list(p.replica_names),
                "peerCertSANs": list(p.replica_names),
            }
        },
        "apiServer": {
            "certSANs": [p.endpoint],
            "extraArgs": _args(api_server_args),
            "extraVolumes": volumes,
        },
    }


def init_configuration(p: BootstrapParams) -> dict[str, Any]:
    return {
        "apiVersion": KUBEADM_API,
        "kind": "InitConfiguration",
        # The node secret's token, so nodes can join as soon as init is done; the control
        # plane's token-refresh timer keeps re-registering it with a short TTL after that.
        "bootstrapTokens": [
            {
                "token": placeholder("BOOTSTRAP_TOKEN"),
                "description": "kubestep join token (node secret), refreshed by kubestep-token-refresh.timer",
                "ttl": "2h0m0s",
                "usages": ["signing", "authentication"],
                "groups": [NODE_JOIN_TOKEN_GROUP],
            }
        ],
        "nodeRegistration": node_registration(p),
        "localAPIEndpoint": {"advertiseAddress": placeholder("PRIVATE_IP"), "bindPort": API_PORT},
        "patches": {"directory": paths.KUBEADM_PATCHES_DIR},
    }


def kubelet_configuration() -> dict[str, Any]:
    """The cluster-wide kubelet configuration (kubeadm uploads it as the kubelet-config ConfigMap).
    The kubelet renews its own client certificate before it expires (kubeadm's default, stated
    so it cannot be lost)."""
    return {
        "apiVersion": KUBELET_API,
        "kind": "KubeletConfiguration",
        "cgroupDriver": "systemd",
        "rotateCertificates": True,
    }


def kubelet_patch(p: BootstrapParams) -> dict[str, Any]:
    """This node's own kubelet settings, merged by kubeadm into the cluster-wide configuration
    (`kubeletconfiguration` patch target): its provider id, the pool's maxPods and extras."""
    document: dict[str, Any] = {
        "apiVersion": KUBELET_API,
        "kind": "KubeletConfiguration",
        "providerID": f"aws:///{placeholder('AVAILABILITY_ZONE')}/{placeholder('INSTANCE_ID')}",
    }
    if p.max_pods is not None:
        document["maxPods"] = p.max_pods
    document.update(p.kubelet_settings)
    return document


def join_configuration(p: BootstrapParams) -> dict[str, Any]:
    registration = node_registration(p)
    document: dict[str, Any] = {
        "apiVersion": KUBEADM_API,
        "kind": "JoinConfiguration",
        "discovery": {
            "bootstrapToken": {
                "apiServerEndpoint": api_endpoint(p),
                "token": placeholder("BOOTSTRAP_TOKEN"),
                # Pins the cluster CA: a join never trusts whatever answers at the endpoint.
                "caCertHashes": [p.ca_cert_hash],
            }
        },
        "nodeRegistration": registration,
        "patches": {"directory": paths.KUBEADM_PATCHES_DIR},
    }
    if p.is_control_plane:
        registration["ignorePreflightErrors"] = list(CONTROL_PLANE_JOIN_IGNORED_PREFLIGHT)
        # No certificateKey: the CA material comes from the control-plane secret, never from
        # kubeadm's uploaded (2-hour) certificates.
        document["controlPlane"] = {
            "localAPIEndpoint": {"advertiseAddress": placeholder("PRIVATE_IP"), "bindPort": API_PORT}
        }
        document["skipPhases"] = list(CONTROL_PLANE_JOIN_SKIPPED_PHASES)
    return document


def upgrade_configuration(p: BootstrapParams) -> dict[str, Any]:
    """`kubeadm upgrade apply` (the first replica at a new version) and `kubeadm upgrade node`
    (the others): to this replica's version, with this node's patches (etcd's identity flags
    stay on its command line), renewing this node's certificates. `forceUpgrade` is what makes
    `upgrade apply` non-interactive with a config file (kubestep checks version skew itself)."""
    patches = {"directory": paths.KUBEADM_PATCHES_DIR}
    return {
        "apiVersion": KUBEADM_API,
        "kind": "UpgradeConfiguration",
        "apply": {
            "kubernetesVersion": f"v{p.version}",
            "forceUpgrade": True,
            "certificateRenewal": True,
            "etcdUpgrade": True,
            "patches": patches,
        },
        "node": {"certificateRenewal": True, "etcdUpgrade": True, "patches": patches},
    }


def etcd_identity_flags(p: BootstrapParams) -> dict[str, str]:
    """The replica's etcd identity, on its stable name: what kubestep records for the member.
    `initial-cluster` and `initial-cluster-state` are decided at boot (init: this member alone,
    `new`; join: the list `etcdctl member add` prints, `existing`)."""
    name = p.replica_name
    return {
        "name": name,
        "initial-advertise-peer-urls": f"https://{name}:{ETCD_PEER_PORT}",
        "advertise-client-urls": f"https://{name}:{ETCD_CLIENT_PORT}",
        "initial-cluster": placeholder("ETCD_INITIAL_CLUSTER"),
        "initial-cluster-state": placeholder("ETCD_INITIAL_CLUSTER_STATE"),
        "initial-cluster-token": p.etcd_cluster_token,
    }


def etcd_patch(p: BootstrapParams) -> list[dict[str, str]]:
    """A JSON patch appending the identity flags to etcd's static pod command (the cluster
    token is cluster-wide, in the ClusterConfiguration's etcd extraArgs)."""
    return [
        {"op": "add", "path": "/spec/containers/0/command/-", "value": f"--{flag}={value}"}
        for flag, value in etcd_identity_flags(p).items()
        if flag != "initial-cluster-token"
    ]


def init_documents(p: BootstrapParams) -> list[dict[str, Any]]:
    return [init_configuration(p), cluster_configuration(p), kubelet_configuration()]


def to_yaml(documents: list[dict[str, Any]]) -> str:
    return yaml_text.documents(documents)


def files(p: BootstrapParams) -> dict[str, str]:
    """Templates (under the templates dir) the script fills into KUBEADM_DIR at boot."""
    rendered = {
        "kubeadm/join.yaml": to_yaml([join_configuration(p)]),
        "kubeadm/patches/kubeletconfiguration+merge.json": json.dumps(kubelet_patch(p), indent=1) + "\n",
    }
    if p.is_control_plane:
        rendered["kubeadm/init.yaml"] = to_yaml(init_documents(p))
        rendered["kubeadm/upgrade.yaml"] = to_yaml([upgrade_configuration(p)])
        rendered["kubeadm/patches/etcd+json.json"] = json.dumps(etcd_patch(p), indent=1) + "\n"
    return rendered
