#!/usr/bin/env bash
# Configures and builds everything into build/ (docs/architecture.md: build/bin, build/lib).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
