# shellcheck shell=bash
# Sourced by the other scripts (and by you): the project's virtualenv and Node.js first on PATH.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# npm's default global prefix is the directory of the `node` it runs under: with the project's
# Node.js first on PATH, `npm install -g aws-cdk` would install into .build/node, off PATH. Keep it
# where it is without this script (a prefix set in npm's own configuration is left alone).
if [ -z "${NPM_CONFIG_PREFIX:-}${npm_config_prefix:-}" ] && ! grep -qs '^[[:space:]]*prefix[[:space:]]*=' "$HOME/.npmrc"; then
  if _kubestep_node=$(command -v node 2>/dev/null) && [[ $_kubestep_node != "$ROOT"/* ]]; then
    NPM_CONFIG_PREFIX=$(dirname "$(dirname "$(readlink -f "$_kubestep_node")")")
    export NPM_CONFIG_PREFIX
  fi
  unset _kubestep_node
fi
export PATH="$ROOT/.venv/bin:$ROOT/.build/node/node_modules/.bin:$PATH"
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1
