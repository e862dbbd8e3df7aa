#!/bin/bash
# PostgreSQL's passwords container: sets every role's password from the database Secret
# whenever the Secret changes, on the running server (passwords.sql, over the pod's
# Unix socket, as the superuser, which the socket trusts). Kubernetes updates a mounted
# Secret's files in place within about a minute of a change; without this container a
# rotated password reached PostgreSQL only at its next restart, and API pods started
# with the new one failed to log in until then.
#
# Environment (from the StatefulSet): PGHOST (the socket folder), PASSWORDS_DIR (the
# Secret, mounted), API_USER, MONITORING_USER and BACKUP_USER (empty when the feature
# is off), the Secret's key of each role's password (SUPERUSER_PASSWORD_KEY,
# API_PASSWORD_KEY, MONITORING_PASSWORD_KEY, BACKUP_PASSWORD_KEY), HEARTBEAT (a file
# touched at every round, which the probes read) and INTERVAL_SECONDS.
set -uo pipefail

here=$(dirname "$0")
: "${PGHOST:?}" "${PASSWORDS_DIR:?}" "${API_USER:?}" "${HEARTBEAT:?}" "${INTERVAL_SECONDS:?}"

# Each role that is on, with the file of its password.
declare -A file_of=(
  [POSTGRES_PASSWORD]="$PASSWORDS_DIR/${SUPERUSER_PASSWORD_KEY:?}"
  [API_PASSWORD]="$PASSWORDS_DIR/${API_PASSWORD_KEY:?}"
)
[[ -n "${MONITORING_USER:-}" ]] && file_of[MONITORING_PASSWORD]="$PASSWORDS_DIR/${MONITORING_PASSWORD_KEY:?}"
[[ -n "${BACKUP_USER:-}" ]] && file_of[BACKUP_PASSWORD]="$PASSWORDS_DIR/${BACKUP_PASSWORD_KEY:?}"

applied=""
echo "passwords: watching $PASSWORDS_DIR every ${INTERVAL_SECONDS} s"
while true; do
  touch "$HEARTBEAT"
  # A missing or empty key would set an empty password, which locks the role out: skip
  # the round, saying which.
  missing=""
  for variable in "${!file_of[@]}"; do
    [[ -s "${file_of[$variable]}" ]] || missing+=" ${file_of[$variable]}"
  done
  if [[ -n "$missing" ]]; then
    echo "passwords: not applying: missing or empty in the Secret:$missing" >&2
  else
    current=$(cat "${file_of[@]}" | sha256sum)
    if [[ "$current" != "$applied" ]] && pg_isready --quiet; then
      for variable in "${!file_of[@]}"; do export "$variable=$(< "${file_of[$variable]}")"; done
      if psql --no-psqlrc --quiet --set=ON_ERROR_STOP=1 --username=postgres --dbname=postgres --file="$here/passwords.sql"; then
        # The first round only confirms what the setup container set at the start.
        [[ -n "$applied" ]] && echo "passwords: the database Secret changed: every role's password is now the Secret's"
        applied=$current
      else
        echo "passwords: FAILED to set the passwords; trying again in ${INTERVAL_SECONDS} s" >&2
      fi
    fi
  fi
  sleep "$INTERVAL_SECONDS"
done
