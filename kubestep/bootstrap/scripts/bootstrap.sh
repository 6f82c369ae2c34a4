#!/bin/bash
# kubestep bootstrap: makes this Ubuntu 24.04 instance a control-plane replica or a node of its
# cluster. cloud-init runs it on every boot: the first boot bootstraps; a later boot remounts the
# etcd volume, re-registers the replica's DNS name and reports health again.
#
# Every phase reports its failure by name (`failed:<phase>`) to the management service's table;
# the last thing a boot does is its report (`ok` with the checks it made).
#
# KUBESTEP_ROOT prefixes every file this script reads or writes, so the test suite runs it
# unprivileged in a temporary directory with recording stubs of the system commands on PATH.
set -Eeuo pipefail
umask 022
ROOT=${KUBESTEP_ROOT:-}
CONF=$ROOT/etc/kubestep
STATE=$ROOT/var/lib/kubestep
# shellcheck source=/dev/null
source "$CONF/bootstrap.env"
# The AWS CLI snap installs into /snap/bin, which cloud-init's PATH may lack.
PATH=$PATH:$ROOT/snap/bin
# Bounded waits, in attempts 10 s apart (the tests shorten them).
HEALTH_ATTEMPTS=${KUBESTEP_HEALTH_ATTEMPTS:-60}
WAIT_ATTEMPTS=${KUBESTEP_WAIT_ATTEMPTS:-240}
NODE_JOIN_ATTEMPTS=${KUBESTEP_NODE_JOIN_ATTEMPTS:-20}

IMDS=http://169.254.169.254/latest
PKI=$ROOT/etc/kubernetes/pki
ADMIN_KUBECONFIG=$ROOT/etc/kubernetes/admin.conf
KUBEADM_DIR=$CONF/kubeadm
PHASE=start
INSTANCE_ID=unknown
REPORT_KEY=
INSTALLED_VERSION=
CHECKS=

# Values only the templates use (fill reads them by name).
template_value() { printf -v "$1" '%s' "$2"; }

log() { printf 'kubestep-bootstrap [%s]: %s\n' "$PHASE" "$*" >&2; }

retry() { # retry ATTEMPTS DELAY COMMAND...: run COMMAND until it succeeds, at most ATTEMPTS times
  local attempts=$1 delay=$2 n
  shift 2
  for ((n = 1; ; n++)); do
    "$@" && return 0
    ((n < attempts)) || return 1
    sleep "$delay"
  done
}

# ---------------------------------------------------------------- reporting

report() { # report STATUS: the bootstrap report item (docs/contracts.md), with the checks made
  local status=$1 item
  item="{\"pk\":{\"S\":\"$REPORT_PK\"},\"sk\":{\"S\":\"$REPORT_KEY\"},\"status\":{\"S\":\"$status\"}"
  item+=",\"instanceId\":{\"S\":\"$INSTANCE_ID\"},\"reportedAt\":{\"S\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}"
  if [ -n "$INSTALLED_VERSION" ]; then item+=",\"version\":{\"S\":\"$INSTALLED_VERSION\"}"; fi
  if [ -n "$CHECKS" ]; then item+=",\"checks\":{\"M\":$CHECKS}"; fi
  item+="}"
  retry 5 3 aws dynamodb put-item --region "$REGION" --table-name "$TABLE" --item "$item"
}

on_error() {
  local rc=$?
  # In a subshell ($(...)), let the main shell report once.
  if [ "$BASHPID" != "$$" ]; then return "$rc"; fi
  trap - ERR
  log "failed with exit status $rc"
  if mkdir -p "$STATE"; then echo "$PHASE" >"$STATE/failed-phase" || true; fi
  report "failed:$PHASE" || log "could not write the failure report"
  exit "$rc"
}

# ---------------------------------------------------------------- instance facts

imds() { curl -sf --retry 5 -H "X-aws-ec2-metadata-token: $IMDS_TOKEN" "$IMDS/meta-data/$1"; }

read_metadata() {
  IMDS_TOKEN=$(curl -sf --retry 5 -X PUT "$IMDS/api/token" -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600')
  local instance_id
  instance_id=$(imds instance-id)
  INSTANCE_ID=$instance_id
  PRIVATE_IP=$(imds local-ipv4)
  NODE_NAME=$(imds local-hostname)
  template_value AVAILABILITY_ZONE "$(imds placement/availability-zone)"
  if [ "$ROLE" = control-plane ]; then
    REPORT_KEY="$REPLICA_REPORT_PREFIX$REPLICA_INDEX"
  else
    REPORT_PK="$NODE_REPORT_PK_PREFIX$INSTANCE_ID"
    REPORT_KEY="$NODE_REPORT_PREFIX$INSTANCE_ID"
  fi
}

# ---------------------------------------------------------------- host

load_kernel_settings() {
  # The files themselves (modules-load.d, sysctl.d) persist; cloud-init wrote them.
  modprobe overlay
  modprobe br_netfilter
  sysctl --system >/dev/null
}

apt_get() {
  # Waits for the dpkg lock, which unattended-upgrades may hold right after first boot.
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=5 -q -y "$@"
}

install_packages() {
  local keyring=$ROOT/etc/apt/keyrings/kubernetes.gpg repo="https://pkgs.k8s.io/core:/stable:/v$KUBERNETES_MINOR/deb/"
  retry 5 10 apt_get update
  retry 3 10 apt_get install containerd curl gpg ca-certificates
  mkdir -p "$(dirname "$keyring")"
  retry 5 10 curl -fsSL -o "$STATE/kubernetes-release.key" "${repo}Release.key"
  gpg --batch --yes --dearmor -o "$keyring" "$STATE/kubernetes-release.key"
  mkdir -p "$ROOT/etc/apt/sources.list.d"
  echo "deb [signed-by=/etc/apt/keyrings/kubernetes.gpg] $repo /" >"$ROOT/etc/apt/sources.list.d/kubernetes.list"
  retry 5 10 apt_get update
  local packages=("kubelet=$KUBERNETES_VERSION-*" "kubeadm=$KUBERNETES_VERSION-*" "kubectl=$KUBERNETES_VERSION-*")
  # etcdctl, for membership changes and the health report.
  if [ "$ROLE" = control-plane ]; then packages+=(etcd-client); fi
  retry 3 10 apt_get install "${packages[@]}"
  apt-mark hold kubelet kubeadm kubectl
  INSTALLED_VERSION=$(kubelet --version)
  INSTALLED_VERSION=${INSTALLED_VERSION#Kubernetes v}
}

configure_containerd() {
  # SystemdCgroup and the sandbox image, before kubeadm starts anything (installed after the
  # package, so no dpkg conffile question can stop the boot).
  install -D -m 0644 "$CONF/containerd-config.toml" "$ROOT/etc/containerd/config.toml"
  systemctl enable containerd
  systemctl restart containerd
}

# ---------------------------------------------------------------- etcd volume (control plane)

volume_attached_here() {
  local out state owner
  out=$(aws ec2 describe-volumes --region "$REGION" --volume-ids "$ETCD_VOLUME_ID" \
    --query 'Volumes[0].[State, Attachments[0].InstanceId]' --output text) || return 1
  read -r state owner <<<"$out"
  if [ "$owner" = "$INSTANCE_ID" ]; then return 0; fi
  # In use by a predecessor that is still terminating: wait for it to be released.
  if [ "$state" = available ]; then
    aws ec2 attach-volume --region "$REGION" --volume-id "$ETCD_VOLUME_ID" \
      --instance-id "$INSTANCE_ID" --device /dev/xvdf >/dev/null || true
  fi
  return 1
}

volume_device() {
  # Nitro instances expose EBS volumes as NVMe devices named by volume id; Xen ones as xvdf.
  local link="$ROOT/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_${ETCD_VOLUME_ID//-/}"
  if [ -e "$link" ]; then
    readlink -f "$link"
  elif [ -e "$ROOT/dev/xvdf" ]; then
    echo "$ROOT/dev/xvdf"
  else
    return 1
  fi
}

mount_etcd_volume() {
  local device fstype rc=0 uuid fstab=$ROOT/etc/fstab
  retry 60 10 volume_attached_here
  device=$(retry 60 5 volume_device)
  fstype=$(blkid -p -o value -s TYPE "$device") || rc=$?
  case "$rc:$fstype" in
    0:ext4) ;;
    2:) mkfs.ext4 -q -L kubestep-etcd "$device" ;; # blkid found no filesystem: a new volume
    *) log "etcd volume $ETCD_VOLUME_ID ($device): unexpected filesystem '$fstype' (blkid exit $rc)"; return 1 ;;
  esac
  uuid=$(blkid -p -o value -s UUID "$device")
  # By filesystem UUID (device names change across instance types), nofail: a missing volume
  # must not stop the host from booting; the kubelet's drop-in waits for the mount instead.
  touch "$fstab"
  sed -i "\\|[[:space:]]${ETCD_MOUNT}[[:space:]]|d" "$fstab"
  echo "UUID=$uuid $ETCD_MOUNT ext4 defaults,nofail,x-systemd.device-timeout=90s 0 2" >>"$fstab"
  systemctl daemon-reload
  mkdir -p "$ROOT$ETCD_MOUNT"
  mountpoint -q "$ROOT$ETCD_MOUNT" || mount "$ROOT$ETCD_MOUNT"
  chmod 0700 "$ROOT$ETCD_MOUNT"
}

remount_etcd_volume() {
  mountpoint -q "$ROOT$ETCD_MOUNT" || mount "$ROOT$ETCD_MOUNT"
}

# ---------------------------------------------------------------- stable identity (control plane)

upsert_dns_record() {
  local change change_id
  change="{\"Comment\":\"kubestep $CLUSTER_UID replica $REPLICA_INDEX ($INSTANCE_ID)\",\"Changes\":[{\"Action\":\"UPSERT\""
  change+=",\"ResourceRecordSet\":{\"Name\":\"$REPLICA_NAME\",\"Type\":\"A\",\"TTL\":30"
  change+=",\"ResourceRecords\":[{\"Value\":\"$PRIVATE_IP\"}]}}]}"
  change_id=$(retry 5 5 aws route53 change-resource-record-sets --region "$REGION" --hosted-zone-id "$HOSTED_ZONE_ID" \
    --change-batch "$change" --query ChangeInfo.Id --output text)
  retry 5 5 aws route53 wait resource-record-sets-changed --region "$REGION" --id "$change_id"
}

# ---------------------------------------------------------------- secrets

secret_string() { aws secretsmanager get-secret-value --region "$REGION" --secret-id "$1" --query SecretString --output text; }

read_join_token() {
  BOOTSTRAP_TOKEN=$(secret_string "$NODE_SECRET_ARN" | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
  if [[ ! $BOOTSTRAP_TOKEN =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]]; then
    log "the node secret's token is not a kubeadm bootstrap token"
    return 1
  fi
}

place_control_plane_secrets() {
  # The cluster's CAs and service-account keys (kubeadm then signs every leaf certificate
  # itself), and the Secrets encryption key; straight from Secrets Manager to files, through a pipe.
  secret_string "$CONTROL_PLANE_SECRET_ARN" |
    python3 "$ROOT/usr/local/lib/kubestep/write-secrets.py" "$PKI" "$ENCRYPT_SECRETS" \
      "$CONF/templates/encryption-config.yaml" "$ROOT/etc/kubernetes/encryption/config.yaml"
}

# ---------------------------------------------------------------- configuration files

fill() { # fill TEMPLATE DEST MODE: TEMPLATE with every @@NAME@@ replaced by the variable NAME
  local text name
  text=$(<"$1")
  while [[ $text =~ @@([A-Z_]+)@@ ]]; do
    name=${BASH_REMATCH[1]}
    if [ -z "${!name+set}" ]; then
      log "no value for @@$name@@ in $1"
      return 1
    fi
    text=${text//"@@$name@@"/"${!name}"}
  done
  mkdir -p "$(dirname "$2")"
  install -m "$3" /dev/null "$2"
  printf '%s\n' "$text" >"$2"
}

write_kubeadm_configs() { # mode 0600: they hold the join token
  local name
  for name in join.yaml init.yaml patches/kubeletconfiguration+merge.json; do
    if [ -f "$CONF/templates/kubeadm/$name" ]; then fill "$CONF/templates/kubeadm/$name" "$KUBEADM_DIR/$name" 0600; fi
  done
}

write_etcd_patch() { # after ETCD_INITIAL_CLUSTER and ETCD_INITIAL_CLUSTER_STATE are decided
  fill "$CONF/templates/kubeadm/patches/etcd+json.json" "$KUBEADM_DIR/patches/etcd+json.json" 0600
}

prepare_authenticator() {
  # The webhook's serving certificate, and the API server's kubeconfig that trusts it, exist
  # before kubeadm starts the API server; the authenticator static pod serves with them.
  local state=$ROOT/var/aws-iam-authenticator
  mkdir -p "$state"
  if [ ! -s "$state/key.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj /CN=aws-iam-authenticator \
      -addext subjectAltName=IP:127.0.0.1 -keyout "$state/key.pem" -out "$state/cert.pem" 2>/dev/null
  fi
  chmod 0600 "$state/key.pem"
  chown 65532:65532 "$state" "$state/key.pem" "$state/cert.pem" # the image's non-root user
  template_value AUTHENTICATOR_CA_DATA "$(base64 -w0 <"$state/cert.pem")"
  fill "$CONF/templates/authenticator-webhook.kubeconfig" "$ROOT/etc/kubernetes/aws-iam-authenticator/kubeconfig.yaml" 0644
}

start_authenticator() {
  mkdir -p "$ROOT/etc/kubernetes/manifests"
  install -m 0644 "$CONF/aws-iam-authenticator/pod.yaml" "$ROOT/etc/kubernetes/manifests/aws-iam-authenticator.yaml"
}

# ---------------------------------------------------------------- initialise exactly once

init_key() { echo "{\"pk\":{\"S\":\"$INIT_CLAIM_PK\"},\"sk\":{\"S\":\"$INIT_CLAIM_SK\"}}"; }

claim_initialisation() {
  # The registry decides, never the instance's own disk: a conditional put on the init claim item.
  # An initialised cluster's claim is final (the role may then only read it): nothing to claim.
  local out item
  if cluster_initialized; then return 1; fi
  item="{\"pk\":{\"S\":\"$INIT_CLAIM_PK\"},\"sk\":{\"S\":\"$INIT_CLAIM_SK\"},\"status\":{\"S\":\"initializing\"}"
  item+=",\"replica\":{\"N\":\"$REPLICA_INDEX\"},\"instanceId\":{\"S\":\"$INSTANCE_ID\"}"
  item+=",\"claimedAt\":{\"S\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}}"
  if out=$(aws dynamodb put-item --region "$REGION" --table-name "$TABLE" --item "$item" \
    --condition-expression 'attribute_not_exists(pk)' 2>&1); then
    return 0
  elif [[ $out == *ConditionalCheckFailedException* ]]; then
    return 1
  fi
  log "$out"
  return 2
}

read_init_state() { # sets INIT_STATUS and INIT_REPLICA from the claim item
  local out
  out=$(aws dynamodb get-item --region "$REGION" --table-name "$TABLE" --consistent-read \
    --key "$(init_key)" --query 'Item.[status.S, replica.N]' --output text)
  read -r INIT_STATUS INIT_REPLICA <<<"$out"
}

cluster_initialized() {
  read_init_state
  [ "$INIT_STATUS" = initialized ]
}

mark_initialized() {
  aws dynamodb update-item --region "$REGION" --table-name "$TABLE" --key "$(init_key)" \
    --update-expression 'SET #s = :s, initializedAt = :t' --expression-attribute-names '{"#s":"status"}' \
    --expression-attribute-values "{\":s\":{\"S\":\"initialized\"},\":t\":{\"S\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"}}"
}

decide_mode() { # sets MODE (init | join | restart) and APPLIES_ADDONS
  local claim=0
  APPLIES_ADDONS=false
  if [ -d "$ROOT$ETCD_DATA_DIR/member" ]; then
    # The volume holds this member's data: restart as the same member, no membership change.
    MODE=restart
    read_init_state
    if [ "$INIT_STATUS" != initialized ] && [ "$INIT_REPLICA" = "$REPLICA_INDEX" ]; then APPLIES_ADDONS=true; fi
    return 0
  fi
  claim_initialisation || claim=$?
  case $claim in
    0) MODE=init ;;
    1)
      read_init_state
      if [ "$INIT_STATUS" != initialized ] && [ "$INIT_REPLICA" = "$REPLICA_INDEX" ]; then
        # This replica's predecessor claimed and died before etcd held any data. The CAs come
        # from the secret, so initialising again recreates the same cluster identity; nobody
        # joined yet (joins wait for `initialized`).
        MODE=init
      else
        MODE='join'
      fi
      ;;
    *) return 1 ;;
  esac
  if [ "$MODE" = init ]; then APPLIES_ADDONS=true; fi
}

# ---------------------------------------------------------------- control plane

etcd_peer_endpoints() { # the other replicas' client URLs
  local name endpoints=()
  for name in $REPLICA_NAMES; do
    if [ "$name" != "$REPLICA_NAME" ]; then endpoints+=("https://$name:2379"); fi
  done
  local IFS=,
  echo "${endpoints[*]}"
}

etcd_join_membership() {
  # A fresh member: drop whatever is registered under this replica's peer URL (a predecessor
  # whose volume was lost), add this one, and start etcd with the list etcd printed.
  local initial_cluster
  initial_cluster=$(ETCDCTL_API=3 ETCDCTL_ENDPOINTS=$(etcd_peer_endpoints) \
    ETCDCTL_CACERT=$PKI/etcd/ca.crt ETCDCTL_CERT=$PKI/apiserver-etcd-client.crt ETCDCTL_KEY=$PKI/apiserver-etcd-client.key \
    "$ROOT/usr/local/sbin/kubestep-etcd-member" join "$REPLICA_NAME" "https://$REPLICA_NAME:2380") || return 1
  template_value ETCD_INITIAL_CLUSTER "$initial_cluster"
}

api_reachable() { curl -sfk --max-time 10 "https://$ENDPOINT:443/readyz" >/dev/null; }

# This replica's own API server (its certificate names the private IP), not the load balancer,
# which sends traffic only once the target's health checks pass.
kctl() { kubectl --kubeconfig "$ADMIN_KUBECONFIG" --server "https://$PRIVATE_IP:6443" "$@"; }

local_api_ready() { [ "$(kctl get --raw=/readyz 2>/dev/null)" = ok ]; }

bootstrap_control_plane() {
  local init_config=$KUBEADM_DIR/init.yaml
  PHASE=kubeadm-config
  write_kubeadm_configs
  PHASE=decide
  decide_mode
  log "mode $MODE"
  case $MODE in
    init)
      template_value ETCD_INITIAL_CLUSTER "$REPLICA_NAME=https://$REPLICA_NAME:2380"
      template_value ETCD_INITIAL_CLUSTER_STATE new
      write_etcd_patch
      PHASE=kubeadm-init
      kubeadm init --config "$init_config"
      ;;
    join)
      PHASE=wait-initialized
      retry "$WAIT_ATTEMPTS" 10 cluster_initialized
      retry "$WAIT_ATTEMPTS" 10 api_reachable
      PHASE=etcd-member
      kubeadm init phase certs apiserver-etcd-client --config "$init_config"
      retry 30 10 etcd_join_membership
      template_value ETCD_INITIAL_CLUSTER_STATE existing
      write_etcd_patch
      PHASE=kubeadm-join
      # etcd's manifest first (kubeadm's own etcd join phase is skipped: it would register the
      # member under this instance's IP instead of the replica's stable name).
      kubeadm init phase etcd local --config "$init_config"
      kubeadm join --config "$KUBEADM_DIR/join.yaml"
      ;;
    restart)
      # Same member, same data: regenerate this host's certificates, kubeconfigs and static
      # pods from the CAs; etcd starts from its data dir and catches up with its peers.
      template_value ETCD_INITIAL_CLUSTER "$REPLICA_NAME=https://$REPLICA_NAME:2380"
      template_value ETCD_INITIAL_CLUSTER_STATE existing
      write_etcd_patch
      PHASE=kubeadm-restart
      kubeadm init phase certs all --config "$init_config"
      kubeadm init phase kubeconfig all --config "$init_config"
      kubeadm init phase etcd local --config "$init_config"
      kubeadm init phase control-plane all --config "$init_config"
      kubeadm init phase kubelet-start --config "$init_config"
      retry "$WAIT_ATTEMPTS" 10 local_api_ready
      kubeadm init phase mark-control-plane --config "$init_config"
      ;;
  esac
  PHASE=aws-iam-authenticator
  start_authenticator
  if [ "$APPLIES_ADDONS" = true ]; then apply_addons; fi
  PHASE=token-refresh
  systemctl daemon-reload
  systemctl enable --now kubestep-token-refresh.timer
}

# ---------------------------------------------------------------- cluster add-ons (once)

install_calico() {
  local manifest=$STATE/calico-vxlan.yaml
  retry 5 10 curl -fsSL -o "$manifest" "$CALICO_MANIFEST_URL"
  echo "$CALICO_MANIFEST_SHA256  $manifest" | sha256sum --check --quiet
  # VXLAN always (never native routing: the VPC would drop pod addresses it does not know),
  # and the IP pool on the cluster's pod CIDR.
  sed -i \
    -e '/- name: CALICO_IPV4POOL_VXLAN$/{n;s/value: "CrossSubnet"/value: "Always"/}' \
    -e 's|^\( *\)# - name: CALICO_IPV4POOL_CIDR$|\1- name: CALICO_IPV4POOL_CIDR|' \
    -e "s|^\\( *\\)#   value: \"192.168.0.0/16\"\$|\\1  value: \"$POD_CIDR\"|" \
    "$manifest"
  grep -A1 -e '- name: CALICO_IPV4POOL_VXLAN$' "$manifest" | grep -q 'value: "Always"'
  grep -A1 -e '- name: CALICO_IPV4POOL_CIDR$' "$manifest" | grep -qF "value: \"$POD_CIDR\""
  kctl apply --server-side --force-conflicts --field-manager=kubestep -f "$manifest"
}

apply_addons() {
  PHASE=addons
  retry "$WAIT_ATTEMPTS" 10 local_api_ready
  PHASE=cni
  install_calico
  PHASE=cloud-controller-manager
  kctl apply --server-side --force-conflicts --field-manager=kubestep -f "$CONF/addons/cloud-controller-manager.yaml"
  PHASE=aws-iam-authenticator
  kctl apply --server-side --force-conflicts --field-manager=kubestep -f "$CONF/addons/cluster-admins.yaml"
  if [ -f "$CONF/addons/node-termination-handler.yaml" ]; then
    PHASE=node-termination-handler
    kctl apply --server-side --force-conflicts --field-manager=kubestep -f "$CONF/addons/node-termination-handler.yaml"
  fi
  PHASE=mark-initialized
  mark_initialized
}

# ---------------------------------------------------------------- nodes

join_node() {
  # Nodes boot with the control plane: joining waits (discovery retries for 5 minutes, then
  # this loop) until an API server answers behind the load balancer.
  local attempt
  for ((attempt = 1; attempt <= NODE_JOIN_ATTEMPTS; attempt++)); do
    kubeadm join --config "$KUBEADM_DIR/join.yaml" && return 0
    log "kubeadm join attempt $attempt failed; resetting and retrying"
    kubeadm reset -f >/dev/null 2>&1 || true
    sleep 30
  done
  return 1
}

# ---------------------------------------------------------------- health

etcd_local() {
  ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert="$PKI/etcd/ca.crt" \
    --cert="$PKI/etcd/healthcheck-client.crt" --key="$PKI/etcd/healthcheck-client.key" "$@"
}

control_plane_checks() {
  local attempt members=0 healthy=false ready=false
  for ((attempt = 1; attempt <= HEALTH_ATTEMPTS; attempt++)); do
    members=$(etcd_local member list 2>/dev/null | grep -c ', started, ') || members=0
    if etcd_local endpoint health --cluster >/dev/null 2>&1; then healthy=true; else healthy=false; fi
    if local_api_ready; then ready=true; else ready=false; fi
    if [ "$healthy" = true ] && [ "$ready" = true ] && ((members >= REPLICA_COUNT)); then break; fi
    sleep 10
  done
  CHECKS="{\"etcdMembers\":{\"N\":\"$members\"},\"etcdHealthy\":{\"BOOL\":$healthy},\"apiserverReady\":{\"BOOL\":$ready}}"
  # A replica that works reports ok; the health gate compares etcdMembers with the replica count.
  [ "$healthy" = true ] && [ "$ready" = true ]
}

node_checks() {
  local attempt ready=false status
  for ((attempt = 1; attempt <= HEALTH_ATTEMPTS; attempt++)); do
    status=$(kubectl --kubeconfig "$ROOT/etc/kubernetes/kubelet.conf" get node "$NODE_NAME" \
      -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) || status=
    if [ "$status" = True ]; then
      ready=true
      break
    fi
    sleep 10
  done
  CHECKS="{\"nodeReady\":{\"BOOL\":$ready}}"
  [ "$ready" = true ]
}

health_checks() {
  if [ "$ROLE" = control-plane ]; then control_plane_checks; else node_checks; fi
}

# ---------------------------------------------------------------- main

first_boot() {
  PHASE=kernel
  load_kernel_settings
  PHASE=packages
  install_packages
  PHASE=containerd
  configure_containerd
  if [ "$ROLE" = control-plane ]; then
    PHASE=etcd-volume
    mount_etcd_volume
    PHASE=dns
    upsert_dns_record
    PHASE=secrets
    place_control_plane_secrets
    read_join_token
    PHASE=aws-iam-authenticator
    prepare_authenticator
    bootstrap_control_plane
  else
    PHASE=secrets
    read_join_token
    PHASE=kubeadm-config
    write_kubeadm_configs
    PHASE=kubeadm-join
    join_node
  fi
  touch "$STATE/bootstrap-complete"
}

later_boot() {
  PHASE=reboot
  if [ -f "$STATE/failed-phase" ] && [ ! -f "$STATE/bootstrap-complete" ]; then
    # Never retry a half-done bootstrap in place (kubeadm reset would wipe etcd's data):
    # report the failure again and let the instance be replaced.
    PHASE=$(<"$STATE/failed-phase")
    false
  fi
  INSTALLED_VERSION=$(kubelet --version)
  INSTALLED_VERSION=${INSTALLED_VERSION#Kubernetes v}
  if [ "$ROLE" = control-plane ]; then
    PHASE=etcd-volume
    remount_etcd_volume
    PHASE=dns
    upsert_dns_record
  fi
}

main() {
  mkdir -p "$STATE"
  PHASE=awscli
  # Installed before anything can fail: failures are reported with it. Ubuntu 24.04 has the
  # AWS CLI as a snap only.
  command -v aws >/dev/null || retry 5 10 snap install aws-cli --classic
  if [ "$ROLE" = control-plane ]; then REPORT_KEY="$REPLICA_REPORT_PREFIX$REPLICA_INDEX"; fi
  trap on_error ERR
  PHASE=metadata
  read_metadata
  if [ -f "$STATE/bootstrap-complete" ] || [ -f "$STATE/failed-phase" ]; then later_boot; else first_boot; fi
  PHASE=health
  health_checks
  PHASE=report
  report ok
}

main "$@"
