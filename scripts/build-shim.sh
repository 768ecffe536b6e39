#!/usr/bin/env bash
# Builds the power-loss recorder test/crash/shim/walrec.c into
# test/crash/build/walrec.so (an LD_PRELOAD library). Idempotent: does nothing
# when the library is newer than its source and this script.
# Usage: scripts/build-shim.sh [--force]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/test/crash/shim/walrec.c"
out_dir="$root/test/crash/build"
out="$out_dir/walrec.so"
cc="${CC:-gcc}"

if [[ "${1:-}" != "--force" && -f "$out" && "$out" -nt "$src" && "$out" -nt "${BASH_SOURCE[0]}" ]]; then
  exit 0
fi

if ! command -v "$cc" >/dev/null 2>&1; then
  echo "build-shim: the C compiler '$cc' was not found; install gcc (Debian: apt-get install -y gcc) to build $out" >&2
  exit 1
fi

mkdir -p "$out_dir"
# Build to a temporary name and rename, so a concurrent run never sees half a library.
tmp="$(mktemp "$out_dir/walrec.so.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
"$cc" -std=gnu11 -O2 -g -Wall -Wextra -fPIC -shared -o "$tmp" "$src" -ldl -lpthread
mv -f "$tmp" "$out"
trap - EXIT
echo "build-shim: built $out"
