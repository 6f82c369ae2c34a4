#!/bin/bash
# kubestep loader: the only program in the user-data. It fetches this instance's bootstrap bundle
# (scripts, templates, add-on manifests) from the management service's bucket, checks it against
# the SHA-256 its settings carry before it unpacks anything, and runs the bootstrap. cloud-init
# runs it on every boot; a later boot that already unpacked this very bundle runs the bootstrap
# without S3.
#
# It needs nothing the bundle brings: it installs the AWS CLI itself, and reports its own
# failure (`failed:bundle`) to the table the way the bootstrap reports a phase's.
#
# KUBESTEP_ROOT prefixes every file it reads or writes (the test suite runs it unprivileged).
set -Eeuo pipefail
umask 022
ROOT=${KUBESTEP_ROOT:-}
CONF=$ROOT/etc/kubestep
STATE=$ROOT/var/lib/kubestep
# shellcheck source=/dev/null
source "$CONF/bootstrap.env"
# The AWS CLI snap installs into /snap/bin, which cloud-init's PATH may lack.
PATH=$PATH:$ROOT/snap/bin
# The instance may boot before S3 answers or before its role's policy has propagated (IAM is
# eventually consistent): up to 30 attempts 10 s apart.
ATTEMPTS=${KUBESTEP_BUNDLE_ATTEMPTS:-30}
IMDS=http://169.254.169.254/latest
UNPACKED=$STATE/bundle.sha256

log() { printf 'kubestep-loader: %s\n' "$*" >&2; }

retry() { # retry ATTEMPTS DELAY COMMAND...
  local attempts=$1 delay=$2 n
  shift 2
  for ((n = 1; ; n++)); do
    "$@" && return 0
    ((n < attempts)) || return 1
    sleep "$delay"
  done
}

report_failure() { # the bootstrap report item (docs/contracts.md), `failed:bundle`
  local token instance_id key pk=$REPORT_PK
  token=$(curl -sf --retry 5 -X PUT "$IMDS/api/token" -H 'X-aws-ec2-metadata-token-ttl-seconds: 300') || return 1
  instance_id=$(curl -sf --retry 5 -H "X-aws-ec2-metadata-token: $token" "$IMDS/meta-data/instance-id") || return 1
  if [ "$ROLE" = control-plane ]; then
    key="$REPLICA_REPORT_PREFIX$REPLICA_INDEX"
  else
    pk="$NODE_REPORT_PK_PREFIX$instance_id"
    key="$NODE_REPORT_PREFIX$instance_id"
  fi
  retry 5 3 aws dynamodb put-item --region "$REGION" --table-name "$TABLE" --item \
    "{\"pk\":{\"S\":\"$pk\"},\"sk\":{\"S\":\"$key\"},\"status\":{\"S\":\"failed:bundle\"},\"instanceId\":{\"S\":\"$instance_id\"},\"reportedAt\":{\"S\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\"},\"source\":{\"S\":\"boot\"}}"
}

fail() {
  log "$*"
  report_failure || log "could not write the failure report"
  exit 1
}

fetch() { # the bundle, checked, unpacked over the root
  local file=$STATE/bundle.tar.gz actual
  mkdir -p "$STATE"
  retry "$ATTEMPTS" 10 aws s3api get-object --region "$REGION" --bucket "$BUNDLE_BUCKET" --key "$BUNDLE_KEY" \
    "$file" >/dev/null || fail "could not download s3://$BUNDLE_BUCKET/$BUNDLE_KEY"
  actual=$(sha256sum "$file")
  actual=${actual%% *}
  if [ "$actual" != "$BUNDLE_SHA256" ]; then
    rm -f "$file"
    fail "s3://$BUNDLE_BUCKET/$BUNDLE_KEY has SHA-256 $actual, not $BUNDLE_SHA256: refused, nothing unpacked"
  fi
  tar -xzpf "$file" -C "$ROOT/" --no-same-owner
  rm -f "$file"
  echo "$BUNDLE_SHA256" >"$UNPACKED"
}

# Installed before anything can fail: failures are reported with it. Ubuntu 24.04 has the AWS
# CLI as a snap only.
command -v aws >/dev/null || retry 5 10 snap install aws-cli --classic || {
  log "could not install the AWS CLI"
  exit 1
}
if [ "$(cat "$UNPACKED" 2>/dev/null)" != "$BUNDLE_SHA256" ]; then fetch; fi
exec "$ROOT/usr/local/sbin/kubestep-bootstrap" "$@"
