#!/usr/bin/env bash
# Creates the Python virtual environments the tests and the demo run Prefect in:
# one per lock file in tests/python/ (every PyPI package pinned), at
# build/venv/<lock name>/, with Debian's python3 (Prefect needs >= 3.10).
# A venv is rebuilt only when its lock file changed. Usage: python-envs.sh [NAME...]
set -euo pipefail
cd "$(dirname "$0")/.."
names=("$@")
if ((${#names[@]} == 0)); then
  for lock in tests/python/*.txt; do names+=("$(basename "$lock" .txt)"); done
fi
for name in "${names[@]}"; do
  lock=tests/python/$name.txt
  [ -f "$lock" ] || { echo "python-envs.sh: no lock file $lock" >&2; exit 2; }
  venv=build/venv/$name
  if [ -f "$venv/.lock" ] && cmp -s "$lock" "$venv/.lock"; then continue; fi
  echo "python venv: $venv"
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps -r "$lock"
  cp "$lock" "$venv/.lock"
done
