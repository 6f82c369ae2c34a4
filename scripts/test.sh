#!/usr/bin/env bash
# The whole test suite on a fresh machine: set up (the runtime and every test tool; as root on
# Debian, also the Debian packages the tests use), lint, then pytest (unit, infrastructure, local
# runtime, workflows in the emulator, API with schemathesis). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
source scripts/env.sh
ruff check .
# Four workers on two cores: about half of the suite's time is waiting (time-scaled waits, boots,
# real etcd and kubeadm stand-ins, browsers), so two more workers overlap it (18 min -> 14 min
# measured on 2 cores; peak memory ~7.5 GB of the machine's 24).
exec python -m pytest -n 4 --dist loadgroup "$@"
