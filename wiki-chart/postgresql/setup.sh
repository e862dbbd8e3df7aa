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
# STARTUP_TIMEOUT_SECONDS (postgresql.startupTimeoutSeconds), POSTGRES_DB,
# POSTGRES_PASSWORD (the superuser's), API_USER, API_PASSWORD and, when enabled,
# MONITORING_USER/MONITORING_PASSWORD and BACKUP_USER/BACKUP_PASSWORD.
set -euo pipefail

# A password variable is empty when its Secret lacks the key (the StatefulSet marks
# them optional so that this message, not a container that never starts, says so).
for variable in PGDATA PGHOST STARTUP_TIMEOUT_SECONDS POSTGRES_DB POSTGRES_PASSWORD API_USER API_PASSWORD; do
  if [[ -z "${!variable:-}" ]]; then
    echo "setup: $variable is empty: if it is a password, the database Secret has no such key (postgresql.auth.existingSecret must hold every key of values.yaml's postgresql.auth, metrics and backup)" >&2
    exit 1
  fi
done
for role in MONITORING BACKUP; do
  user="${role}_USER" password="${role}_PASSWORD"
  if [[ -n "${!user:-}" && -z "${!password:-}" ]]; then
    echo "setup: $password is empty: the database Secret has no key for the role ${!user}" >&2
    exit 1
  fi
done

# Role names that would break the cluster. "postgres" is the superuser: setup.sql
# would strip it of SUPERUSER. pg_ is reserved by PostgreSQL. wiki_chart_setup is this
# script's own. Two features sharing one role would put the exporter's or the backup's
# CONNECTION LIMIT on the API. The chart refuses all of these when it renders; this is
# the same check for a Secret or environment changed by hand.
declare -A role_of=()
for variable in API_USER MONITORING_USER BACKUP_USER; do
  name=${!variable:-}
  [[ -n "$name" ]] || continue
  if [[ "$name" == postgres || "$name" == pg_* || "$name" == wiki_chart_setup ]]; then
    echo "setup: $variable is \"$name\", a reserved role name (postgres, pg_*, wiki_chart_setup): choose another" >&2
    exit 1
  fi
  if [[ -n "${role_of[$name]:-}" ]]; then
    echo "setup: $variable and ${role_of[$name]} are both \"$name\": each needs a role of its own" >&2
    exit 1
  fi
  role_of[$name]=$variable
done
here=$(dirname "$0")

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
  echo "setup: creating a new database cluster in $PGDATA"
  # Local (socket) connections are trusted: only processes in this pod reach the
  # socket. Over TCP every role needs its password (SCRAM).
  initdb --pgdata="$PGDATA" --username=postgres --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8
  printf '%s\n' '# From anywhere (the pod network), with a password.' 'host all all all scram-sha-256' >> "$PGDATA/pg_hba.conf"
fi

# PostgreSQL refuses a data folder that others may read. The image's entrypoint
# restores 0700 at every start, but this script runs before it; a volume whose
# permissions were changed (a recursive fsGroup change gives the group rwx) would stop
# the temporary server here.
chmod 00700 "$PGDATA"

# The temporary server's log is shown only when something fails: on success it is
# noise. The trap is set before the start, so a start that fails or times out shows it.
server_log=$(mktemp)
finish() {
  local status=$?
  if pg_ctl --pgdata="$PGDATA" status > /dev/null 2>&1; then
    pg_ctl --pgdata="$PGDATA" --wait --timeout="$STARTUP_TIMEOUT_SECONDS" --silent --mode=fast stop || status=1
  fi
  if ((status != 0)); then
    echo "setup: FAILED; the temporary server's log:" >&2
    cat "$server_log" >&2
  fi
  rm -f "$server_log"
  exit "$status"
}
trap finish EXIT
# After an unclean stop (a lost node, an OOM kill) the start replays the write-ahead
# log up to max_wal_size, which can take minutes. pg_ctl gives up after 60 s unless
# told otherwise, and a restarted init container would replay from the same
# checkpoint again, forever: it waits the pod's whole startup budget instead.
echo "setup: starting a temporary server (waiting up to ${STARTUP_TIMEOUT_SECONDS} s: crash recovery may run first)"
pg_ctl --pgdata="$PGDATA" --wait --timeout="$STARTUP_TIMEOUT_SECONDS" --silent --log="$server_log" --options="-c listen_addresses='' -c unix_socket_directories='$PGHOST'" start

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

# Chart 0.13 and earlier kept the backup records in the "postgres" database. They move
# to the API's database (setup.sql made their new tables), where the exporter now
# connects; a record already there is kept, so a move cut short is finished next time.
if [[ -n "${BACKUP_USER:-}" && "$(as_role postgres --tuples-only --no-align --command="SELECT to_regclass('backup.runs') IS NOT NULL")" == t ]]; then
  echo "setup: moving the backup records from the \"postgres\" database to \"$POSTGRES_DB\""
  as_role postgres --command='\copy backup.runs (finished_at, file, bytes) TO STDOUT' |
    as_role postgres --dbname="$POSTGRES_DB" --command='CREATE TEMPORARY TABLE moved (LIKE backup.runs)' \
      --command='\copy moved (finished_at, file, bytes) FROM pstdin' \
      --command='INSERT INTO backup.runs SELECT * FROM moved ON CONFLICT DO NOTHING'
  as_role postgres --command='\copy backup.expected_since TO STDOUT' |
    as_role postgres --dbname="$POSTGRES_DB" --command='\copy backup.expected_since FROM pstdin'
  as_role postgres --command='DROP SCHEMA backup CASCADE'
fi
echo "setup: roles and grants are in place"
