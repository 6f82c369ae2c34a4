# shellcheck shell=bash
# Sourced by the other scripts: the project's virtualenv and Node.js first on PATH.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$ROOT/.venv/bin:$ROOT/.build/node/node_modules/.bin:$PATH"
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1
