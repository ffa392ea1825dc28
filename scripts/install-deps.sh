#!/usr/bin/env bash
# Installs the Debian 12 packages that the build, the tests and the demo need.
# Idempotent: only asks apt for what is missing. Run as root.
set -euo pipefail

packages=(
  build-essential cmake pkg-config          # C++ toolchain
  clang llvm libbpf-dev bpftool             # BPF programs and skeletons
  libclang-rt-14-dev                        # libFuzzer (tests/fuzz)
  capnproto libcapnp-dev                    # the wire contract and KJ
  libsystemd-dev systemd                    # sd_notify, socket activation (and its test tool)
  libre2-dev libyaml-cpp-dev libsqlite3-dev # policies and local state
  catch2                                    # C++ unit tests
  python3 python3-pytest python3-dev        # the plugin (its binding needs the headers), the system tests
  python3-psutil sysstat                    # what users poll with today (tests/bench)
  python3-jsonschema python3-yaml           # the policy JSON Schema test
  util-linux passwd                         # unshare, runuser, useradd in the tests
  chromium                                  # renders artifacts as Prefect's UI would (tests/browser)
  prometheus                                # promtool checks the /metrics format
  qemu-system-x86 busybox-static            # tests/kernels: Debian kernels under qemu (TCG)
  e2fsprogs kmod zstd                       # their scratch disk, depmod, zstd-packed kernels
)

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The browser test's npm packages (tests/browser/package-lock.json) need Node.js.
if ! command -v npm >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm
fi
