#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine, as root: installs what it
# needs, builds, and runs every test through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: the tests load BPF programs and create users" >&2; exit 1; }
scripts/install-deps.sh
scripts/build.sh
scripts/python-envs.sh   # pinned Prefect, OpenTelemetry and pytest (tests/python/*.txt)
scripts/build-wheel.sh   # the plugin's wheel, installed into each of them
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
scripts/kernel-images.sh # Debian's kernels for the qemu matrix (tests/kernels/kernels.txt)
cd build
ctest --output-on-failure --timeout 900
