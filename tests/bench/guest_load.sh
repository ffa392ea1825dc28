#!/usr/bin/env bash
# load_bench.py inside a Debian kernel booted under qemu (tests/kernels/vm.py),
# for each build given, one after the other in the same kind of guest: where
# this host's kernel refuses what a figure depends on (fentry, for marked task
# starts), a guest's kernel does not.
#
#   tests/bench/guest_load.sh KERNEL BUILD_DIR [BUILD_DIR...]
#   CLIENTS (50), TASKS (4: more live tasks than that and an emulated sidecar
#   answers status calls too slowly for the bench), LOAD_SECONDS (30)
#
# The guest sees this host's / read-only: build directories must not be under
# /tmp, which is the guest's own.
set -euo pipefail
cd "$(dirname "$0")/../.."
kernel=$1
shift
for build in "$@"; do
  build=$(realpath "$build")
  echo "### build $build ($(git -C "$build/.." rev-parse --short HEAD 2>/dev/null || echo '?'))"
  python3 tests/kernels/vm.py --kernel "$kernel" --timeout 1400 \
    --env "LOAD_SECONDS=${LOAD_SECONDS:-30}" --env IDLE_SECONDS=2 \
    --env "CLIENTS=${CLIENTS:-50}" --env "TASKS=${TASKS:-4}" --env "TRACER_BUILD_DIR=$build" \
    -- /usr/bin/python3 "$PWD/tests/bench/load_bench.py" "$build" 2>&1 | grep -v '^\['
done
