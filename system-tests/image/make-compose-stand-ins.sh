#!/usr/bin/env bash
# Makes local stand-ins for the images compose.yaml pulls, on a machine that cannot
# reach their registries, so that compose.yaml itself runs unchanged:
#
#   postgres:15.18-bookworm                 Debian 12's postgresql-15, with an entry
#                                           point that honours the official image's
#                                           POSTGRES_USER/PASSWORD/DB and PGDATA
#   quay.io/prometheus/prometheus:v3.5.3    the Prometheus fetch-prometheus.sh fetched
#   quay.io/prometheus/alertmanager:v0.33.1 the Alertmanager it fetched
#
# each under localhost/stand-in/ (stand-ins.sh), never the name compose.yaml uses, on the
# minimal Debian 12 root that make-base-image.sh made. It prints a Compose override file
# that points compose.yaml's services at them:
#
#   podman-compose -f compose.yaml -f <that file> up --build
#
# Grafana has no stand-in: its server is in no registry these machines reach.
#
# Usage: make-compose-stand-ins.sh > override.yaml   (as root; idempotent: an existing
# stand-in is kept)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache_bin="$repo/system-tests/.cache/prometheus"
# shellcheck source=stand-ins.sh
source "$here/stand-ins.sh"
image_of() { sed -nE "/^  $1:\$/,/^  [a-z]/s/^    image: *(\S+)\$/\1/p" "$repo/compose.yaml" | head -n1; }

podman_ image exists "$STAND_IN_DEBIAN" || { echo "no $STAND_IN_DEBIAN: run make-base-image.sh first" >&2; exit 1; }
[[ -x "$cache_bin/bin/prometheus" ]] || { echo "no Prometheus in $cache_bin: run system-tests/tools/fetch-prometheus.sh" >&2; exit 1; }
base=$STAND_IN_DEBIAN

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

override="# A Compose override file: compose.yaml's services on local stand-ins (make-compose-stand-ins.sh).
services:"
build() { # compose service, context directory
  local official stand_in
  official=$(image_of "$1")
  stand_in=$(stand_in_name "$official")
  untag_look_alike "$official" >&2
  override+=$'\n'"  $1:"$'\n'"    image: $stand_in"
  if podman_ image exists "$stand_in"; then echo "compose stand-in: $stand_in already present" >&2; return; fi
  echo "LABEL wiki.stand-in-for=$official" >> "$2/Containerfile"
  podman_ build --network host --tag "$stand_in" "$2" > "$2.log" 2>&1 || { tail -n 30 "$2.log" >&2; exit 1; }
  echo "compose stand-in: built $stand_in for $official" >&2
}

# PostgreSQL: what the official image's entry point does on first start, in brief.
mkdir -p "$work/postgres"
cat > "$work/postgres/entrypoint.sh" <<'SCRIPT'
#!/bin/sh
set -eu
export PGDATA="${PGDATA:-/var/lib/postgresql/data}"
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/pwfile
  initdb --username="${POSTGRES_USER:-postgres}" --pwfile=/tmp/pwfile --auth-local=trust --auth-host=scram-sha-256 > /dev/null
  rm -f /tmp/pwfile
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  db="${POSTGRES_DB:-${POSTGRES_USER:-postgres}}"
  if [ "$db" != postgres ]; then
    echo "CREATE DATABASE \"$db\"" | postgres --single -D "$PGDATA" postgres > /dev/null
  fi
fi
exec "$@" -c listen_addresses='*'
SCRIPT
cat > "$work/postgres/Containerfile" <<CONTAINERFILE
FROM $base
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 > /dev/null && rm -rf /var/lib/apt/lists/*
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
COPY entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN chmod 755 /usr/local/bin/docker-entrypoint.sh
STOPSIGNAL SIGINT
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
CONTAINERFILE
build postgresql "$work/postgres"

# Prometheus and Alertmanager: the binaries, laid out as in the official images
# (binary in /bin, user nobody, data folder owned by it).
mkdir -p "$work/prometheus" "$work/alertmanager"
cp -L "$cache_bin/bin/prometheus" "$cache_bin/bin/promtool" "$work/prometheus/"
cat > "$work/prometheus/Containerfile" <<CONTAINERFILE
FROM $base
COPY prometheus promtool /bin/
RUN mkdir -p /prometheus /etc/prometheus && chown nobody:nogroup /prometheus
USER nobody
WORKDIR /prometheus
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
CONTAINERFILE
build wiki-prometheus "$work/prometheus"

cp -L "$cache_bin/bin/alertmanager" "$cache_bin/bin/amtool" "$work/alertmanager/"
cp "$cache_bin/root/usr/share/prometheus/alertmanager/default.tmpl" "$cache_bin/root/usr/share/prometheus/alertmanager/email.tmpl" "$work/alertmanager/"
cat > "$work/alertmanager/Containerfile" <<CONTAINERFILE
FROM $base
COPY alertmanager amtool /bin/
# Debian's build reads its notification templates from this fixed path.
COPY default.tmpl email.tmpl /usr/share/prometheus/alertmanager/
RUN mkdir -p /alertmanager && chown nobody:nogroup /alertmanager
USER nobody
WORKDIR /alertmanager
ENTRYPOINT ["/bin/alertmanager"]
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]
CONTAINERFILE
build alertmanager "$work/alertmanager"

# The API instances: built by Compose from wiki-service/Dockerfile, on the Node.js stand-in.
node_stand_in=$(stand_in_name "$(sed -nE 's/^ARG NODE_IMAGE=(\S+)$/\1/p' "$repo/wiki-service/Dockerfile")")
podman_ image exists "$node_stand_in" || { echo "no $node_stand_in: run make-base-image.sh first" >&2; exit 1; }
for api in api-1 api-2; do
  override+=$'\n'"  $api:"$'\n'"    build:"$'\n'"      args:"$'\n'"        NODE_IMAGE: $node_stand_in"
done
echo "$override"
