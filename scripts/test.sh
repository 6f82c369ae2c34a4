#!/usr/bin/env bash
# The whole test suite on a fresh machine: set up (the runtime and every test tool; as root on
# Debian, also the Debian packages the tests use), lint, then pytest (unit, infrastructure, local
# runtime, workflows in the emulator, API with schemathesis). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
source scripts/env.sh
ruff check .
exec python -m pytest -n 2 --dist loadgroup "$@"
