#!/usr/bin/env bash
# Fetches the pinned Debian kernels of tests/kernels/kernels.txt into build/kernels/<name>/
# for tests/kernels/vm.py: vmlinuz, config, System.map, release and lib/modules/<release>/
# (with modules.dep made by depmod, as the package's postinst would).
#
#   scripts/kernel-images.sh [NAME...]   fetch all (or the named) kernels; skip what is there
#   scripts/kernel-images.sh --latest    print what each suite offers now (for re-pinning)
#   scripts/kernel-images.sh --apt-cache SUITE ARGS...   apt-cache on a suite's private config
#
# Each suite gets a private apt configuration under build/kernels/apt/<suite>/ (its own
# sources list, lists and cache), so the host's apt state is not touched. apt checks the
# signed InRelease file and the hashes in it; each .deb is checked again here against the
# SHA256 of its pinned version before it is extracted.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
table="$root/tests/kernels/kernels.txt"
out="${KERNELS_DIR:-$root/build/kernels}"
aptroot="$out/apt"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org}"

for tool in apt-get apt-cache dpkg-deb depmod sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || { echo "kernel-images: $tool is missing" >&2; exit 1; }
done

declare -A apt_ready=()

# Writes the private apt configuration of one suite and prints its apt options.
apt_opts() {
  local suite="$1" dir="$aptroot/$1"
  printf '%s\n' \
    -o "Dir::Etc::SourceList=$dir/sources.list" \
    -o "Dir::Etc::SourceParts=$dir/sources.list.d" \
    -o "Dir::Etc::Preferences=$dir/preferences" \
    -o "Dir::Etc::PreferencesParts=$dir/preferences.d" \
    -o "Dir::State=$dir/state" \
    -o "Dir::State::Lists=$dir/lists" \
    -o "Dir::State::status=$dir/status" \
    -o "Dir::Cache=$dir/cache" \
    -o "APT::Architecture=amd64" \
    -o "APT::Architectures=amd64" \
    -o "Acquire::Languages=none" \
    -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false" \
    -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false" \
    -o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false" \
    -o "Debug::NoLocking=true" \
    -o "APT::Sandbox::User=root"
}

apt_setup() {
  local suite="$1" dir="$aptroot/$1"
  [[ -n "${apt_ready[$suite]:-}" ]] && return 0
  mkdir -p "$dir"/{sources.list.d,preferences.d,state,lists/partial,cache/archives/partial,debs}
  : >"$dir/status"
  : >"$dir/preferences"
  {
    echo "deb [arch=amd64] $mirror/debian $suite main"
    case "$suite" in
      *-backports) ;;
      *) echo "deb [arch=amd64] $mirror/debian-security $suite-security main" ;;
    esac
  } >"$dir/sources.list"
  local -a opts
  mapfile -t opts < <(apt_opts "$suite")
  echo "kernel-images: apt-get update ($suite)"
  apt-get "${opts[@]}" update -qq
  apt_ready[$suite]=1
}

field() { # field NAME < record
  sed -n "s/^$1: //p" | head -1
}

if [[ "${1:-}" == "--apt-cache" ]]; then
  # scripts/kernel-images.sh --apt-cache SUITE ARGS...: apt-cache on a suite's private config.
  suite="$2"
  shift 2
  apt_setup "$suite"
  mapfile -t opts < <(apt_opts "$suite")
  exec apt-cache "${opts[@]}" "$@"
fi

if [[ "${1:-}" == "--latest" ]]; then
  for suite in bullseye bookworm trixie trixie-backports; do
    apt_setup "$suite"
    mapfile -t opts < <(apt_opts "$suite")
    echo "== $suite"
    apt-cache "${opts[@]}" madison linux-image-cloud-amd64 linux-image-amd64
    apt-cache "${opts[@]}" show linux-image-cloud-amd64 | grep -E '^(Version|Depends):'
  done
  exit 0
fi

want=("$@")
started=$SECONDS
fetched_bytes=0
declare -a summary=()

while read -r name suite packages version _rest; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  if ((${#want[@]})); then
    match=0
    for w in "${want[@]}"; do [[ "$w" == "$name" ]] && match=1; done
    ((match)) || continue
  fi
  dest="$out/$name"
  stamp_text="$suite ${packages//,/ } $version"
  if [[ -f "$dest/.fetched" && "$(cat "$dest/.fetched")" == "$stamp_text" && -f "$dest/vmlinuz" ]]; then
    summary+=("$name: already there ($(cat "$dest/release"), $version)")
    continue
  fi

  apt_setup "$suite"
  mapfile -t opts < <(apt_opts "$suite")
  debdir="$aptroot/$suite/debs"
  debs=()
  IFS=',' read -r -a pkgs <<<"$packages"
  for pkg in "${pkgs[@]}"; do
    record="$(apt-cache "${opts[@]}" show "$pkg=$version" 2>/dev/null || true)"
    if [[ -z "$record" ]]; then
      echo "kernel-images: $pkg=$version is not in $suite any more; pick a new pin from" >&2
      echo "  scripts/kernel-images.sh --latest   and update $table" >&2
      exit 1
    fi
    sha="$(field SHA256 <<<"$record")"
    size="$(field Size <<<"$record")"
    file="$debdir/$(basename "$(field Filename <<<"$record")")"
    if [[ -f "$file" ]] && echo "$sha  $file" | sha256sum --quiet -c - 2>/dev/null; then
      echo "kernel-images: $pkg=$version: cached $(basename "$file")"
    else
      rm -f "$file"
      echo "kernel-images: downloading $pkg=$version ($((size / 1024 / 1024)) MiB)"
      (cd "$debdir" && apt-get "${opts[@]}" download -qq "$pkg=$version")
      echo "$sha  $file" | sha256sum --quiet -c - ||
        { echo "kernel-images: $file does not match its SHA256 $sha" >&2; exit 1; }
      fetched_bytes=$((fetched_bytes + size))
    fi
    debs+=("$file")
  done

  tmp="$dest.tmp"
  rm -rf "$tmp"
  mkdir -p "$tmp/pkg"
  for deb in "${debs[@]}"; do dpkg-deb -x "$deb" "$tmp/pkg"; done
  # Up to 6.18 the kernel is /boot/vmlinuz-REL (config-REL, System.map-REL beside it);
  # from 6.19 on it is /usr/lib/modules/REL/vmlinuz (config, System.map beside it).
  moddir=""
  for candidate in "$tmp"/pkg/lib/modules/* "$tmp"/pkg/usr/lib/modules/*; do
    if [[ -d "$candidate" ]]; then moddir="$candidate"; break; fi
  done
  [[ -n "$moddir" ]] || { echo "kernel-images: no lib/modules/* in $packages" >&2; exit 1; }
  release="${moddir##*/}"
  for item in vmlinuz config System.map; do
    for candidate in "$tmp/pkg/boot/$item-$release" "$moddir/$item"; do
      if [[ -f "$candidate" ]]; then mv "$candidate" "$tmp/$item"; break; fi
    done
  done
  [[ -f "$tmp/vmlinuz" && -f "$tmp/config" ]] ||
    { echo "kernel-images: no vmlinuz or config for $release in $packages" >&2; exit 1; }
  mkdir -p "$tmp/lib/modules"
  mv "$moddir" "$tmp/lib/modules/$release"
  rm -rf "$tmp/pkg"
  depmod_args=(-b "$tmp")
  [[ -f "$tmp/System.map" ]] && depmod_args+=(-F "$tmp/System.map")
  depmod "${depmod_args[@]}" "$release"
  echo "$release" >"$tmp/release"
  echo "$stamp_text" >"$tmp/.fetched"
  rm -rf "$dest"
  mv "$tmp" "$dest"
  summary+=("$name: fetched ${packages//,/ } $version -> $release")
done <"$table"

echo "kernel-images: done in $((SECONDS - started)) s, downloaded $((fetched_bytes / 1024 / 1024)) MiB, into $out"
for line in "${summary[@]}"; do echo "  $line"; done
# The configs that matter for the BPF observer.
for dir in "$out"/*/; do
  [[ -f "$dir/config" && -f "$dir/release" ]] || continue
  printf '  %-6s %s:' "$(basename "$dir")" "$(cat "$dir/release")"
  for key in DEBUG_INFO_BTF DEBUG_INFO_BTF_MODULES BPF_SYSCALL BPF_JIT BPF_EVENTS KPROBES \
    FPROBE FUNCTION_TRACER DYNAMIC_FTRACE_WITH_DIRECT_CALLS BPF_LSM CGROUP_BPF; do
    value="$(grep -E "^CONFIG_$key=" "$dir/config" | cut -d= -f2 || true)"
    printf ' %s=%s' "$key" "${value:-n}"
  done
  echo
done
