#!/bin/bash
# PostgreSQL's init container: runs before the server starts, at every start of the
# pod. It creates the database cluster on a fresh volume, then makes the roles,
# passwords and grants what this chart version wants (setup.sql), on a temporary
# server that listens on the Unix socket only, so no client sees the work half done.
#
# The same script serves fresh installs and upgrades: chart 0.10 and earlier let the
# official image create the cluster with POSTGRES_USER=<the API's user>, which made
# the API's user the superuser. Here that role is renamed "postgres" (it keeps the
# superuser, who owns the system catalogs), and the API's user becomes a role of its
# own that owns only its tables (setup.sql). No data moves.
#
# Environment (from the StatefulSet): PGDATA, PGHOST (the socket folder),
# POSTGRES_DB, POSTGRES_PASSWORD (the superuser's), API_USER, API_PASSWORD and,
# when enabled, MONITORING_USER/MONITORING_PASSWORD and BACKUP_USER/BACKUP_PASSWORD.
set -euo pipefail

: "${PGDATA:?}" "${PGHOST:?}" "${POSTGRES_DB:?}" "${POSTGRES_PASSWORD:?}" "${API_USER:?}" "${API_PASSWORD:?}"
here=$(dirname "$0")

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
  echo "setup: creating a new database cluster in $PGDATA"
  # Local (socket) connections are trusted: only processes in this pod reach the
  # socket. Over TCP every role needs its password (SCRAM).
  initdb --pgdata="$PGDATA" --username=postgres --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8
  printf '%s\n' '# From anywhere (the pod network), with a password.' 'host all all all scram-sha-256' >> "$PGDATA/pg_hba.conf"
fi

# The temporary server's log is shown only when something fails: on success it is noise.
server_log=$(mktemp)
finish() {
  local status=$?
  pg_ctl --pgdata="$PGDATA" --wait --silent --mode=fast stop || status=1
  if ((status != 0)); then
    echo "setup: FAILED; the temporary server's log:" >&2
    cat "$server_log" >&2
  fi
  rm -f "$server_log"
  exit "$status"
}
pg_ctl --pgdata="$PGDATA" --wait --silent --log="$server_log" --options="-c listen_addresses='' -c unix_socket_directories='$PGHOST'" start
trap finish EXIT

as_role() {
  local role=$1
  shift
  psql --no-psqlrc --quiet --set=ON_ERROR_STOP=1 --dbname=postgres --username="$role" "$@"
}

# The bootstrap superuser (the role that ran initdb, object id 10) is "postgres", or,
# on a cluster made by chart 0.10 or earlier, the API's user.
bootstrap=$(as_role postgres --tuples-only --no-align --command='SELECT rolname FROM pg_roles WHERE oid = 10' 2> /dev/null ||
  as_role "$API_USER" --tuples-only --no-align --command='SELECT rolname FROM pg_roles WHERE oid = 10')
if [[ "$bootstrap" != postgres ]]; then
  echo "setup: the superuser is \"$bootstrap\" (a cluster made by chart 0.10 or earlier): renaming it \"postgres\""
  # A role cannot rename itself while logged in: a temporary superuser does it.
  as_role "$bootstrap" --command='CREATE ROLE wiki_chart_setup SUPERUSER LOGIN'
  as_role wiki_chart_setup --set=bootstrap="$bootstrap" <<'SQL'
ALTER ROLE :"bootstrap" RENAME TO postgres;
SQL
  as_role postgres --command='DROP ROLE wiki_chart_setup'
fi

as_role postgres --file="$here/setup.sql"
echo "setup: roles and grants are in place"
