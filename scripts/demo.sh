#!/usr/bin/env bash
# The main job on a fresh machine: set up what the demo needs (the project with its `local` extra
# and a supported Node.js; no test tools, no Debian packages), then create and delete an HA cluster
# on the embedded AWS emulator. Extra arguments go to `kubestep demo` (e.g. --keep).
set -euo pipefail
cd "$(dirname "$0")/.."
setup_start=$SECONDS
bash scripts/setup.sh runtime
setup_seconds=$((SECONDS - setup_start))
source scripts/env.sh
demo_status=0
kubestep demo "$@" || demo_status=$?
disk=$(du -sm .venv .build/node 2>/dev/null | awk '{total += $1} END {printf "%d MB", total}')
# The reference numbers are the README's ("What each command installs"), measured on a fresh
# virtualenv with pip's cache warm; a test keeps the two equal.
echo
echo "set-up for the demo: ${setup_seconds}s this time, ${disk} on disk (.venv, .build/node);" \
  "from nothing about 75 s and 960 MB." \
  "scripts/test.sh adds the test tools: about 70 s and 610 MB more (as root, Debian packages too)."
exit "$demo_status"
