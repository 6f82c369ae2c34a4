#!/usr/bin/env bash
# The whole test suite on a fresh machine: set up, lint, then pytest (unit, infrastructure,
# local runtime, workflows in the emulator, API with schemathesis). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
ruff check .
exec python -m pytest -n 2 --dist loadgroup "$@"
