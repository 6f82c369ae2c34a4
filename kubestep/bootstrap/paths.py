"""Where things live on an instance (shared by the rendered documents and the shell script).

The etcd volume is mounted at ETCD_MOUNT and etcd's data dir is a subdirectory of it: a fresh
ext4 filesystem has `lost+found` at its root, which kubeadm's `DirAvailable` preflight check
refuses as a data dir."""

from __future__ import annotations

CONF_DIR = "/etc/kubestep"
ENV_FILE = f"{CONF_DIR}/bootstrap.env"
TEMPLATES_DIR = f"{CONF_DIR}/templates"
ADDONS_DIR = f"{CONF_DIR}/addons"
KUBEADM_DIR = f"{CONF_DIR}/kubeadm"
KUBEADM_PATCHES_DIR = f"{KUBEADM_DIR}/patches"
STATE_DIR = "/var/lib/kubestep"

BOOTSTRAP_SCRIPT = "/usr/local/sbin/kubestep-bootstrap"
# The user-data's one program: fetches, checks and unpacks the bundle, then runs the bootstrap.
LOADER_SCRIPT = "/usr/local/sbin/kubestep-loader"
ETCD_MEMBER_SCRIPT = "/usr/local/sbin/kubestep-etcd-member"
ETCD_SNAPSHOT_SCRIPT = "/usr/local/sbin/kubestep-etcd-snapshot"
WRITE_SECRETS_SCRIPT = "/usr/local/lib/kubestep/write-secrets.py"
# cloud-init runs the scripts here on every boot, the first included.
PER_BOOT_HOOK = "/var/lib/cloud/scripts/per-boot/kubestep-bootstrap"

ETCD_MOUNT = f"{STATE_DIR}/etcd-volume"
ETCD_DATA_DIR = f"{ETCD_MOUNT}/data"

KUBERNETES_DIR = "/etc/kubernetes"
PKI_DIR = f"{KUBERNETES_DIR}/pki"
CRI_SOCKET = "unix:///run/containerd/containerd.sock"

AUTHENTICATOR_CONFIG_DIR = f"{CONF_DIR}/aws-iam-authenticator"
# The administrators mapping the authenticator serves (its DynamicFile), in that directory.
AUTHENTICATOR_MAPPING_FILE = "admins.json"
AUTHENTICATOR_MAPPING = f"{AUTHENTICATOR_CONFIG_DIR}/{AUTHENTICATOR_MAPPING_FILE}"
AUTHENTICATOR_STATE_DIR = "/var/aws-iam-authenticator"
AUTHENTICATOR_WEBHOOK_DIR = f"{KUBERNETES_DIR}/aws-iam-authenticator"
AUTHENTICATOR_WEBHOOK_KUBECONFIG = f"{AUTHENTICATOR_WEBHOOK_DIR}/kubeconfig.yaml"
ENCRYPTION_DIR = f"{KUBERNETES_DIR}/encryption"
ENCRYPTION_CONFIG = f"{ENCRYPTION_DIR}/config.yaml"

SYSCTL_FILE = "/etc/sysctl.d/99-kubestep-kubernetes.conf"
MODULES_FILE = "/etc/modules-load.d/kubestep-kubernetes.conf"
KUBELET_ETCD_DROP_IN = "/etc/systemd/system/kubelet.service.d/20-kubestep-etcd-volume.conf"
SYSTEMD_DIR = "/etc/systemd/system"
BOOTSTRAP_COMPLETE = f"{STATE_DIR}/bootstrap-complete"
