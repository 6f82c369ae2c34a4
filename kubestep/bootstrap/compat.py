"""DEPRECATED compatibility shim: the pre-issue-9 bootstrap, kept only so that
`resources/instances.py` (which still builds `BootstrapParams(secret_name=...)` and calls
`user_data(...)`) keeps working until the lead wires `render_user_data` and the new
`kubestep.bootstrap.BootstrapParams`. Delete this module then. Nothing new uses it: its script
has every flaw issue 9 lists (no CA pinning, `--upload-certs`, etcd on `lost+found`, ...)."""

from __future__ import annotations

import base64
import json
import shlex
from dataclasses import dataclass

from kubestep import versions

SCRIPT = r"""#!/bin/bash
# kubestep bootstrap: every phase reports its failure by name.
set -euo pipefail
# shellcheck source=/dev/null
source /etc/kubestep/bootstrap.env
PHASE=awscli
# Ubuntu 24.04 ships the AWS CLI as a snap (no awscli .deb); the report below needs it.
command -v aws >/dev/null || snap install aws-cli --classic
PHASE=start
report() {
  aws dynamodb put-item --region "$REGION" --table-name "$TABLE" --item \
    "{\"pk\":{\"S\":\"BOOTSTRAP#$UID_\"},\"sk\":{\"S\":\"$REPORT_KEY\"},\"status\":{\"S\":\"$1\"},\"instanceId\":{\"S\":\"$INSTANCE_ID\"},\"reportedAt\":{\"S\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}}"
}
trap 'report "failed:$PHASE"' ERR
TOKEN=$(curl -sfX PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300')
INSTANCE_ID=$(curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" http://169.254.169.254/latest/meta-data/instance-id)
if [ "$ROLE" = control-plane ]; then REPORT_KEY="REPLICA#$REPLICA"; else REPORT_KEY="NODE#$INSTANCE_ID"; fi

PHASE=packages
apt-get update -q
apt-get install -yq containerd curl gpg
mkdir -p /etc/apt/keyrings
curl -fsSL "https://pkgs.k8s.io/core:/stable:/v$MINOR/deb/Release.key" | gpg --dearmor -o /etc/apt/keyrings/kubernetes.gpg
echo "deb [signed-by=/etc/apt/keyrings/kubernetes.gpg] https://pkgs.k8s.io/core:/stable:/v$MINOR/deb/ /" > /etc/apt/sources.list.d/kubernetes.list
apt-get update -q
apt-get install -yq "kubelet=$VERSION-*" "kubeadm=$VERSION-*" "kubectl=$VERSION-*"
apt-mark hold kubelet kubeadm kubectl

if [ "$ROLE" = control-plane ]; then
  PHASE=etcd-volume
  # The replica's own etcd volume survives instance replacement; wait until it is free.
  for _ in $(seq 60); do
    aws ec2 attach-volume --region "$REGION" --volume-id "$ETCD_VOLUME_ID" --instance-id "$INSTANCE_ID" --device /dev/xvdf && break
    sleep 10
  done
  DEVICE=$(readlink -f "/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${ETCD_VOLUME_ID/-/}" || echo /dev/xvdf)
  for _ in $(seq 30); do [ -b "$DEVICE" ] && break; sleep 2; done
  blkid "$DEVICE" || mkfs.ext4 -L etcd "$DEVICE"
  mkdir -p /var/lib/etcd && mount "$DEVICE" /var/lib/etcd
fi

PHASE=secrets
SECRET=$(aws secretsmanager get-secret-value --region "$REGION" --secret-id "$SECRET_NAME" --query SecretString --output text)
BOOTSTRAP_TOKEN=$(echo "$SECRET" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
CERT_KEY=$(echo "$SECRET" | python3 -c 'import json,sys; print(json.load(sys.stdin)["certificateKey"])')

if [ "$ROLE" = control-plane ] && [ "$REPLICA" = 0 ] && [ ! -f /var/lib/etcd/member/snap/db ]; then
  PHASE=kubeadm-init
  kubeadm init --control-plane-endpoint "$ENDPOINT:443" --upload-certs --certificate-key "$CERT_KEY" \
    --token "$BOOTSTRAP_TOKEN" --pod-network-cidr "$POD_CIDR" --service-cidr "$SERVICE_CIDR" \
    --kubernetes-version "v$VERSION"
else
  PHASE=kubeadm-join
  # All replicas and nodes boot at once: joining waits for replica 0's API server behind the NLB.
  JOIN=(kubeadm join "$ENDPOINT:443" --token "$BOOTSTRAP_TOKEN" --discovery-token-unsafe-skip-ca-verification)
  if [ "$ROLE" = control-plane ]; then JOIN+=(--control-plane --certificate-key "$CERT_KEY"); fi
  for attempt in $(seq 40); do
    "${JOIN[@]}" && break
    [ "$attempt" = 40 ] && false
    kubeadm reset -f || true
    sleep 15
  done
fi
PHASE=report
report ok
"""


@dataclass(frozen=True)
class LegacyBootstrapParams:
    table: str
    region: str
    uid: str
    role: str
    version: str
    endpoint: str
    secret_name: str
    pod_cidr: str
    service_cidr: str
    replica: int | None = None
    etcd_volume_id: str | None = None


def render(params: LegacyBootstrapParams) -> str:
    _, minor, _ = versions.parse(params.version)
    env = {
        "TABLE": params.table,
        "REGION": params.region,
        "UID_": params.uid,
        "ROLE": params.role,
        "VERSION": params.version,
        "MINOR": f"1.{minor}",
        "ENDPOINT": params.endpoint,
        "SECRET_NAME": params.secret_name,
        "POD_CIDR": params.pod_cidr,
        "SERVICE_CIDR": params.service_cidr,
        "REPLICA": "" if params.replica is None else str(params.replica),
        "ETCD_VOLUME_ID": params.etcd_volume_id or "",
    }
    env_file = "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items())
    config = {
        "write_files": [
            {"path": "/etc/kubestep/bootstrap.env", "permissions": "0600", "content": env_file},
            {"path": "/usr/local/sbin/kubestep-bootstrap", "permissions": "0755", "content": SCRIPT},
        ],
        "runcmd": [["/usr/local/sbin/kubestep-bootstrap"]],
    }
    # JSON is valid YAML; cloud-init needs the `#cloud-config` header line.
    return "#cloud-config\n" + json.dumps(config, indent=1) + "\n"


def user_data(params: LegacyBootstrapParams) -> str:
    return base64.b64encode(render(params).encode()).decode()
