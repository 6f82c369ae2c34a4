#!/bin/bash
# kubestep-etcd-snapshot: a control-plane replica's etcd snapshots, taken and restored the way
# etcd's disaster-recovery procedure does (etcd docs, "Disaster recovery"; `etcdctl snapshot
# save`, `etcdutl snapshot status` / `restore`, or etcdctl's own before etcd 3.5).
#
#   kubestep-etcd-snapshot is-leader                 exit 0 when the local member leads
#   kubestep-etcd-snapshot save FILE                 prints "REVISION SIZE SHA256" of FILE (SIZE in bytes)
#   kubestep-etcd-snapshot restore FILE SHA256 NAME PEER_URL INITIAL_CLUSTER TOKEN DATA_DIR
#
# save takes the snapshot from the member etcdctl's endpoint names (ETCDCTL_* variables) and
# checks it before anything records it. restore refuses a file whose SHA-256 is not the recorded
# one, then writes a new data dir for this member under a new cluster token (a restored member
# must never rejoin the cluster it came from); a DATA_DIR that exists is moved aside, never
# deleted (DATA_DIR.pre-restore-<time>), so a failed restore loses nothing.
set -euo pipefail

usage() {
  echo "usage: kubestep-etcd-snapshot is-leader | save FILE | restore FILE SHA256 NAME PEER_URL INITIAL_CLUSTER TOKEN DATA_DIR" >&2
  exit 2
}

offline() { # etcdutl where etcd ships it (3.5 and later), else etcdctl's own snapshot commands
  if command -v etcdutl >/dev/null; then etcdutl "$@"; else ETCDCTL_API=3 etcdctl "$@"; fi
}

is_leader() {
  etcdctl endpoint status -w json | python3 -c 'import json, sys
status = json.load(sys.stdin)[0]["Status"]
sys.exit(0 if status["leader"] == status["header"]["member_id"] else 1)'
}

save() {
  local file=$1 partial="$1.partial" revision
  rm -f "$partial"
  etcdctl snapshot save "$partial" >&2
  # Integrity: the snapshot's own hash and its revision, before the file is final.
  revision=$(offline snapshot status "$partial" -w json | python3 -c 'import json, sys
print(json.load(sys.stdin)["revision"])')
  mv "$partial" "$file"
  # The file's size (what is uploaded; etcd's `totalSize` is its database's, without the hash).
  echo "$revision $(stat -c %s "$file") $(sha256sum "$file" | cut -d' ' -f1)"
}

restore() {
  local file=$1 sha=$2 name=$3 peer_url=$4 initial_cluster=$5 token=$6 data_dir=$7 actual
  actual=$(sha256sum "$file" | cut -d' ' -f1)
  if [ "$actual" != "$sha" ]; then
    echo "kubestep-etcd-snapshot: $file has SHA-256 $actual, not the recorded $sha: refused" >&2
    exit 1
  fi
  offline snapshot status "$file" -w json >/dev/null
  rm -rf "$data_dir.restoring"
  offline snapshot restore "$file" --name "$name" --initial-advertise-peer-urls "$peer_url" \
    --initial-cluster "$initial_cluster" --initial-cluster-token "$token" --data-dir "$data_dir.restoring" >&2
  if [ -e "$data_dir" ]; then mv "$data_dir" "$data_dir.pre-restore-$(date -u +%Y%m%dT%H%M%SZ)"; fi
  mv "$data_dir.restoring" "$data_dir"
  echo "kubestep-etcd-snapshot: restored $name from $file (token $token)" >&2
}

case "${1:-}" in
  is-leader) [ "$#" -eq 1 ] || usage; is_leader ;;
  save) [ "$#" -eq 2 ] || usage; save "$2" ;;
  restore) [ "$#" -eq 8 ] || usage; restore "$2" "$3" "$4" "$5" "$6" "$7" "$8" ;;
  *) usage ;;
esac
