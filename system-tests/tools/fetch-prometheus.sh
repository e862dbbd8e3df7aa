#!/usr/bin/env bash
# Fetches the Prometheus the chart deploys (3.x), promtool, Alertmanager (with
# amtool) and postgres_exporter from Debian's unstable suite into
# system-tests/.cache/prometheus/bin, and prints their versions. Nothing is installed
# system-wide (tools/lib/debian-unstable.sh says how). The binaries are static Go programs that run on
# bookworm's libc.
#
# Why: Debian 12's own `prometheus` is 2.42 and built without Kubernetes discovery,
# while the chart deploys 3.5; bookworm's postgres_exporter is 0.11, the chart
# deploys 0.19. The unstable suite moves, so no version is pinned:
# whatever 3.x it serves is taken, and a test fails if its major version stops
# matching the chart's image.
#
# One exception to "nothing system-wide": Debian's Alertmanager reads its notification
# templates (default.tmpl, email.tmpl) from /usr/share/prometheus/alertmanager, a path
# compiled into it (a Debian patch; upstream's binary embeds them), and will not start
# without them. The script copies the two files there (as root), unless that folder
# belongs to an installed Debian package, which it leaves alone.
#
# Usage: system-tests/tools/fetch-prometheus.sh [--refresh]
#   Without --refresh, binaries already in the cache are kept.
set -euo pipefail

cache="$(cd "$(dirname "$0")/.." && pwd)/.cache/prometheus"
# shellcheck source=../../tools/lib/debian-unstable.sh
source "$(dirname "$0")/../../tools/lib/debian-unstable.sh"
bin="$cache/bin"

print_versions() {
  "$bin/prometheus" --version | head -n 1
  "$bin/promtool" --version | head -n 1
  "$bin/alertmanager" --version | head -n 1
  "$bin/postgres_exporter" --version 2>&1 | head -n 1
}

install_alertmanager_templates() {
  local templates=/usr/share/prometheus/alertmanager
  if cmp -s "$cache/root$templates/default.tmpl" "$templates/default.tmpl" && cmp -s "$cache/root$templates/email.tmpl" "$templates/email.tmpl"; then
    return 0
  fi
  if dpkg -S "$templates" > /dev/null 2>&1; then
    echo "fetch-prometheus: $templates belongs to an installed package; its templates may not suit Alertmanager $("$bin/alertmanager" --version | head -n 1)" >&2
    return 0
  fi
  if ! { mkdir -p "$templates" && cp "$cache/root$templates/default.tmpl" "$cache/root$templates/email.tmpl" "$templates/"; } 2> /dev/null; then
    echo "fetch-prometheus: cannot write $templates: run this script as root (Alertmanager will not start without its templates)" >&2
    exit 1
  fi
  echo "fetch-prometheus: Alertmanager's notification templates copied to $templates"
}

if [[ "${1:-}" != "--refresh" && -x "$bin/prometheus" && -x "$bin/promtool" && -x "$bin/alertmanager" && -x "$bin/amtool" && -x "$bin/postgres_exporter" ]]; then
  install_alertmanager_templates
  print_versions
  exit 0
fi

rm -rf "$cache/root" "$bin"
mkdir -p "$bin"
download_from_unstable "$cache/apt" "$cache/root" prometheus promtool prometheus-alertmanager prometheus-postgres-exporter
ln -s ../root/usr/bin/prometheus "$bin/prometheus"
ln -s ../root/usr/bin/promtool "$bin/promtool"
ln -s ../root/usr/bin/prometheus-alertmanager "$bin/alertmanager"
ln -s ../root/usr/bin/amtool "$bin/amtool"
ln -s ../root/usr/bin/prometheus-postgres-exporter "$bin/postgres_exporter"
install_alertmanager_templates
print_versions
