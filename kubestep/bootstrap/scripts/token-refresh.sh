#!/bin/bash
# kubestep-token-refresh (systemd timer on every control-plane replica, every 30 minutes):
# keeps the node secret's join token registered in the cluster with a 2-hour TTL, so a node
# joining days after the cluster was made still joins, and rotating the token is writing a new
# value into the node secret.
set -euo pipefail
ROOT=${KUBESTEP_ROOT:-}
# shellcheck source=/dev/null
source "$ROOT/etc/kubestep/bootstrap.env"
PATH=$PATH:$ROOT/snap/bin
kubeconfig=$ROOT/etc/kubernetes/admin.conf

token=$(aws secretsmanager get-secret-value --region "$REGION" --secret-id "$NODE_SECRET_ARN" \
  --query SecretString --output text | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
if [[ ! $token =~ ^[a-z0-9]{6}\.[a-z0-9]{16}$ ]]; then
  echo "kubestep-token-refresh: the node secret's token is not a kubeadm bootstrap token" >&2
  exit 1
fi
token_id=${token%%.*}
# A token's TTL is fixed when it is created: delete, then create it again. Replicas race
# harmlessly: whichever creates it last wins, and "already exists" is success.
kubeadm token delete "$token_id" --kubeconfig "$kubeconfig" >/dev/null 2>&1 || true
if ! kubeadm token create "$token" --ttl 2h --kubeconfig "$kubeconfig" \
  --description "kubestep join token (node secret)" >/dev/null; then
  kubeadm token list --kubeconfig "$kubeconfig" | grep -q "^$token_id\." || exit 1
fi
echo "kubestep-token-refresh: join token $token_id registered for 2h" >&2
