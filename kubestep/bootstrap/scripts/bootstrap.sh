#!/bin/bash
# kubestep bootstrap: makes this Ubuntu 24.04 instance a control-plane replica or a node of its
# cluster. cloud-init runs it on every boot: the first boot bootstraps; a later boot remounts the
# etcd volume, re-registers the replica's DNS name and reports health again.
#
#   kubestep-bootstrap                      boot (what cloud-init runs)
#   kubestep-bootstrap report               the periodic report (kubestep-report.timer; a
#                                           replica's also kubestep-report-soon.timer while
#                                           its report falls short of the whole control
#                                           plane); a replica also serves the administrators
#                                           item's mapping
#   kubestep-bootstrap renew-certificates   kubeadm's certificates, before they expire
#                                           (kubestep-certs-renew.timer, control plane)
#   kubestep-bootstrap refresh-tokens       the join tokens the node secret lists, registered
#                                           (kubestep-token-refresh.timer, control plane)
#   kubestep-bootstrap backup               the etcd leader's snapshot to S3 when one is due
#                                           (kubestep-backup.timer, control plane)
#   kubestep-bootstrap converge-addons      the add-ons of this version, if they lag and the
#                                           whole control plane runs it (the report's child)
#
# Every boot phase reports its failure by name (`failed:<phase>`) to the management service's
# table; the last thing a boot does is its report (`ok` with the checks it made). After a
# successful bootstrap the report timer keeps that report live (docs/contracts.md).
#
# KUBESTEP_ROOT prefixes every file this script reads or writes, so the test suite runs it
# unprivileged in a temporary directory with stand-ins of the system commands on PATH.
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
# A learner is promoted once it has caught up with the leader (etcd refuses before that).
PROMOTE_ATTEMPTS=${KUBESTEP_PROMOTE_ATTEMPTS:-60}
# Renew kubeadm's certificates when one of them has fewer days left than this (they last a year).
CERT_RENEW_DAYS=${KUBESTEP_CERT_RENEW_DAYS:-90}
# A version claim still in progress after this long is taken over (its work is idempotent).
CLAIM_LEASE_MINUTES=15
# How often a replica looks again at a version claim another holds (the report timer: once).
CLAIM_ATTEMPTS=${KUBESTEP_CLAIM_ATTEMPTS:-$WAIT_ATTEMPTS}

IMDS=http://169.254.169.254/latest
PKI=$ROOT/etc/kubernetes/pki
ADMIN_KUBECONFIG=$ROOT/etc/kubernetes/admin.conf
# On the etcd volume: "TOKEN BACKUP" of the restore its data came from.
RESTORED_MARKER=$ROOT${ETCD_MOUNT:-/nonexistent}/restored
KUBELET_KUBECONFIG=$ROOT/etc/kubernetes/kubelet.conf
MANIFESTS=$ROOT/etc/kubernetes/manifests
KUBEADM_DIR=$CONF/kubeadm
PHASE=start
INSTANCE_ID=unknown
REPORT_KEY=
REPORT_SOURCE=boot
INSTALLED_VERSION=
CHECKS=
# Set by the control plane's health check: this replica sees every planned etcd member started,
# etcd healthy and its API server ready (what the management service's gate waits for).
CONTROL_PLANE_WHOLE=false
CERTIFICATES=
ADMINS_CHECKS=
MODE=

# Values only the templates use (fill reads them by name).
template_value() { printf -v "$1" '%s' "$2"; }

log() { printf 'kubestep-bootstrap [%s]: %s\n' "$PHASE" "$*" >&2; }

now() { date -u +%Y-%m-%dT%H:%M:%SZ; }

retry() { # retry ATTEMPTS DELAY COMMAND...: run COMMAND until it succeeds, at most ATTEMPTS times
  local attempts=$1 delay=$2 n
  shift 2
  for ((n = 1; ; n++)); do
    "$@" && return 0
    ((n < attempts)) || return 1
    sleep "$delay"
  done
}

json_field() { # json_field EXPRESSION < JSON: a Python expression over `o`, the parsed document
  python3 -c 'import json, sys
o = json.load(sys.stdin)
value = eval(sys.argv[1])
print("" if value is None else value)' "$1"
}

version_older() { # version_older A B: A is an older Kubernetes version than B
  [ "$1" != "$2" ] && [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$1" ]
}

# ---------------------------------------------------------------- reporting

report() { # report STATUS: the report item (docs/contracts.md), with the checks made
  local status=$1 item
  item="{\"pk\":{\"S\":\"$REPORT_PK\"},\"sk\":{\"S\":\"$REPORT_KEY\"},\"status\":{\"S\":\"$status\"}"
  item+=",\"instanceId\":{\"S\":\"$INSTANCE_ID\"},\"reportedAt\":{\"S\":\"$(now)\"},\"source\":{\"S\":\"$REPORT_SOURCE\"}"
  if [ -n "$INSTALLED_VERSION" ]; then item+=",\"version\":{\"S\":\"$INSTALLED_VERSION\"}"; fi
  if [ -n "$CHECKS" ]; then item+=",\"checks\":{\"M\":$CHECKS}"; fi
  if [ -n "$CERTIFICATES" ]; then item+=",\"certificates\":{\"M\":$CERTIFICATES}"; fi
  item+="}"
  retry 5 3 aws dynamodb put-item --region "$REGION" --table-name "$TABLE" --item "$item"
}

pace_reports() { # a replica reports every 10 s while its report falls short of the whole control plane
  [ "$ROLE" = control-plane ] || return 0
  # Never fails the boot or the report just written: the minute timer reports on regardless.
  if [ "$CONTROL_PLANE_WHOLE" = true ]; then
    systemctl stop kubestep-report-soon.timer || log "could not stop kubestep-report-soon.timer"
  else
    systemctl start kubestep-report-soon.timer || log "could not start kubestep-report-soon.timer"
  fi
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

read_installed_version() {
  INSTALLED_VERSION=$(kubelet --version)
  INSTALLED_VERSION=${INSTALLED_VERSION#Kubernetes v}
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

install_kubernetes_key() {
  # The repository's signing key, accepted only with the fingerprint pinned in the user-data.
  local keyring=$ROOT/etc/apt/keyrings/kubernetes.gpg fingerprints
  retry 5 10 curl -fsSL -o "$STATE/kubernetes-release.key" "${KUBERNETES_APT_REPOSITORY}Release.key"
  fingerprints=$(gpg --batch --with-colons --show-keys "$STATE/kubernetes-release.key" | awk -F: '$1 == "fpr" { print $10 }')
  if ! grep -qx "$KUBERNETES_APT_KEY_FINGERPRINT" <<<"$fingerprints"; then
    log "the Kubernetes package repository's key is not the pinned $KUBERNETES_APT_KEY_FINGERPRINT"
    return 1
  fi
  mkdir -p "$(dirname "$keyring")"
  gpg --batch --yes --dearmor -o "$keyring" "$STATE/kubernetes-release.key"
}

install_packages() {
  retry 5 10 apt_get update
  retry 3 10 apt_get install containerd curl gpg ca-certificates
  install_kubernetes_key
  mkdir -p "$ROOT/etc/apt/sources.list.d"
  echo "deb [signed-by=/etc/apt/keyrings/kubernetes.gpg] $KUBERNETES_APT_REPOSITORY /" >"$ROOT/etc/apt/sources.list.d/kubernetes.list"
  retry 5 10 apt_get update
  local package=$KUBERNETES_VERSION-$KUBERNETES_PACKAGE_REVISION
  local packages=("kubelet=$package" "kubeadm=$package" "kubectl=$package")
  # etcdctl, for membership changes and the health report.
  if [ "$ROLE" = control-plane ]; then packages+=(etcd-client); fi
  retry 3 10 apt_get install "${packages[@]}"
  apt-mark hold kubelet kubeadm kubectl
  read_installed_version
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
  # The current token (docs/contracts.md, "Join token"): what nodes join with and init registers.
  BOOTSTRAP_TOKEN=$(secret_string "$NODE_SECRET_ARN" | python3 -c 'import json, sys
secret = json.load(sys.stdin)
print(secret.get("token") or (secret.get("tokens") or [{}])[0].get("token", ""))')
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
  for name in join.yaml init.yaml upgrade.yaml patches/kubeletconfiguration+merge.json; do
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

refresh_admins() { # sets ADMINS_CHECKS: serve the cluster administrators item, rewritten when its generation changed
  # The AWS CLI renders the item as the authenticator's mapping (ADMINS_MAPPING_QUERY, from
  # kubestep.bootstrap.authenticator_mapping); the authenticator reloads the file when it is
  # replaced (its DynamicFile backend), so nothing restarts. An unreadable item keeps the mapping
  # served so far, never an empty one, and the report says why.
  local file=$CONF/aws-iam-authenticator/admins.json out served generation new='' problem=''
  served=$(json_field 'o["Version"]' 2>/dev/null <"$file") || served=
  if ! out=$(aws dynamodb get-item --region "$REGION" --table-name "$TABLE" --consistent-read \
    --key "$(claim_key "$ADMINS_PK" "$ADMINS_SK")" --query "$ADMINS_MAPPING_QUERY" --output json 2>&1) ||
    ! generation=$(json_field 'o["Version"]' <<<"$out" 2>/dev/null) || [[ ! $generation =~ ^[0-9]+$ ]]; then
    problem=${out:-the item does not exist}
  elif [ "$generation" != "$served" ]; then
    # A new file renamed over the old one: the authenticator never reads half a mapping.
    if new=$(mktemp "$file.XXXXXX") && printf '%s\n' "$out" >"$new" && chmod 0644 "$new" && mv -f "$new" "$file"; then
      served=$generation
      log "serving the cluster administrators of generation $generation"
    else
      rm -f "$new"
      problem="the mapping file could not be written"
    fi
  fi
  ADMINS_CHECKS=
  if [[ $served =~ ^[0-9]+$ ]]; then ADMINS_CHECKS=",\"adminsGeneration\":{\"N\":\"$served\"}"; fi
  if [ -n "$problem" ]; then
    problem=${problem//[^A-Za-z0-9 ().:\/_-]/ }
    log "the cluster administrators could not be refreshed: $problem"
    ADMINS_CHECKS+=",\"adminsError\":{\"S\":\"${problem:0:300}\"}"
  fi
}

start_authenticator() {
  mkdir -p "$MANIFESTS"
  install -m 0644 "$CONF/aws-iam-authenticator/pod.yaml" "$MANIFESTS/aws-iam-authenticator.yaml"
}

# ---------------------------------------------------------------- initialise exactly once

# Each kind of claim has its own partition (PK), the only key IAM can scope a role's writes by.
claim_key() { echo "{\"pk\":{\"S\":\"$1\"},\"sk\":{\"S\":\"$2\"}}"; }

put_claim() { # put_claim PK SK STATUS CONDITION [VALUES]: 0 taken here, 1 the condition failed, 2 error
  local out item extra=()
  item="{\"pk\":{\"S\":\"$1\"},\"sk\":{\"S\":\"$2\"},\"status\":{\"S\":\"$3\"}"
  item+=",\"replica\":{\"N\":\"$REPLICA_INDEX\"},\"instanceId\":{\"S\":\"$INSTANCE_ID\"},\"claimedAt\":{\"S\":\"$(now)\"}}"
  if [ -n "${5:-}" ]; then extra=(--expression-attribute-names '{"#s":"status"}' --expression-attribute-values "$5"); fi
  if out=$(aws dynamodb put-item --region "$REGION" --table-name "$TABLE" --item "$item" \
    --condition-expression "$4" "${extra[@]}" 2>&1); then
    return 0
  elif [[ $out == *ConditionalCheckFailedException* ]]; then
    return 1
  fi
  log "$out"
  return 2
}

claim_initialisation() {
  # The registry decides, never the instance's own disk: a conditional put on the init claim item.
  # An initialised cluster's claim is final (the role may then only read it): nothing to claim.
  if cluster_initialized; then return 1; fi
  put_claim "$INIT_CLAIM_PK" "$INIT_CLAIM_SK" initializing 'attribute_not_exists(pk)'
}

read_claim() { # read_claim PK SK: sets CLAIM_STATUS and CLAIM_REPLICA from a claim item
  local out
  out=$(aws dynamodb get-item --region "$REGION" --table-name "$TABLE" --consistent-read \
    --key "$(claim_key "$1" "$2")" --query 'Item.[status.S, replica.N]' --output text)
  read -r CLAIM_STATUS CLAIM_REPLICA <<<"$out"
}

cluster_initialized() {
  read_claim "$INIT_CLAIM_PK" "$INIT_CLAIM_SK"
  [ "$CLAIM_STATUS" = initialized ]
}

mark_claim() { # mark_claim PK SK STATUS [TIME_ATTRIBUTE]: record a claim's outcome and when
  aws dynamodb update-item --region "$REGION" --table-name "$TABLE" --key "$(claim_key "$1" "$2")" \
    --update-expression "SET #s = :s, ${4:-doneAt} = :t" --expression-attribute-names '{"#s":"status"}' \
    --expression-attribute-values "{\":s\":{\"S\":\"$3\"},\":t\":{\"S\":\"$(now)\"}}" >/dev/null
}

decide_mode() { # sets MODE (init | join | restart)
  local claim=0
  if [ -d "$ROOT$ETCD_DATA_DIR/member" ]; then
    # The volume holds this member's data: restart as the same member, no membership change.
    MODE=restart
    return 0
  fi
  claim_initialisation || claim=$?
  case $claim in
    0) MODE=init ;;
    1)
      read_claim "$INIT_CLAIM_PK" "$INIT_CLAIM_SK"
      if [ "$CLAIM_STATUS" != initialized ] && [ "$CLAIM_REPLICA" = "$REPLICA_INDEX" ]; then
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
}

# ---------------------------------------------------------------- each cluster-wide change once

claim_version_step() { # claim_version_step SK IN_PROGRESS: 0 claimed here, 1 another holds it, 2 error
  # Taken when nobody holds it, when this replica's predecessor held it and died, or when the
  # holder's lease ran out; never once done (docs/contracts.md). In the version claims' own
  # partition, which the role may still write after the init claim is sealed.
  local stale
  stale=$(date -u -d "-$CLAIM_LEASE_MINUTES minutes" +%Y-%m-%dT%H:%M:%SZ)
  put_claim "$VERSION_CLAIM_PK" "$1" "$2" 'attribute_not_exists(pk) OR (#s = :busy AND (replica = :replica OR claimedAt < :stale))' \
    "{\":busy\":{\"S\":\"$2\"},\":replica\":{\"N\":\"$REPLICA_INDEX\"},\":stale\":{\"S\":\"$stale\"}}"
}

once_per_version() { # once_per_version SK IN_PROGRESS DONE COMMAND...: COMMAND by one replica only
  local sk=$1 in_progress=$2 finished=$3 attempt claim
  shift 3
  for ((attempt = 1; attempt <= CLAIM_ATTEMPTS; attempt++)); do
    claim=0
    claim_version_step "$sk" "$in_progress" || claim=$?
    case $claim in
      0)
        log "claimed $sk"
        "$@"
        mark_claim "$VERSION_CLAIM_PK" "$sk" "$finished"
        return 0
        ;;
      1)
        read_claim "$VERSION_CLAIM_PK" "$sk"
        if [ "$CLAIM_STATUS" = "$finished" ]; then return 0; fi
        log "$sk is being done by replica $CLAIM_REPLICA; waiting"
        ;;
      *) return 1 ;;
    esac
    sleep 10
  done
  return 1
}

# ---------------------------------------------------------------- etcd membership (control plane)

etcd_peer_endpoints() { # the other replicas' client URLs
  local name endpoints=()
  for name in $REPLICA_NAMES; do
    if [ "$name" != "$REPLICA_NAME" ]; then endpoints+=("https://$name:2379"); fi
  done
  local IFS=,
  echo "${endpoints[*]}"
}

etcd_member() { # etcd_member ENDPOINTS COMMAND...: kubestep-etcd-member with this replica's TLS identity
  local member_endpoints=$1
  shift
  ETCDCTL_API=3 ETCDCTL_ENDPOINTS=$member_endpoints ETCDCTL_CACERT=$PKI/etcd/ca.crt \
    ETCDCTL_CERT=$PKI/apiserver-etcd-client.crt ETCDCTL_KEY=$PKI/apiserver-etcd-client.key \
    "$ROOT/usr/local/sbin/kubestep-etcd-member" "$@"
}

add_etcd_learner() {
  local initial_cluster
  initial_cluster=$(etcd_member "$(etcd_peer_endpoints)" add-learner "$REPLICA_NAME" "https://$REPLICA_NAME:2380") || return 1
  template_value ETCD_INITIAL_CLUSTER "$initial_cluster"
}

promote_etcd_member() { etcd_member "$(etcd_peer_endpoints),https://$REPLICA_NAME:2379" promote "https://$REPLICA_NAME:2380"; }

join_etcd() {
  # What kubeadm's own etcd join does, on the replica's stable name instead of the instance's
  # address: after the kubelet runs, announce the member as a learner (a learner does not count
  # towards quorum, so the cluster stays writable and its API readable however long the new
  # member takes to start), write etcd's manifest so the kubelet starts it, then promote it once
  # it has caught up with the leader. A stale member under the same peer URL (a predecessor
  # whose volume was lost) is removed first; etcd refuses a second learner while one is
  # pending, so the add is retried.
  retry 30 10 add_etcd_learner
  template_value ETCD_INITIAL_CLUSTER_STATE existing
  write_etcd_patch
  kubeadm init phase etcd local --config "$KUBEADM_DIR/init.yaml"
  retry "$PROMOTE_ATTEMPTS" 5 promote_etcd_member
}

# ---------------------------------------------------------------- control plane

api_reachable() { curl -sfk --max-time 10 "https://$ENDPOINT:443/readyz" >/dev/null; }

# This replica's own API server (its certificate names the private IP), not the load balancer,
# which sends traffic only once the target's health checks pass.
kctl() { kubectl --kubeconfig "$ADMIN_KUBECONFIG" --server "https://$PRIVATE_IP:6443" "$@"; }

local_api_ready() { [ "$(kctl get --raw=/readyz 2>/dev/null)" = ok ]; }

init_control_plane() {
  template_value ETCD_INITIAL_CLUSTER "$REPLICA_NAME=https://$REPLICA_NAME:2380"
  template_value ETCD_INITIAL_CLUSTER_STATE new
  write_etcd_patch
  PHASE=kubeadm-init
  kubeadm init --config "$KUBEADM_DIR/init.yaml"
}

join_control_plane() {
  local join=$KUBEADM_DIR/join.yaml
  PHASE=wait-initialized
  retry "$WAIT_ATTEMPTS" 10 cluster_initialized
  retry "$WAIT_ATTEMPTS" 10 api_reachable
  # kubeadm's join workflow phase by phase (discovery, certificates and manifests, the kubelet),
  # with kubestep's etcd step where kubeadm's own etcd join would run: after the kubelet starts,
  # before it bootstraps against this replica's API server, which needs this member voting.
  PHASE=kubeadm-join
  kubeadm join phase preflight --config "$join"
  kubeadm join phase control-plane-prepare all --config "$join"
  kubeadm join phase kubelet-start --config "$join"
  PHASE=etcd-member
  join_etcd
  PHASE=kubeadm-join
  kubeadm join phase kubelet-wait-bootstrap --config "$join"
  kubeadm join phase control-plane-join mark-control-plane --config "$join"
  kubeadm join phase wait-control-plane --config "$join"
}

restart_control_plane() {
  # Same member, same data: regenerate this host's certificates, kubeconfigs and static pods
  # from the CAs; etcd starts from its data dir and catches up with its peers.
  local init=$KUBEADM_DIR/init.yaml
  template_value ETCD_INITIAL_CLUSTER "$REPLICA_NAME=https://$REPLICA_NAME:2380"
  template_value ETCD_INITIAL_CLUSTER_STATE existing
  write_etcd_patch
  PHASE=kubeadm-restart
  kubeadm init phase certs all --config "$init"
  kubeadm init phase kubeconfig all --config "$init"
  kubeadm init phase etcd local --config "$init"
  kubeadm init phase control-plane all --config "$init"
  kubeadm init phase kubelet-start --config "$init"
  # A predecessor that died between starting its learner and promoting it left a learner with data.
  PHASE=etcd-member
  retry "$PROMOTE_ATTEMPTS" 5 promote_etcd_member
  PHASE=kubeadm-restart
  retry "$WAIT_ATTEMPTS" 10 local_api_ready
  kubeadm init phase mark-control-plane --config "$init"
  # kubelet.conf's client certificate was signed here for a year: point the kubelet at its own
  # rotating certificate instead, as kubeadm init does.
  kubeadm init phase kubelet-finalize all --config "$init"
}

# ---------------------------------------------------------------- what the cluster runs (upgrades)

cluster_version() { # kubernetesVersion of the cluster's kubeadm ClusterConfiguration, without the v
  kctl -n kube-system get configmap kubeadm-config -o json |
    json_field 'next((l.split(":", 1)[1].strip().lstrip("v") for l in o["data"]["ClusterConfiguration"].splitlines() if l.startswith("kubernetesVersion:")), "")'
}

addons_version() { # the version whose add-ons kubestep applied last (empty before the first apply)
  local out
  out=$(kctl -n kube-system get configmap kubestep-addons -o json --ignore-not-found) || return 1
  if [ -z "$out" ]; then return 0; fi
  json_field 'o["data"].get("version", "")' <<<"$out"
}

remove_predecessor_nodes() {
  # This replica's earlier instances are gone for good (the replica's volume and stable name are
  # this instance's now): their Node objects and Pods go too, so kubeadm's checks that every
  # control-plane node is Ready and every control-plane instance upgraded see live ones only.
  local names name
  names=$(kctl get nodes -l "$REPLICA_LABEL=$REPLICA_INDEX" -o json |
    json_field '" ".join(n["metadata"]["name"] for n in o["items"])')
  for name in $names; do
    if [ "$name" = "$NODE_NAME" ]; then continue; fi
    log "removing node $name, an earlier instance of replica $REPLICA_INDEX"
    kctl delete pods --all-namespaces --field-selector "spec.nodeName=$name" --force --grace-period=0 >/dev/null
    kctl delete node "$name" --ignore-not-found >/dev/null
  done
}

control_plane_at_my_version() {
  # kubeadm's own rule for upgrading the cluster's add-ons: every kube-apiserver runs this version.
  local images image
  images=$(kctl -n kube-system get pods -l component=kube-apiserver -o json |
    json_field '" ".join(c["image"] for p in o["items"] for c in p["spec"]["containers"] if c["name"] == "kube-apiserver")')
  [ -n "$images" ] || return 1
  for image in $images; do
    if [ "${image##*:}" != "v$KUBERNETES_VERSION" ]; then return 1; fi
  done
}

upgrade_cluster() {
  # The first replica at a new version upgrades the cluster's kubeadm configuration (kubeadm
  # upgrade apply: kubeadm-config, kubelet-config, RBAC); the others upgrade their own node
  # against it (kubeadm upgrade node). Whichever finds every kube-apiserver upgraded also
  # upgrades kube-proxy and CoreDNS (kubeadm does that part only then).
  local cluster
  cluster=$(cluster_version)
  if [ -z "$cluster" ]; then
    log "the cluster's kubeadm-config names no kubernetesVersion"
    return 1
  fi
  if version_older "$cluster" "$KUBERNETES_VERSION"; then
    PHASE=upgrade-apply
    log "the cluster runs $cluster: upgrading it to $KUBERNETES_VERSION"
    once_per_version "$UPGRADE_CLAIM_PREFIX$KUBERNETES_VERSION" upgrading upgraded \
      kubeadm upgrade apply --config "$KUBEADM_DIR/upgrade.yaml"
  elif [ "$cluster" = "$KUBERNETES_VERSION" ] && [ "$(addons_version)" != "$KUBERNETES_VERSION" ]; then
    PHASE=upgrade-node
    kubeadm upgrade node --config "$KUBEADM_DIR/upgrade.yaml"
  elif [ "$cluster" != "$KUBERNETES_VERSION" ]; then
    log "the cluster runs $cluster, newer than this replica's $KUBERNETES_VERSION: nothing to upgrade"
  fi
}

converge_addons() { # kubestep's add-ons at this version, once every control-plane instance runs it
  if [ "$(addons_version)" = "$KUBERNETES_VERSION" ]; then return 0; fi
  if ! control_plane_at_my_version; then
    # Not an error: the last replica of the roll applies them (or any replica's report timer).
    log "add-ons for $KUBERNETES_VERSION wait until every control-plane instance runs it"
    return 0
  fi
  once_per_version "$ADDONS_CLAIM_PREFIX$KUBERNETES_VERSION" applying applied apply_addons
}

bootstrap_control_plane() {
  PHASE=kubeadm-config
  write_kubeadm_configs
  PHASE=decide
  decide_mode
  log "mode $MODE"
  case $MODE in
    init) init_control_plane ;;
    join) join_control_plane ;;
    restart) restart_control_plane ;;
  esac
  PHASE=aws-iam-authenticator
  start_authenticator
  PHASE=addons
  retry "$WAIT_ATTEMPTS" 10 local_api_ready
  if [ "$MODE" = init ]; then
    once_per_version "$ADDONS_CLAIM_PREFIX$KUBERNETES_VERSION" applying applied apply_addons
    PHASE=mark-initialized
    mark_claim "$INIT_CLAIM_PK" "$INIT_CLAIM_SK" initialized initializedAt
  else
    PHASE=upgrade
    remove_predecessor_nodes
    upgrade_cluster
    PHASE=addons
    converge_addons
  fi
  PHASE=timers
  systemctl daemon-reload
  systemctl enable --now kubestep-token-refresh.timer kubestep-certs-renew.timer kubestep-backup.timer
}

# ---------------------------------------------------------------- cluster add-ons

pin_calico_images() { # pin_calico_images MANIFEST: every image with a known digest pulled by it
  local manifest=$1 pair tagged pinned
  for pair in $CALICO_IMAGE_PINS; do
    tagged=${pair%%=*}
    pinned=${pair#*=}
    if ! grep -qE "^ *image: $tagged\$" "$manifest"; then
      log "the Calico manifest names no $tagged: its pinned digest cannot apply"
      return 1
    fi
    sed -i -E "s|^( *image: )$tagged\$|\\1$pinned|" "$manifest"
  done
}

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
  pin_calico_images "$manifest"
  apply_manifest "$manifest"
}

apply_manifest() { kctl apply --server-side --force-conflicts --field-manager=kubestep -f "$1"; }

apply_addons() {
  # Version-matched, idempotent (server-side apply); the last object records the version.
  PHASE=cni
  install_calico
  PHASE=cloud-controller-manager
  apply_manifest "$CONF/addons/cloud-controller-manager.yaml"
  PHASE=aws-iam-authenticator
  apply_manifest "$CONF/addons/cluster-admins.yaml"
  PHASE=token-rotation
  apply_manifest "$CONF/addons/bootstrap-token-manager.yaml"
  if [ -f "$CONF/addons/node-termination-handler.yaml" ]; then
    PHASE=node-termination-handler
    apply_manifest "$CONF/addons/node-termination-handler.yaml"
  fi
  PHASE=addons
  apply_manifest "$CONF/addons/kubestep-addons.yaml"
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

# ---------------------------------------------------------------- health and certificates

etcd_local() {
  ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert="$PKI/etcd/ca.crt" \
    --cert="$PKI/etcd/healthcheck-client.crt" --key="$PKI/etcd/healthcheck-client.key" "$@"
}

control_plane_check() { # one look; sets CHECKS; true when etcd is healthy and the API server ready
  local members=0 learners=0 healthy=false ready=false listing counts cluster='' addons=''
  # A started member has a name; a learner is not yet a voting member.
  if listing=$(etcd_local member list -w json 2>/dev/null) && counts=$(json_field '"%d %d" % (
    sum(1 for m in o.get("members", []) if m.get("name") and not m.get("isLearner")),
    sum(1 for m in o.get("members", []) if m.get("isLearner")))' <<<"$listing"); then
    read -r members learners <<<"$counts"
  fi
  if etcd_local endpoint health --cluster >/dev/null 2>&1; then healthy=true; fi
  if local_api_ready; then
    ready=true
    cluster=$(cluster_version 2>/dev/null) || cluster=''
    addons=$(addons_version 2>/dev/null) || addons=''
  fi
  CHECKS="{\"etcdMembers\":{\"N\":\"$members\"},\"etcdLearners\":{\"N\":\"$learners\"}"
  CHECKS+=",\"etcdHealthy\":{\"BOOL\":$healthy},\"apiserverReady\":{\"BOOL\":$ready}"
  if [ -n "$cluster" ]; then CHECKS+=",\"clusterVersion\":{\"S\":\"$cluster\"}"; fi
  if [ -n "$addons" ]; then CHECKS+=",\"addonsVersion\":{\"S\":\"$addons\"}"; fi
  CHECKS+="$(restored_checks)$ADMINS_CHECKS}"
  CONTROL_PLANE_WHOLE=false
  if [ "$members" = "$REPLICA_COUNT" ] && [ "$healthy" = true ] && [ "$ready" = true ]; then CONTROL_PLANE_WHOLE=true; fi
  [ "$healthy" = true ] && [ "$ready" = true ]
}

node_check() { # one look; sets CHECKS; true when the node is Ready and initialised by the CCM
  local node_json facts ready=false initialized=false provider=''
  if node_json=$(kubectl --kubeconfig "$KUBELET_KUBECONFIG" get node "$NODE_NAME" -o json 2>/dev/null) &&
    facts=$(json_field '"%s %s %s" % (
      str(any(c["type"] == "Ready" and c["status"] == "True" for c in o.get("status", {}).get("conditions", []))).lower(),
      str(bool(o["spec"].get("providerID")) and not any(
        t["key"] == "node.cloudprovider.kubernetes.io/uninitialized" for t in o["spec"].get("taints", []))).lower(),
      o["spec"].get("providerID", ""))' <<<"$node_json"); then
    read -r ready initialized provider <<<"$facts"
  fi
  CHECKS="{\"nodeReady\":{\"BOOL\":$ready},\"nodeInitialized\":{\"BOOL\":$initialized}"
  if [ -n "$provider" ]; then CHECKS+=",\"providerID\":{\"S\":\"$provider\"}"; fi
  CHECKS+="}"
  [ "$ready" = true ] && [ "$initialized" = true ]
}

health_check() { if [ "$ROLE" = control-plane ]; then control_plane_check; else node_check; fi; }

wait_healthy() { # the boot's checks: wait (bounded) for health; the report timer keeps it live after
  local attempt
  for ((attempt = 1; attempt <= HEALTH_ATTEMPTS; attempt++)); do
    health_check && return 0
    sleep 10
  done
  return 1
}

not_after() { # not_after < PEM: the certificate's expiry as ISO 8601 UTC
  local end
  end=$(openssl x509 -noout -enddate) || return 1
  date -u -d "${end#notAfter=}" +%Y-%m-%dT%H:%M:%SZ
}

client_certificate() { # client_certificate KUBECONFIG: the PEM of its client certificate
  local data path
  data=$(sed -n 's/^ *client-certificate-data: *//p' "$1" | head -n1)
  path=$(sed -n 's/^ *client-certificate: *//p' "$1" | head -n1)
  if [ -n "$data" ]; then base64 -d <<<"$data"; elif [ -n "$path" ]; then cat "$ROOT$path"; fi
}

certificates() { # NAME PEM_COMMAND lines, under kubeadm's own names (kubeadm certs check-expiration)
  local file name
  echo "kubelet-client cat $ROOT/var/lib/kubelet/pki/kubelet-client-current.pem"
  [ "$ROLE" = control-plane ] || return 0
  for file in "$PKI"/*.crt "$PKI"/etcd/*.crt; do
    name=${file#"$PKI"/}
    echo "${name%.crt} cat $file" | sed 's|^etcd/|etcd-|'
  done
  for file in "$ROOT"/etc/kubernetes/{admin,super-admin,controller-manager,scheduler}.conf; do
    if [ -f "$file" ]; then echo "${file##*/} client_certificate $file"; fi
  done
}

read_certificates() { # sets CERTIFICATES: every certificate's expiry (absent when unreadable)
  local name command file expiry entries=()
  while read -r name command file; do
    if expiry=$("$command" "$file" 2>/dev/null | not_after 2>/dev/null); then entries+=("\"$name\":{\"S\":\"$expiry\"}"); fi
  done < <(certificates)
  local IFS=,
  CERTIFICATES="{${entries[*]}}"
}

# ---------------------------------------------------------------- certificate renewal

renewal_due() { # a certificate kubeadm signs (not a CA, not the kubelet's own) expires within CERT_RENEW_DAYS
  local name command file
  while read -r name command file; do
    case $name in ca | etcd-ca | front-proxy-ca | kubelet-client) continue ;; esac
    if ! "$command" "$file" 2>/dev/null | openssl x509 -noout -checkend $((CERT_RENEW_DAYS * 86400)) >/dev/null; then return 0; fi
  done < <(certificates)
  return 1
}

container_running() { [ -n "$(crictl ps --name "^$1\$" --state running -q 2>/dev/null)" ]; }
container_gone() { ! container_running "$1"; }

restart_static_pod() { # restart_static_pod NAME: kubeadm's documented way (move the manifest out and back)
  local name=$1 paused=$STATE/paused-manifests
  [ -f "$MANIFESTS/$name.yaml" ] || return 0
  mkdir -p "$paused"
  mv "$MANIFESTS/$name.yaml" "$paused/"
  retry 30 2 container_gone "$name" || log "$name still runs; restoring its manifest anyway"
  mv "$paused/$name.yaml" "$MANIFESTS/"
  retry 60 2 container_running "$name"
}

renew_certificates() {
  if ! renewal_due; then
    log "no certificate expires within $CERT_RENEW_DAYS days"
    return 0
  fi
  log "renewing kubeadm's certificates (one expires within $CERT_RENEW_DAYS days)"
  kubeadm certs renew all --config "$KUBEADM_DIR/init.yaml"
  # The components read their certificates at start: restart them one at a time, each healthy
  # before the next (the replicas' timers are hours apart, so one replica restarts at a time).
  restart_static_pod etcd
  retry 30 2 etcd_local endpoint health >/dev/null
  restart_static_pod kube-apiserver
  retry 60 2 local_api_ready
  restart_static_pod kube-controller-manager
  restart_static_pod kube-scheduler
}

# ---------------------------------------------------------------- join tokens (control plane)

# From the node secret's tokens (stdin) and the bootstrap-token Secrets in the cluster (file $1):
# writes the Secrets to apply to $2 (each listed, unexpired token with a TTL of two hours at most,
# less if it expires sooner) and prints the ids to keep, then on a second line the ids of the
# tokens kubestep registered earlier that the secret no longer lists.
TOKENS_PY='import base64, datetime, json, re, sys
secret, now = json.load(sys.stdin), datetime.datetime.now(datetime.timezone.utc)
managed = sys.argv[3]
wanted = []
for entry in secret.get("tokens") or [{"token": secret.get("token", "")}]:
    if not re.fullmatch(r"[a-z0-9]{6}\.[a-z0-9]{16}", entry.get("token", "")):
        sys.exit("the node secret lists a token that is not a kubeadm bootstrap token")
    expires = now + datetime.timedelta(hours=2)
    if entry.get("expiresAt"):
        expires = min(expires, datetime.datetime.fromisoformat(entry["expiresAt"].replace("Z", "+00:00")))
    if expires > now:
        token_id, token_secret = entry["token"].split(".")
        wanted.append({"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
            "metadata": {"name": "bootstrap-token-" + token_id, "namespace": "kube-system"},
            "stringData": {"token-id": token_id, "token-secret": token_secret,
                "expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"), "description": managed + " (node secret)",
                "usage-bootstrap-authentication": "true", "usage-bootstrap-signing": "true",
                "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token"}})
keep = [w["stringData"]["token-id"] for w in wanted]
json.dump({"apiVersion": "v1", "kind": "List", "items": wanted}, open(sys.argv[2], "w"))
registered = [{k: base64.b64decode(v).decode() for k, v in s.get("data", {}).items()} for s in json.load(open(sys.argv[1]))["items"]]
print(" ".join(keep))
print(" ".join(d["token-id"] for d in registered if d.get("description", "").startswith(managed) and d["token-id"] not in keep))'

refresh_tokens() {
  # The cluster accepts exactly the join tokens the node secret lists (docs/contracts.md, "Join
  # token"): a node joining days later still joins, a rotated token takes over within the timer's
  # period, a dropped one stops working within two hours even if its deletion fails. Never with
  # admin.conf, whose certificate expires: a one-hour certificate minted from the cluster CA for
  # the user a Role in kube-system allows to manage bootstrap tokens. Token values reach the API
  # server through files only, never a command line.
  local work ids keep stale token_id
  work=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: $work is local
  trap "rm -rf '$work'" EXIT
  kubeadm kubeconfig user --config "$KUBEADM_DIR/init.yaml" --client-name "$BOOTSTRAP_TOKEN_MANAGER" --validity-period 1h >"$work/kubeconfig"
  kubectl --kubeconfig "$work/kubeconfig" -n kube-system get secrets --field-selector type=bootstrap.kubernetes.io/token -o json >"$work/registered"
  ids=$(secret_string "$NODE_SECRET_ARN" | python3 -c "$TOKENS_PY" "$work/registered" "$work/wanted" "kubestep join token")
  keep=$(head -n1 <<<"$ids")
  stale=$(tail -n +2 <<<"$ids")
  if [ -z "$keep" ]; then
    log "the node secret lists no unexpired token"
    return 1
  fi
  kubectl --kubeconfig "$work/kubeconfig" apply --server-side --force-conflicts --field-manager=kubestep -f "$work/wanted" >/dev/null
  log "join tokens registered: $keep"
  for token_id in $stale; do
    kubectl --kubeconfig "$work/kubeconfig" -n kube-system delete secret "bootstrap-token-$token_id" --ignore-not-found >/dev/null
    log "join token $token_id deleted (no longer in the node secret)"
  done
}

# ---------------------------------------------------------------- etcd backups

# From the policy item and the newest record (DynamoDB JSON, "" when absent): "BUCKET PREFIX
# RETENTION" when a snapshot is due (none yet, the newest an interval old, or one asked for
# since: kubestep/backups.py is_due), nothing otherwise.
BACKUP_DUE_PY='import datetime, json, sys
def item(text):
    return json.loads(text).get("Item", {}) if text.strip() else {}
def when(value):
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
policy, latest = item(sys.argv[1]), item(sys.argv[2])
if policy:
    now = datetime.datetime.now(datetime.timezone.utc)
    interval = datetime.timedelta(minutes=int(policy["intervalMinutes"]["N"]))
    taken = when(latest["takenAt"]["S"]) if "takenAt" in latest else None
    requested = when(policy["requestedAt"]["S"]) if "requestedAt" in policy else None
    if taken is None or (requested is not None and requested > taken) or now - taken >= interval:
        print(policy["bucket"]["S"], policy["prefix"]["S"], policy["retentionDays"]["N"])'

table_item() { # table_item PK SK: the item as GetItem returns it (DynamoDB JSON)
  aws dynamodb get-item --region "$REGION" --table-name "$TABLE" --consistent-read \
    --key "{\"pk\":{\"S\":\"$1\"},\"sk\":{\"S\":\"$2\"}}" --output json
}

take_backup() {
  # Every replica's backup timer runs this; only the etcd leader (one at a time, as etcd has)
  # takes a snapshot, and only when the management service's policy item says one is due. The
  # snapshot is checked (`etcdutl snapshot status`) before it is uploaded to the cluster's own
  # prefix with its retention tag, then recorded (docs/contracts.md, "etcd backups").
  local policy latest plan bucket prefix retention file revision size sha taken id key item
  if [ ! -f "$STATE/bootstrap-complete" ]; then
    log "not bootstrapped: no backup"
    return 0
  fi
  export ETCDCTL_API=3 ETCDCTL_ENDPOINTS=https://127.0.0.1:2379 ETCDCTL_CACERT=$PKI/etcd/ca.crt \
    ETCDCTL_CERT=$PKI/apiserver-etcd-client.crt ETCDCTL_KEY=$PKI/apiserver-etcd-client.key
  if ! "$ROOT/usr/local/sbin/kubestep-etcd-snapshot" is-leader; then
    log "not the etcd leader: no backup"
    return 0
  fi
  policy=$(table_item "$ADMINS_PK" "$BACKUP_POLICY_SK")
  latest=$(table_item "$BACKUPS_PK" "$LATEST_BACKUP_SK")
  plan=$(python3 -c "$BACKUP_DUE_PY" "$policy" "$latest")
  if [ -z "$plan" ]; then
    log "no backup due"
    return 0
  fi
  read -r bucket prefix retention <<<"$plan"
  read_metadata
  read_installed_version
  file=$STATE/etcd-snapshot.db
  taken=$(now)
  id=${taken//[-:]/} # the backup's id: its UTC time to the second (kubestep/backups.py backup_id)
  read -r revision size sha < <("$ROOT/usr/local/sbin/kubestep-etcd-snapshot" save "$file")
  [ -n "$sha" ]
  key="$prefix$id.db"
  retry 5 3 aws s3api put-object --region "$REGION" --bucket "$bucket" --key "$key" --body "$file" \
    --tagging "$BACKUP_RETENTION_TAG=$retention" >/dev/null
  rm -f "$file"
  item="\"backupId\":{\"S\":\"$id\"},\"takenAt\":{\"S\":\"$taken\"}"
  item+=",\"revision\":{\"N\":\"$revision\"},\"size\":{\"N\":\"$size\"},\"sha256\":{\"S\":\"$sha\"}"
  item+=",\"kubernetesVersion\":{\"S\":\"$INSTALLED_VERSION\"},\"objectKey\":{\"S\":\"$key\"}"
  item+=",\"instanceId\":{\"S\":\"$INSTANCE_ID\"},\"replica\":{\"N\":\"$REPLICA_INDEX\"}"
  # The record, then LATEST (what the next leader reads to know when the next is due).
  retry 5 3 aws dynamodb put-item --region "$REGION" --table-name "$TABLE" \
    --item "{\"pk\":{\"S\":\"$BACKUPS_PK\"},\"sk\":{\"S\":\"$BACKUP_SK_PREFIX$id\"},$item}"
  retry 5 3 aws dynamodb put-item --region "$REGION" --table-name "$TABLE" \
    --item "{\"pk\":{\"S\":\"$BACKUPS_PK\"},\"sk\":{\"S\":\"$LATEST_BACKUP_SK\"},$item}"
  log "etcd backup $id: revision $revision, $size bytes, uploaded to s3://$bucket/$key"
}

# ---------------------------------------------------------------- etcd restore (at boot)

# The restore request (docs/contracts.md, "Restore request"), DynamoDB JSON: "TOKEN BACKUP BUCKET
# KEY SHA256" when there is one, nothing otherwise.
REQUEST_FIELDS_PY='import json, sys
text = sys.stdin.read()
item = json.loads(text).get("Item") if text.strip() else None
if item:
    print(*(item[name]["S"] for name in ("clusterToken", "backupId", "bucket", "objectKey", "sha256")))'

restore_failed() { # restore_failed WHY: the boot fails (failed:etcd-restore) with checks.restoreError saying why
  local why
  why=$(printf '%s' "$1" | tr -d '\042\134') # no double quote or backslash in the JSON string
  CHECKS="{\"restoreError\":{\"S\":\"$why\"}}"
  log "$why"
  return 1
}

restore_if_requested() {
  # RestoreCluster stopped the control plane and asks every replica to restore one snapshot
  # before etcd starts (etcd's disaster-recovery procedure): each member restores the same
  # snapshot under its stable name and peer URL with the new cluster token, then all start as a
  # new cluster. The token on the volume says this volume was restored for that request already
  # (a reboot, or the next instance on this volume, does not restore again).
  local request cluster_token backup bucket key sha file initial='' name
  # Unreadable, the boot fails (and is retried by a new instance): starting etcd on data a
  # restore is replacing would split the cluster.
  request=$(retry 5 3 table_item "$ADMINS_PK" "$RESTORE_REQUEST_SK") || restore_failed "could not read the restore request"
  request=$(python3 -c "$REQUEST_FIELDS_PY" <<<"$request")
  if [ -z "$request" ]; then return 0; fi
  read -r cluster_token backup bucket key sha <<<"$request"
  if [ "$(cut -d' ' -f1 "$RESTORED_MARKER" 2>/dev/null)" = "$cluster_token" ]; then
    log "the etcd volume was restored with token $cluster_token already"
    return 0
  fi
  file=$STATE/etcd-restore.db
  retry 5 10 aws s3api get-object --region "$REGION" --bucket "$bucket" --key "$key" "$file" >/dev/null ||
    restore_failed "could not download s3://$bucket/$key"
  for name in $REPLICA_NAMES; do initial+="${initial:+,}$name=https://$name:2380"; done
  if ! "$ROOT/usr/local/sbin/kubestep-etcd-snapshot" restore "$file" "$sha" "$REPLICA_NAME" \
    "https://$REPLICA_NAME:2380" "$initial" "$cluster_token" "$ROOT$ETCD_DATA_DIR" 2>"$STATE/etcd-restore.log"; then
    rm -f "$file"
    restore_failed "backup $backup not restored: $(tail -n1 "$STATE/etcd-restore.log")"
  fi
  rm -f "$file"
  echo "$cluster_token $backup" >"$RESTORED_MARKER"
  log "etcd restored from backup $backup with cluster token $cluster_token"
}

restored_checks() { # what the report says of the restore this member's data came from
  local restored_token backup
  if read -r restored_token backup <"$RESTORED_MARKER" 2>/dev/null; then
    printf ',"etcdClusterToken":{"S":"%s"},"restoredBackup":{"S":"%s"}' "$restored_token" "$backup"
  fi
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
    PHASE=etcd-restore
    restore_if_requested
    PHASE=dns
    upsert_dns_record
    PHASE=secrets
    place_control_plane_secrets
    read_join_token
    PHASE=aws-iam-authenticator
    prepare_authenticator
    refresh_admins
    bootstrap_control_plane
  else
    PHASE=secrets
    read_join_token
    PHASE=kubeadm-config
    write_kubeadm_configs
    PHASE=kubeadm-join
    join_node
    PHASE=timers
    systemctl daemon-reload
  fi
  systemctl enable --now kubestep-report.timer
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
  read_installed_version
  if [ "$ROLE" = control-plane ]; then
    PHASE=etcd-volume
    remount_etcd_volume
    PHASE=dns
    upsert_dns_record
    refresh_admins
  fi
}

boot() {
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
  read_certificates
  wait_healthy
  PHASE=report
  report ok
  pace_reports
}

periodic_report() {
  # Live state for the management service's gate, after a successful bootstrap only (a failed
  # boot's report stays). Never fails the unit on a bad check: the report says it.
  REPORT_SOURCE=timer
  read_metadata
  read_installed_version
  if [ "$ROLE" = control-plane ]; then
    # In its own process, so a failed step stops the add-ons (errexit) but never this report.
    KUBESTEP_CLAIM_ATTEMPTS=1 bash "$0" converge-addons || log "the add-ons did not converge; the next report retries"
    refresh_admins
  fi
  health_check || true
  read_certificates
  report ok
  pace_reports
}

main() {
  case ${1:-boot} in
    boot) boot ;;
    report) periodic_report ;;
    renew-certificates)
      read_metadata
      renew_certificates
      ;;
    refresh-tokens) refresh_tokens ;;
    backup) take_backup ;;
    converge-addons)
      read_metadata
      converge_addons
      ;;
    *)
      echo "usage: kubestep-bootstrap [boot | report | renew-certificates | refresh-tokens | backup | converge-addons]" >&2
      return 2
      ;;
  esac
}

main "$@"
