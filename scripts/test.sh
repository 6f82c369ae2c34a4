#!/usr/bin/env bash
# The whole test suite on a fresh machine: set up (the runtime and every test tool; as root on
# Debian, also the Debian packages the tests use), lint, then pytest (unit, infrastructure, local
# runtime, workflows in the emulator, API with schemathesis). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
source scripts/env.sh
ruff check .
# Four workers on two cores: with two, the suite waited part of its time (time-scaled waits, boots,
# real etcd and kubeadm stand-ins, browsers); four keep both cores busy (8–9 min measured
# on 2 cores; peak memory ~7.5 GB of the machine's 24).
exec python -m pytest -n 4 --dist loadgroup "$@"
