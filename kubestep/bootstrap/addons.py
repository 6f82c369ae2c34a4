"""What runs in the cluster besides kubeadm's own components, rendered from the params.

Applied once per Kubernetes version with `kubectl apply --server-side` (idempotent): at create
by the replica that initialised the cluster, after an upgrade by the first replica that finds
the whole control plane at the new version. The AWS cloud controller manager, the
cluster-admin binding for aws-iam-authenticator's admin group, the Role the join-token refresh
runs as, the AWS Node Termination Handler (queue mode) when a queue is given, and last the
`kubestep-addons` ConfigMap that records which version they match. Calico is fetched at boot
(pinned, checksummed; see components.py). The authenticator
itself is a static pod on every control-plane replica, so the API server's webhook always has a
local authenticator, with or without the cluster.

IMDS hop limit: nothing needs 2 hops. Every component that uses the instance's role (the cloud
controller manager, the termination handler; the authenticator only verifies presigned STS
URLs) runs with hostNetwork on the control plane, where IMDS is one hop away. Pods on the pod
network are meant NOT to reach IMDS credentials, which hop limit 1 ensures."""

from __future__ import annotations

from typing import Any

from kubestep.bootstrap import authenticator_mapping, components, paths, yaml_text
from kubestep.bootstrap.params import BootstrapParams

CLUSTER_ADMINS_GROUP = authenticator_mapping.GROUP
AUTHENTICATOR_CONFIG_IN_POD = "/etc/aws-iam-authenticator"
AUTHENTICATOR_MAPPING_IN_POD = f"{AUTHENTICATOR_CONFIG_IN_POD}/{paths.AUTHENTICATOR_MAPPING_FILE}"
# The identity the join-token refresh mints for itself from the cluster CA for each run.
BOOTSTRAP_TOKEN_MANAGER = "kubestep:bootstrap-token-manager"
ADDONS_CONFIG_MAP = "kubestep-addons"
CONTROL_PLANE_SELECTOR = {"node-role.kubernetes.io/control-plane": ""}
CONTROL_PLANE_TOLERATIONS = [
    {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"},
    # The cloud controller manager is what removes this taint, so it must tolerate it.
    {"key": "node.cloudprovider.kubernetes.io/uninitialized", "operator": "Exists", "effect": "NoSchedule"},
]


def _meta(name: str, namespace: str | None = "kube-system", **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/managed-by": "kubestep", **labels}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def _service_account_binding(kind: str, name: str, role: str, account: str) -> dict[str, Any]:
    binding: dict[str, Any] = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": _meta(name, "kube-system" if kind == "RoleBinding" else None),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role" if kind == "RoleBinding" else "ClusterRole",
            "name": role,
        },
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": "kube-system"}],
    }
    return binding


def cloud_controller_manager(p: BootstrapParams) -> list[dict[str, Any]]:
    """The external AWS cloud controller manager as a DaemonSet on the control plane (RBAC as in
    kubernetes/cloud-provider-aws's examples/existing-cluster). It finds the cluster's
    instances by their `kubernetes.io/cluster/<uid>` tag."""
    account = "cloud-controller-manager"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta("system:cloud-controller-manager", None),
        "rules": [
            _rule([""], ["events"], ["create", "patch", "update"]),
            _rule([""], ["nodes"], ["*"]),
            _rule([""], ["nodes/status"], ["patch"]),
            _rule([""], ["services"], ["list", "patch", "update", "watch"]),
            _rule([""], ["services/status"], ["list", "patch", "update", "watch"]),
            _rule([""], ["serviceaccounts"], ["create", "get", "list", "watch"]),
            _rule([""], ["persistentvolumes"], ["get", "list", "update", "watch"]),
            _rule([""], ["endpoints"], ["create", "get", "list", "watch", "update"]),
            _rule(["coordination.k8s.io"], ["leases"], ["create", "get", "list", "watch", "update"]),
            _rule([""], ["serviceaccounts/token"], ["create"]),
        ],
    }
    daemon_set = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": _meta("aws-cloud-controller-manager", **{"k8s-app": "aws-cloud-controller-manager"}),
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "aws-cloud-controller-manager"}},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": {"k8s-app": "aws-cloud-controller-manager"}},
                "spec": {
                    "nodeSelector": CONTROL_PLANE_SELECTOR,
                    "tolerations": CONTROL_PLANE_TOLERATIONS,
                    "serviceAccountName": account,
                    "priorityClassName": "system-node-critical",
                    # Host network: the instance role through IMDS with hop limit 1, and no
                    # dependency on the CNI (which needs initialised nodes to schedule).
                    "hostNetwork": True,
                    "containers": [
                        {
                            "name": "aws-cloud-controller-manager",
                            "image": components.cloud_controller_manager_image(p.minor),
                            "args": [
                                "--v=2",
                                "--cloud-provider=aws",
                                f"--cluster-name={p.uid}",
                                "--use-service-account-credentials=true",
                                # Calico VXLAN carries pod traffic: no VPC routes per node.
                                "--configure-cloud-routes=false",
                            ],
                            "resources": {"requests": {"cpu": "200m"}},
                        }
                    ],
                },
            },
        },
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(account)},
        role,
        _service_account_binding(
            "ClusterRoleBinding", "system:cloud-controller-manager", role["metadata"]["name"], account
        ),
        _service_account_binding(
            "RoleBinding",
            "cloud-controller-manager:apiserver-authentication-reader",
            "extension-apiserver-authentication-reader",
            account,
        ),
        daemon_set,
    ]


def node_termination_handler(p: BootstrapParams) -> list[dict[str, Any]]:
    """The AWS Node Termination Handler in queue-processor mode: it drains a node when its ASG's
    termination lifecycle hook message arrives, then completes the lifecycle action (RBAC as in
    the project's Helm chart). It only acts on instances tagged with this cluster's tag: a
    message for another cluster's instance is dropped (and deleted) as unmanaged, so the queue
    it reads must carry only this cluster's lifecycle messages."""
    assert p.node_termination_queue_url is not None
    account = "aws-node-termination-handler"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta(account, None),
        "rules": [
            _rule([""], ["nodes"], ["get", "list", "patch", "update"]),
            _rule([""], ["pods"], ["list", "get"]),
            _rule([""], ["pods/eviction"], ["create"]),
            _rule(["apps"], ["daemonsets"], ["get"]),
            _rule([""], ["events"], ["create", "patch"]),
        ],
    }
    env = {
        "ENABLE_SQS_TERMINATION_DRAINING": "true",
        "QUEUE_URL": p.node_termination_queue_url,
        "AWS_REGION": p.region,
        "CHECK_TAG_BEFORE_DRAINING": "true",
        "MANAGED_TAG": f"kubernetes.io/cluster/{p.uid}",
        # Nodes are found by the provider id the kubelet registers (aws:///<zone>/<instance>).
        "USE_PROVIDER_ID": "true",
        "DELETE_LOCAL_DATA": "true",
        "IGNORE_DAEMON_SETS": "true",
        "POD_TERMINATION_GRACE_PERIOD": "-1",
        "EMIT_KUBERNETES_EVENTS": "true",
        "ENABLE_PROMETHEUS_SERVER": "false",
        "ENABLE_PROBES_SERVER": "false",
        "JSON_LOGGING": "true",
    }
    container_env: list[dict[str, Any]] = [
        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ] + [{"name": k, "value": v} for k, v in env.items()]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(account, **{"k8s-app": account}),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"k8s-app": account}},
            "template": {
                "metadata": {"labels": {"k8s-app": account}},
                "spec": {
                    "nodeSelector": CONTROL_PLANE_SELECTOR,
                    "tolerations": CONTROL_PLANE_TOLERATIONS,
                    "serviceAccountName": account,
                    "priorityClassName": "system-cluster-critical",
                    # Host network: the control-plane role through IMDS with hop limit 1.
                    "hostNetwork": True,
                    "containers": [
                        {
                            "name": account,
                            "image": components.NODE_TERMINATION_HANDLER.reference,
                            "env": container_env,
                            "securityContext": {
                                "readOnlyRootFilesystem": True,
                                "runAsNonRoot": True,
                                "runAsUser": 1000,
                                "allowPrivilegeEscalation": False,
                            },
                            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}},
                        }
                    ],
                },
            },
        },
    }
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(account)},
        role,
        _service_account_binding("ClusterRoleBinding", account, account, account),
        deployment,
    ]


def cluster_admins_binding() -> list[dict[str, Any]]:
    """The group aws-iam-authenticator gives `adminIdentityARNs`, bound to cluster-admin (an RBAC
    binding rather than system:masters, so it can be revoked)."""
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta("kubestep-cluster-admins", None),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": CLUSTER_ADMINS_GROUP}],
        }
    ]


def bootstrap_token_manager() -> list[dict[str, Any]]:
    """What the join-token refresh may do: manage the Secrets in kube-system that hold bootstrap
    tokens (Secrets cannot be narrowed by type in RBAC); bound to the user it mints for itself,
    so it never depends on admin.conf, which expires."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(BOOTSTRAP_TOKEN_MANAGER),
        "rules": [_rule([""], ["secrets"], ["get", "list", "create", "update", "patch", "delete"])],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(BOOTSTRAP_TOKEN_MANAGER),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": BOOTSTRAP_TOKEN_MANAGER},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": BOOTSTRAP_TOKEN_MANAGER}],
    }
    return [role, binding]


def addons_record(p: BootstrapParams) -> list[dict[str, Any]]:
    """Applied last: the Kubernetes version the add-ons match (read back by the replicas to know
    whether an upgrade still owes the cluster its add-ons, and reported to the management service)."""
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(ADDONS_CONFIG_MAP), "data": {"version": p.version}}
    ]


def authenticator_config(p: BootstrapParams) -> dict[str, Any]:
    """aws-iam-authenticator's configuration: the cluster id is the uid (tokens carry it in the
    x-k8s-aws-id header), and the mapping is the DynamicFile the replica keeps from the cluster's
    administrators item (`authenticator_mapping`), reloaded by the authenticator when it changes.
    The upstream server takes that file's path from its configuration only (no flag)."""
    return {"clusterID": p.uid, "server": {"dynamicfilepath": AUTHENTICATOR_MAPPING_IN_POD}}


def authenticator_pod() -> dict[str, Any]:
    """A static pod on each control-plane replica, serving the API server's token webhook on
    127.0.0.1 only. Its certificate is generated on the instance before kubeadm runs, with the
    webhook kubeconfig the API server reads (`--kubeconfig-pregenerated`)."""
    volumes = [
        # The directory, not the files: a file replaced by rename on the host is seen in the pod
        # only through a directory mount (a file mount keeps the old inode).
        ("config", paths.AUTHENTICATOR_CONFIG_DIR, AUTHENTICATOR_CONFIG_IN_POD, True),
        ("state", paths.AUTHENTICATOR_STATE_DIR, "/var/aws-iam-authenticator", False),
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta("aws-iam-authenticator", **{"k8s-app": "aws-iam-authenticator"}),
        "spec": {
            "hostNetwork": True,
            "priorityClassName": "system-node-critical",
            "securityContext": {"runAsUser": 65532, "runAsGroup": 65532, "runAsNonRoot": True},
            "containers": [
                {
                    "name": "aws-iam-authenticator",
                    "image": components.AWS_IAM_AUTHENTICATOR.reference,
                    "args": [
                        "server",
                        f"--config={AUTHENTICATOR_CONFIG_IN_POD}/config.yaml",
                        "--state-dir=/var/aws-iam-authenticator",
                        "--kubeconfig-pregenerated=true",
                        "--address=127.0.0.1",
                        f"--port={components.AWS_IAM_AUTHENTICATOR_PORT}",
                        "--backend-mode=DynamicFile",
                    ],
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {"requests": {"cpu": "10m", "memory": "20Mi"}, "limits": {"memory": "64Mi"}},
                    "volumeMounts": [{"name": n, "mountPath": m, "readOnly": ro} for n, _, m, ro in volumes],
                }
            ],
            "volumes": [{"name": n, "hostPath": {"path": h, "type": "DirectoryOrCreate"}} for n, h, _, _ in volumes],
        },
    }


def authenticator_webhook_kubeconfig() -> dict[str, Any]:
    """The API server's webhook client config; the certificate is filled in on the instance."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "aws-iam-authenticator",
                "cluster": {
                    "certificate-authority-data": "@@AUTHENTICATOR_CA_DATA@@",
                    "server": f"https://127.0.0.1:{components.AWS_IAM_AUTHENTICATOR_PORT}/authenticate",
                },
            }
        ],
        "users": [{"name": "apiserver", "user": {}}],
        "contexts": [{"name": "webhook", "context": {"cluster": "aws-iam-authenticator", "user": "apiserver"}}],
        "current-context": "webhook",
    }


def encryption_configuration() -> dict[str, Any]:
    """Secrets encryption at rest with `secretbox` (XSalsa20-Poly1305), keyed by the
    control-plane secret's `encryptionKey`, which Secrets Manager encrypts with the service's KMS
    key. Chosen over a KMS v2 plugin: no third-party plugin in the API server's read path (a KMS
    outage or throttling cannot make Secrets unreadable), and no upstream-maintained AWS KMS v2
    provider image to trust. `identity` last only lets Secrets written before encryption was on
    be read. The key is filled in on the instance; it never appears in user-data."""
    return {
        "apiVersion": "apiserver.config.k8s.io/v1",
        "kind": "EncryptionConfiguration",
        "resources": [
            {
                "resources": ["secrets"],
                "providers": [
                    {"secretbox": {"keys": [{"name": "kubestep-1", "secret": "@@ENCRYPTION_KEY@@"}]}},
                    {"identity": {}},
                ],
            }
        ],
    }


def to_yaml(documents: list[dict[str, Any]]) -> str:
    return yaml_text.documents(documents)
