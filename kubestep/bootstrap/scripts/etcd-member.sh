#!/bin/bash
# kubestep-etcd-member: etcd membership for a control-plane replica that starts with an EMPTY
# etcd volume while the cluster is already initialised (a replacement whose volume was lost, or
# a replica joining after the first one initialised the cluster).
#
#   kubestep-etcd-member join NAME PEER_URL
#
# 1. removes every member registered under PEER_URL: the replica's stable name belongs to this
#    replica alone, so such a member is its dead predecessor, whose data went with its volume;
# 2. adds NAME at PEER_URL (etcd refuses while another added member has not started yet, to
#    keep quorum: the caller retries);
# 3. prints the --initial-cluster value for the new member, which then starts with an empty
#    data dir and --initial-cluster-state=existing.
# A replica whose volume still holds its data never comes here: it restarts as the same member.
# etcdctl takes its endpoints (the healthy members) and TLS files from ETCDCTL_* variables.
set -euo pipefail
if [ "$#" -ne 3 ] || [ "$1" != join ]; then
  echo "usage: kubestep-etcd-member join NAME PEER_URL" >&2
  exit 2
fi
name=$2
peer_url=$3

members=$(etcdctl member list)
# `member list` lines: ID, status, name, peer URLs (comma-joined), client URLs, is learner
stale=$(printf '%s\n' "$members" | awk -F', ' -v url="$peer_url" \
  '{ n = split($4, urls, ","); for (i = 1; i <= n; i++) if (urls[i] == url) print $1 }')
for id in $stale; do
  echo "kubestep-etcd-member: removing stale member $id ($peer_url)" >&2
  etcdctl member remove "$id" >&2
done

added=$(etcdctl member add "$name" --peer-urls="$peer_url")
initial_cluster=$(printf '%s\n' "$added" | sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p')
if [ -z "$initial_cluster" ]; then
  echo "kubestep-etcd-member: etcdctl member add printed no ETCD_INITIAL_CLUSTER" >&2
  exit 1
fi
echo "kubestep-etcd-member: added $name ($peer_url)" >&2
printf '%s\n' "$initial_cluster"
