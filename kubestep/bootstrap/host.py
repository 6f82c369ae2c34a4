"""Host configuration files: containerd, kernel modules and sysctls, systemd units.

cloud-init writes them (write_files) before the bootstrap script runs, in their final places,
so they persist across reboots; the script loads them (modprobe, sysctl --system) and restarts
containerd once its package is installed."""

from __future__ import annotations

from kubestep.bootstrap import components, paths
from kubestep.bootstrap.params import BootstrapParams

# overlay: containerd's snapshotter; br_netfilter: bridged pod traffic through iptables.
KERNEL_MODULES = ("overlay", "br_netfilter")
# kubeadm's preflight requires ip_forward; kube-proxy and Calico need bridged traffic to pass
# through iptables (IPv4 and IPv6).
SYSCTLS = {
    "net.ipv4.ip_forward": "1",
    "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1",
}


def containerd_config(p: BootstrapParams) -> str:
    """containerd's CRI settings (config format version 2, which containerd 1.7 and 2.x read):
    the systemd cgroup driver, as kubeadm configures the kubelet, and the sandbox image the
    installed kubeadm expects."""
    return f"""# Written by kubestep before kubeadm runs (Kubernetes {p.version}).
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{components.pause_image(p.minor)}"

[plugins."io.containerd.grpc.v1.cri".containerd]
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = true

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/opt/cni/bin"
  conf_dir = "/etc/cni/net.d"
"""


def modules_load() -> str:
    return "".join(f"{module}\n" for module in KERNEL_MODULES)


def sysctl_conf() -> str:
    return "".join(f"{key} = {value}\n" for key, value in SYSCTLS.items())


def kubelet_etcd_volume_drop_in() -> str:
    # After a reboot the kubelet (and so etcd's static pod) waits for the etcd volume: with the
    # fstab entry's `nofail` the host still boots if the volume is missing, but etcd never starts
    # on an empty directory of the root disk.
    return f"[Unit]\nRequiresMountsFor={paths.ETCD_MOUNT}\n"


def token_refresh_service() -> str:
    return f"""[Unit]
Description=kubestep: keep the node secret's join token registered in the cluster
After=kubelet.service
ConditionPathExists={paths.KUBERNETES_DIR}/admin.conf

[Service]
Type=oneshot
ExecStart={paths.TOKEN_REFRESH_SCRIPT}
"""


def token_refresh_timer() -> str:
    # The token is registered with a 2-hour TTL and re-registered every 30 minutes by every
    # replica: a node joining days later still joins; a rotated secret value takes over within 30 min.
    return """[Unit]
Description=kubestep: refresh the join token every 30 minutes

[Timer]
OnBootSec=5min
OnUnitActiveSec=30min

[Install]
WantedBy=timers.target
"""
