#!/usr/bin/env bash
# Builds the prefect-tracer wheel (the plugin with libtracer_client.so inside,
# compiled by scikit-build-core from prefect-plugin/CMakeLists.txt) into
# build/dist/, prints its path, and installs it into every venv in build/venv/.
# Uses the venvs' pip: run scripts/python-envs.sh first. The CMake build tree
# is kept in build/wheel/, so a rebuild only compiles what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
pip=build/venv/prefect-3.9.1-otel-1.45.2/bin/pip
[ -x "$pip" ] || { echo "build-wheel.sh: no $pip: run scripts/python-envs.sh first" >&2; exit 2; }

# A wheel left from another version would make the path below ambiguous.
rm -f build/dist/prefect_tracer-*.whl
"$pip" wheel -q --disable-pip-version-check --no-deps -w build/dist ./prefect-plugin
wheel=$(echo build/dist/prefect_tracer-*.whl)
echo "$wheel"

for venv in build/venv/*/; do
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps --force-reinstall "$wheel"
done
