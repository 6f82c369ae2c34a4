#!/usr/bin/env bash
# Set up a fresh machine for kubestep. Idempotent; re-runs are quick.
#
#   bash scripts/setup.sh runtime   what the demo and the local runtime need: .venv with the project
#                                   and its `local` extra (moto, the AWS CDK, Powertools), and a
#                                   supported Node.js for the CDK's jsii if the machine has none
#   bash scripts/setup.sh test      (the default) the runtime and the test tools: the `test` extra in
#                                   the same .venv, checkov in its own virtualenv, axe-core and
#                                   asl-validator, Debian's kubectl unpacked under .build/, and, run
#                                   as root on Debian, the Debian packages the tests use
#
# One virtualenv with extras, not one per command: the test extra is a superset of the runtime's,
# so `scripts/test.sh` after `scripts/demo.sh` only adds the test tools, and both commands, the
# README's CLI examples and `source scripts/env.sh` use the same .venv. Each step says what it
# does before it starts and how long it took and how much disk it uses when it ends; the tools'
# own output goes to .build/*.log (printed if a step fails).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-test}
case "$MODE" in
  runtime | test) ;;
  *) echo "usage: bash scripts/setup.sh [runtime|test]" >&2; exit 2 ;;
esac
PYTHON=${PYTHON:-python3}
mkdir -p .build
setup_start=$SECONDS

say() { printf '%s\n' "$*"; }
step() { step_start=$SECONDS; say "==> $*"; }
megabytes() { du -sm "$@" 2>/dev/null | awk '{total += $1} END {printf "%d MB", total}'; }
step_done() { say "    done in $((SECONDS - step_start))s${1:+ ($1)}"; }

# Run a command with its output in LOG; every 15 s, say how far it got (PROGRESS LOG prints that).
run_logged() {
  local log=$1 progress=$2
  shift 2
  "$@" >"$log" 2>&1 &
  local pid=$! ticks=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    ticks=$((ticks + 1))
    if [ $((ticks % 15)) = 0 ]; then
      say "    ... $((SECONDS - step_start))s: $("$progress" "$log")"
    fi
  done
  if ! wait "$pid"; then
    tail -n 40 "$log" >&2
    say "error: the step failed; its whole log is $log" >&2
    return 1
  fi
}

pip_progress() {
  local last collected
  last=$(grep -v '^ ' "$1" | tail -n 1)
  collected=$(grep -c '^Collecting ' "$1" || true)
  case $last in
    "Installing collected packages: "*)
      say "installing $(($(tr -cd , <<<"$last" | wc -c) + 1)) packages" ;;
    *) say "$collected packages resolved and fetched so far" ;;
  esac
}
elapsed_only() { say "still running (log: $1)"; }

# ---------------------------------------------------------------- the Python virtualenv

if [ ! -x .venv/bin/python ]; then
  step "creating the virtualenv .venv ($("$PYTHON" --version 2>&1))"
  "$PYTHON" -m venv .venv
  step_done
fi
stamp=.venv/.kubestep-installed
want=$(cat pyproject.toml requirements-lambda.txt | sha256sum | cut -c1-16)
have=$(cat "$stamp" 2>/dev/null || true)
# The stamp says what is installed: "<hash>" everything (the test extra), "<hash> runtime" the
# local extra only.
if [ "$MODE" = test ] && [ "$have" != "$want" ]; then
  step "installing the project with its test extra into .venv (the runtime's packages plus pytest, cfn-lint," \
    "schemathesis, playwright, policy_sentry, parliament, cloudsplaining: about 1.1 GB)"
  run_logged .build/pip-install.log pip_progress \
    sh -c ".venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -e '.[test]'"
  echo "$want" >"$stamp"
  step_done ".venv: $(megabytes .venv)"
elif [ "$MODE" = runtime ] && [ "$have" != "$want" ] && [ "$have" != "$want runtime" ]; then
  step "installing the project with its local extra into .venv (moto, the AWS CDK, Powertools: about 780 MB)"
  run_logged .build/pip-install.log pip_progress .venv/bin/python -m pip install -e '.[local]'
  echo "$want runtime" >"$stamp"
  step_done ".venv: $(megabytes .venv)"
fi

# ---------------------------------------------------------------- Node.js for the CDK's jsii

# jsii runs the CDK's TypeScript core in Node.js and prints a banner on every synth under a Node.js
# it no longer supports (20 and older, odd-numbered releases): a Node.js 22 or 24 on the machine is
# used as is; otherwise a local Node.js 22 from the npm registry comes first on PATH for everything
# run through scripts/env.sh. The test mode adds axe-core (the accessibility engine the dashboard's
# browser tests inject) and asl-validator (tests/unit/test_asl_validator.py) in the same directory,
# in one `npm install` with the Node.js: a later `--no-save` install would prune the others.
supported_node() { "$1" --version 2>/dev/null | grep -Eq '^v(22|24)\.'; }
local_node=.build/node/node_modules/.bin/node
node_packages=()
if ! supported_node "$local_node" && ! supported_node node; then
  node_packages+=(node@22)
fi
if [ "$MODE" = test ]; then
  if [ ! -f .build/node/node_modules/axe-core/axe.min.js ] || [ ! -x .build/node/node_modules/.bin/asl-validator ]; then
    node_packages=(node@22 axe-core@4 asl-validator@4.0.0)
  fi
fi
if [ "${#node_packages[@]}" -gt 0 ]; then
  if ! command -v npm >/dev/null 2>&1; then
    say "error: npm is required to install Node.js 22 for the AWS CDK (e.g. apt-get install nodejs npm)" >&2
    exit 1
  fi
  step "installing ${node_packages[*]} into .build/node (npm; Node.js itself is about 190 MB)"
  mkdir -p .build/node
  if run_logged .build/npm-install.log elapsed_only \
      npm install --no-save --no-audit --no-fund --prefix .build/node "${node_packages[@]}"; then
    step_done ".build/node: $(megabytes .build/node)"
  else
    say "note: could not install ${node_packages[*]}; the CDK will use $(node --version 2>/dev/null || echo 'no node')" >&2
  fi
fi

if [ "$MODE" = runtime ]; then
  say "set-up (runtime) took $((SECONDS - setup_start))s; .venv and .build/node use $(megabytes .venv .build/node)"
  exit 0
fi

# ---------------------------------------------------------------- the test tools

# checkov (CloudFormation checks of the synthesized template) in a virtualenv of its own: it pins
# boto3==1.35.49 and old urllib3/packaging, which the project (moto, boto3 >= 1.40) cannot share.
CHECKOV_VERSION=3.3.30
if ! .build/checkov/bin/checkov --version 2>/dev/null | grep -qx "$CHECKOV_VERSION"; then
  step "installing checkov $CHECKOV_VERSION into .build/checkov (its own virtualenv: about 290 MB)"
  run_logged .build/checkov-install.log pip_progress \
    sh -c "'$PYTHON' -m venv .build/checkov && .build/checkov/bin/python -m pip install 'checkov==$CHECKOV_VERSION'"
  step_done ".build/checkov: $(megabytes .build/checkov)"
fi

# Debian packages the tests use: shellcheck and cloud-init lint and validate the instances'
# bootstrap script and user-data (`cloud-init schema`); etcd-server and etcd-client run a real
# etcd cluster through kubestep's member recovery; chromium is the browser the dashboard's
# Playwright tests drive (never `playwright install`, which downloads a browser build).
apt_packages=(shellcheck cloud-init etcd-server etcd-client chromium)
apt_commands=(shellcheck cloud-init etcd etcdctl chromium)
missing=()
for i in "${!apt_packages[@]}"; do
  command -v "${apt_commands[$i]}" >/dev/null 2>&1 || missing+=("${apt_packages[$i]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    step "apt-get install ${missing[*]} (Debian packages the tests use)"
    if run_logged .build/apt-install.log elapsed_only \
        sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing[*]}"; then
      step_done
    else
      say "note: could not install ${missing[*]}; the tests that use them will fail" >&2
    fi
  else
    say "note: install ${missing[*]} (e.g. sudo apt-get install ${missing[*]}); the tests use them" >&2
  fi
fi

# Debian's kubectl (package kubernetes-client) reads the kubeconfig `get-credentials` writes in
# the tests. Unpacked into .build/debian-kubectl rather than installed: installing would collide
# with another package's /usr/bin/kubectl (the Google Cloud CLI's, on some machines), and the tests
# must run Debian's, whatever kubectl is on PATH.
if [ ! -x .build/debian-kubectl/usr/bin/kubectl ]; then
  if command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
    step "unpacking Debian's kubectl (kubernetes-client) into .build/debian-kubectl"
    mkdir -p .build/debian-kubectl
    fetch_kubectl() { (cd .build && rm -f kubernetes-client_*.deb && apt-get download -qq kubernetes-client); }
    if ! fetch_kubectl >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      if apt-get update -qq >/dev/null 2>&1; then fetch_kubectl >/dev/null 2>&1 || true; fi
    fi
    if ls .build/kubernetes-client_*.deb >/dev/null 2>&1; then
      dpkg-deb -x .build/kubernetes-client_*.deb .build/debian-kubectl && rm -f .build/kubernetes-client_*.deb
      step_done
    else
      say "note: could not fetch Debian's kubernetes-client; the kubeconfig acceptance test will fail" >&2
    fi
  else
    say "note: Debian's kubernetes-client (apt) is needed by the kubeconfig acceptance test" >&2
  fi
fi

say "set-up (test) took $((SECONDS - setup_start))s; .venv and .build use $(megabytes .venv .build)"
