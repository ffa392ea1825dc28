#!/usr/bin/env bash
# The whole test suite on a fresh Debian 12 machine, as root: installs what it
# needs, builds, and runs every test through ctest.
#
# The downloads (PyPI, npm, Debian's kernel images) wait on the network and the
# build waits on the CPU, so they run side by side: on a fresh 2-core machine
# that takes minutes off the suite's budget. Each phase prints how long it took.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run as root: the tests load BPF programs and create users" >&2; exit 1; }

phase() { # phase NAME COMMAND...: runs COMMAND, then prints how long it took
  local name="$1" started=$SECONDS
  shift
  "$@"
  echo "test.sh: $name took $((SECONDS - started)) s"
}

downloads() {
  scripts/python-envs.sh   # pinned Prefect, OpenTelemetry and pytest (tests/python/*.txt)
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
  scripts/kernel-images.sh # Debian's kernels for the qemu matrix (tests/kernels/kernels.txt)
}

phase "Debian packages" scripts/install-deps.sh
mkdir -p build
downloads_log=build/downloads.log
phase "downloads (beside the build)" downloads >"$downloads_log" 2>&1 &
downloads_pid=$!
phase build scripts/build.sh
if ! wait "$downloads_pid"; then
  cat "$downloads_log" >&2
  echo "test.sh: the downloads failed (log above, kept in $downloads_log)" >&2
  exit 1
fi
tail -n 1 "$downloads_log"
phase "plugin wheel" scripts/build-wheel.sh # the plugin's wheel, installed into each venv
cd build
# Two at a time: tests/CMakeLists.txt says which run alone.
phase ctest ctest -j2 --output-on-failure --timeout 900
