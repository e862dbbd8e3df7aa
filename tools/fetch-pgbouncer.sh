#!/usr/bin/env bash
# Fetches PgBouncer from Debian's unstable suite into .cache/pgbouncer and prints its
# version; the failover and pooler tests run it from there (PGBOUNCER_BIN, else
# .cache/pgbouncer/bin/pgbouncer, else `pgbouncer` on PATH).
#
# Why: the service names its prepared statements, and PgBouncer keeps those in
# transaction mode only from 1.21 (max_prepared_statements); Debian 12 has 1.18. The
# unstable suite's binary needs a newer glibc than bookworm's, so its own C library and
# loader are unpacked beside it, and bin/pgbouncer is a wrapper that starts the binary
# through that loader. Nothing is installed system-wide (tools/lib/debian-unstable.sh).
# The suite moves, so no version is pinned; a test fails below 1.21.
#
# Usage: tools/fetch-pgbouncer.sh [--refresh]
#   Without --refresh, a PgBouncer already in the cache is kept.
set -euo pipefail

root_dir="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=lib/debian-unstable.sh
source "$root_dir/tools/lib/debian-unstable.sh"
cache="$root_dir/.cache/pgbouncer"
bin="$cache/bin"

if [[ "${1:-}" == "--refresh" || ! -x "$bin/pgbouncer" ]]; then
  rm -rf "$cache/root" "$bin"
  mkdir -p "$bin"
  # PgBouncer and the libraries it links whose bookworm versions are too old for it
  # (ldd on the unpacked binary lists them; the rest, zlib and friends, are bookworm's).
  download_from_unstable "$cache/apt" "$cache/root" pgbouncer libc6 libcares2 libevent-2.1-7t64 \
    libssl3t64 libldap2 libsystemd0 libpam0g libsasl2-2
  cat > "$bin/pgbouncer" <<'WRAPPER'
#!/bin/sh
# PgBouncer from Debian's unstable suite, started through that suite's own loader and
# libraries (tools/fetch-pgbouncer.sh).
root="$(dirname "$(readlink -f "$0")")/../root"
lib="$root/usr/lib/x86_64-linux-gnu"
exec "$lib/ld-linux-x86-64.so.2" --library-path "$lib" "$root/usr/sbin/pgbouncer" "$@"
WRAPPER
  chmod 755 "$bin/pgbouncer"
fi
"$bin/pgbouncer" --version | head -n 1
