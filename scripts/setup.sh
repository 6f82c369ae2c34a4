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

# shellcheck lints the instances' bootstrap script in the tests (Debian package).
if ! command -v shellcheck >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && apt-get install -y -qq shellcheck) >/dev/null 2>&1 \
      || echo "note: could not install shellcheck; the bootstrap lint test will fail" >&2
  else
    echo "note: install shellcheck (e.g. sudo apt-get install shellcheck) for the bootstrap lint test" >&2
  fi
fi

# Real etcd (etcd-server, etcd-client) runs the bootstrap's etcd recovery test; cloud-init
# checks the rendered user-data (`cloud-init schema`). Debian packages.
if ! command -v etcd >/dev/null 2>&1 || ! command -v etcdctl >/dev/null 2>&1 || ! command -v cloud-init >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server etcd-client cloud-init) \
      >/dev/null 2>&1 || echo "note: could not install etcd-server/etcd-client/cloud-init; the bootstrap tests will fail" >&2
  else
    echo "note: install etcd-server, etcd-client and cloud-init (e.g. sudo apt-get install ...) for the bootstrap tests" >&2
  fi
fi

# Node.js 20 is end of life and jsii prints a banner on every synth; a local Node.js 22 from
# the npm registry comes first on PATH for everything run through scripts/env.sh.
if ! .build/node/node_modules/.bin/node --version 2>/dev/null | grep -q '^v22'; then
  if command -v npm >/dev/null 2>&1; then
    mkdir -p .build/node
    npm install --silent --no-save --no-audit --no-fund --prefix .build/node node@22 >/dev/null 2>&1 \
      || echo "note: could not install Node.js 22 locally; the CDK will use $(node --version 2>/dev/null || echo 'no node')" >&2
  else
    echo "error: Node.js (npm) is required by the AWS CDK; install it (e.g. apt-get install nodejs npm)" >&2
    exit 1
  fi
fi
