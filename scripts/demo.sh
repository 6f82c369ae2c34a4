#!/usr/bin/env bash
# The main job on a fresh machine: set up, then create and delete an HA cluster on the
# embedded AWS emulator. Extra arguments go to `kubestep demo` (e.g. --keep).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
exec kubestep demo "$@"
