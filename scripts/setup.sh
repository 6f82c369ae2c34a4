#!/usr/bin/env bash
# Set up a fresh machine for kubestep: a virtualenv with the project and its test tools, and a
# supported Node.js (22) for the CDK's jsii runtime. Idempotent; re-runs are quick.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.kubestep-installed
want=$(cat pyproject.toml requirements-lambda.txt | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  mkdir -p .build
  # Quiet unless it fails: pip's warnings are noise in the demo's output.
  if ! { .venv/bin/python -m pip install --quiet --upgrade pip \
         && .venv/bin/python -m pip install --quiet -e '.[test]'; } > .build/pip-install.log 2>&1; then
    cat .build/pip-install.log >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi

# checkov (CloudFormation checks of the synthesized template) in a virtualenv of its own: it pins
# boto3==1.35.49 and old urllib3/packaging, which the project (moto, boto3 >= 1.40) cannot share.
CHECKOV_VERSION=3.3.30
if ! .build/checkov/bin/checkov --version 2>/dev/null | grep -qx "$CHECKOV_VERSION"; then
  mkdir -p .build
  if ! { "$PYTHON" -m venv .build/checkov \
         && .build/checkov/bin/python -m pip install --quiet "checkov==$CHECKOV_VERSION"; } > .build/checkov-install.log 2>&1; then
    cat .build/checkov-install.log >&2
    exit 1
  fi
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
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null 2>&1 \
      || echo "note: could not install ${missing[*]}; the tests that use them will fail" >&2
  else
    echo "note: install ${missing[*]} (e.g. sudo apt-get install ${missing[*]}); the tests use them" >&2
  fi
fi

# Debian's kubectl (package kubernetes-client) reads the kubeconfig `get-credentials` writes in
# the tests. Unpacked into .build/debian-kubectl rather than installed: installing would collide
# with another package's /usr/bin/kubectl (the Google Cloud CLI's, on some machines), and the tests
# must run Debian's, whatever kubectl is on PATH.
if [ ! -x .build/debian-kubectl/usr/bin/kubectl ]; then
  if command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1; then
    mkdir -p .build/debian-kubectl
    fetch_kubectl() { (cd .build && rm -f kubernetes-client_*.deb && apt-get download -qq kubernetes-client); }
    if ! fetch_kubectl >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
      if apt-get update -qq >/dev/null 2>&1; then fetch_kubectl >/dev/null 2>&1 || true; fi
    fi
    if ls .build/kubernetes-client_*.deb >/dev/null 2>&1; then
      dpkg-deb -x .build/kubernetes-client_*.deb .build/debian-kubectl && rm -f .build/kubernetes-client_*.deb
    else
      echo "note: could not fetch Debian's kubernetes-client; the kubeconfig acceptance test will fail" >&2
    fi
  else
    echo "note: Debian's kubernetes-client (apt) is needed by the kubeconfig acceptance test" >&2
  fi
fi

# Node.js 20 is end of life and jsii prints a banner on every synth; a local Node.js 22 from
# the npm registry comes first on PATH for everything run through scripts/env.sh. The same
# install brings axe-core (the accessibility engine the dashboard's browser tests inject) and
# asl-validator (the Amazon States Language validator, tests/unit/test_asl_validator.py). One
# `npm install` with all three: a later `--no-save` install would prune the others.
node_packages=(node@22 axe-core@4 asl-validator@4.0.0)
if ! .build/node/node_modules/.bin/node --version 2>/dev/null | grep -q '^v22' \
   || [ ! -f .build/node/node_modules/axe-core/axe.min.js ] \
   || [ ! -x .build/node/node_modules/.bin/asl-validator ]; then
  if command -v npm >/dev/null 2>&1; then
    mkdir -p .build/node
    npm install --silent --no-save --no-audit --no-fund --prefix .build/node "${node_packages[@]}" >/dev/null 2>&1 \
      || echo "note: could not install ${node_packages[*]} locally; the CDK will use $(node --version 2>/dev/null || echo 'no node'), and the browser and ASL tests will fail" >&2
  else
    echo "error: Node.js (npm) is required by the AWS CDK; install it (e.g. apt-get install nodejs npm)" >&2
    exit 1
  fi
fi
