#!/usr/bin/env bash
# Fetches rclone from Debian's unstable suite into .cache/rclone and prints its
# version; the tests of the backup's copy to object storage run it from there
# (RCLONE_BIN, else .cache/rclone/bin/rclone, else `rclone` on PATH).
#
# Why: the chart's backup pod takes rclone from the rclone/rclone image, pinned to
# the version the tests run; Debian 12 has 1.60, the unstable suite the current one.
# rclone is one static binary: it runs on bookworm as it is. Nothing is installed
# system-wide (tools/lib/debian-unstable.sh).
#
# Usage: tools/fetch-rclone.sh [--refresh]
#   Without --refresh, an rclone already in the cache is kept.
set -euo pipefail

root_dir="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=lib/debian-unstable.sh
source "$root_dir/tools/lib/debian-unstable.sh"
cache="$root_dir/.cache/rclone"
bin="$cache/bin"

if [[ "${1:-}" == "--refresh" || ! -x "$bin/rclone" ]]; then
  rm -rf "$cache/root" "$bin"
  mkdir -p "$bin"
  download_from_unstable "$cache/apt" "$cache/root" rclone
  ln -s ../root/usr/bin/rclone "$bin/rclone"
fi
"$bin/rclone" version | head -n 1
