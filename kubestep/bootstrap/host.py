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


def _oneshot(description: str, command: str, after: str = "kubelet.service") -> str:
    # Only once the bootstrap succeeded: before that the boot itself reports, and a failed boot's
    # report must stay as it is.
    return f"""[Unit]
Description=kubestep: {description}
After={after}
ConditionPathExists={paths.BOOTSTRAP_COMPLETE}

[Service]
Type=oneshot
ExecStart={command}
"""


def _timer(description: str, schedule: str, *, enabled: bool = True) -> str:
    install = "\n[Install]\nWantedBy=timers.target\n" if enabled else ""
    return f"""[Unit]
Description=kubestep: {description}

[Timer]
{schedule}
{install}"""


# A replica's report must show the whole control plane (every planned etcd member started, etcd
# healthy, its API server ready) before the management service's gate lets the cluster run. A
# replica that reported while later replicas were still joining would otherwise wait for its
# minute timer to say so; while its own report falls short, the script starts this timer, which
# runs the same report service 10 s after each run, and stops it once the report is whole.
# Both timers count from the service's last run (OnUnitActiveSec), so the minute timer never
# fires while this one runs. Not enabled: only the report starts it.
REPORT_SOON_SECONDS = 10
REPORT_SOON_ACCURACY_SECONDS = 1
REPORT_SOON_TIMER = (
    f"OnActiveSec={REPORT_SOON_SECONDS}s\nOnUnitActiveSec={REPORT_SOON_SECONDS}s\n"
    f"AccuracySec={REPORT_SOON_ACCURACY_SECONDS}s\nUnit=kubestep-report.service"
)
# The minute timer's window: systemd lets it elapse up to this long after it is due (AccuracySec).
REPORT_ACCURACY_SECONDS = 5
REPORT_TIMER = f"OnBootSec=2min\nOnUnitActiveSec=60s\nAccuracySec={REPORT_ACCURACY_SECONDS}s"

# The backup timer looks every minute; the policy item (its interval, `requestedAt`) decides
# whether a snapshot is due, so a changed interval or a backup asked for now needs no new
# instance, and `kubestep backup cluster` is taken within a minute.
BACKUP_TIMER = "OnBootSec=3min\nOnUnitActiveSec=60s\nAccuracySec=5s"


def systemd_units(p: BootstrapParams) -> dict[str, str]:
    """Unit file name -> content, under /etc/systemd/system. Every instance reports every minute
    (live state for the management service's gate), a replica every 10 s while its report falls
    short of the whole control plane (`REPORT_SOON_TIMER`). Control-plane replicas also keep the join
    tokens the node secret lists registered (every 15 minutes: a rotated token is accepted
    within 15 minutes, a dropped one refused within its two-hour TTL) and renew kubeadm's
    certificates before they expire (daily, each replica at its own hour, so two replicas never
    restart their control plane at once), and look every minute whether an etcd backup is due
    (only the etcd leader takes one)."""
    units = {
        "kubestep-report.service": _oneshot("report this instance's health", f"{paths.BOOTSTRAP_SCRIPT} report"),
        "kubestep-report.timer": _timer("report this instance's health every minute", REPORT_TIMER),
    }
    if not p.is_control_plane:
        return units
    assert p.replica_index is not None
    hour = (2 + 3 * p.replica_index) % 24
    units |= {
        "kubestep-report-soon.timer": _timer(
            "report again every 10 s while this replica's report falls short of the whole control plane",
            REPORT_SOON_TIMER,
            enabled=False,
        ),
        "kubestep-token-refresh.service": _oneshot(
            "register the node secret's join tokens in the cluster", f"{paths.BOOTSTRAP_SCRIPT} refresh-tokens"
        ),
        "kubestep-token-refresh.timer": _timer(
            "refresh the join tokens every 15 minutes", "OnBootSec=5min\nOnUnitActiveSec=15min"
        ),
        "kubestep-certs-renew.service": _oneshot(
            "renew kubeadm's certificates before they expire", f"{paths.BOOTSTRAP_SCRIPT} renew-certificates"
        ),
        "kubestep-certs-renew.timer": _timer(
            "renew kubeadm's certificates 90 days before they expire",
            f"OnCalendar=*-*-* {hour:02d}:17:00 UTC\nPersistent=true",
        ),
        "kubestep-backup.service": _oneshot(
            "the etcd leader's snapshot to S3, when the backup policy says one is due",
            f"{paths.BOOTSTRAP_SCRIPT} backup",
        ),
        "kubestep-backup.timer": _timer("look every minute whether an etcd backup is due", BACKUP_TIMER),
    }
    return units
