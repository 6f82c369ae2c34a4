#!/bin/bash
# kubestep-etcd-member: etcd membership for a control-plane replica that starts with an EMPTY
# etcd volume while the cluster is already initialised (a replica joining, or a replacement
# whose volume was lost), on the replica's stable name, the way kubeadm joins etcd itself:
# a learner first, promoted once it has caught up.
#
#   kubestep-etcd-member add-learner NAME PEER_URL   prints the new member's --initial-cluster
#   kubestep-etcd-member promote PEER_URL            makes it a voting member
#
# add-learner removes every member registered under PEER_URL (the replica's stable name
# belongs to this replica alone, so such a member is its dead predecessor, whose data went with
# its volume), then adds NAME at PEER_URL as a learner. A learner does not count towards
# quorum: adding it never costs the cluster its quorum, whereas a voting member added before it
# runs turns a one-member cluster into a two-member one that cannot commit (or serve a
# linearizable read) until the new member starts, and makes etcd refuse the next add for want
# of started members. etcd accepts one pending learner at a time: the caller retries.
#
# promote fails until the learner is in sync with the leader (the caller retries); a member
# that is already voting is left as it is.
#
# A replica whose volume still holds its data restarts as the same member and only promotes
# (its predecessor may have died between starting the learner and promoting it).
# etcdctl takes its endpoints (the healthy members) and TLS files from ETCDCTL_* variables.
set -euo pipefail

usage() {
  echo "usage: kubestep-etcd-member add-learner NAME PEER_URL | promote PEER_URL" >&2
  exit 2
}

members_with_peer() { # members_with_peer PEER_URL: "ID IS_LEARNER" (ID in hex) of each member registered under it
  etcdctl member list -w json | python3 -c 'import json, sys
url = sys.argv[1]
for member in json.load(sys.stdin).get("members", []):
    if url in member.get("peerURLs", []):
        print("%x %s" % (member["ID"], str(member.get("isLearner", False)).lower()))' "$1"
}

add_learner() {
  local name=$1 peer_url=$2 id learner added initial_cluster
  while read -r id learner; do
    [ -n "$id" ] || continue
    echo "kubestep-etcd-member: removing stale member $id ($peer_url, learner: $learner)" >&2
    etcdctl member remove "$id" >&2
  done < <(members_with_peer "$peer_url")
  added=$(etcdctl member add "$name" --peer-urls="$peer_url" --learner)
  initial_cluster=$(printf '%s\n' "$added" | sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p')
  if [ -z "$initial_cluster" ]; then
    echo "kubestep-etcd-member: etcdctl member add printed no ETCD_INITIAL_CLUSTER" >&2
    exit 1
  fi
  echo "kubestep-etcd-member: added $name ($peer_url) as a learner" >&2
  printf '%s\n' "$initial_cluster"
}

promote() {
  local peer_url=$1 id learner
  read -r id learner < <(members_with_peer "$peer_url") || true
  if [ -z "${id:-}" ]; then
    echo "kubestep-etcd-member: no member is registered under $peer_url" >&2
    exit 1
  fi
  if [ "$learner" != true ]; then
    echo "kubestep-etcd-member: $id ($peer_url) is a voting member" >&2
    return 0
  fi
  etcdctl member promote "$id" >&2
  echo "kubestep-etcd-member: promoted $id ($peer_url)" >&2
}

case "${1:-}" in
  add-learner) [ "$#" -eq 3 ] || usage; add_learner "$2" "$3" ;;
  promote) [ "$#" -eq 2 ] || usage; promote "$2" ;;
  *) usage ;;
esac
