#!/bin/bash
# The restore Job's script (docs/PHASE11_POSTGRESQL_OPERATIONS.md, "Restore"): loads
# one backup of BACKUP_DIR into the API's database, replacing what is there, in a
# single transaction: either the whole backup is restored, or nothing changes.
# RESTORE_FILE names the dump, or "latest" for the newest nightly one. It runs as the
# API's role, which then owns every restored table, as after the API's own migrations.
#
# Environment (from the Job): PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD,
# BACKUP_DIR, RESTORE_FILE.
set -euo pipefail

: "${PGDATABASE:?}" "${BACKUP_DIR:?}" "${RESTORE_FILE:?}"
# The backup's lock: no dump is pruned or written while this one is read.
exec 9> "$BACKUP_DIR/.lock"
if ! flock --nonblock 9; then
  echo "restore: a backup or another restore holds $BACKUP_DIR/.lock: try again when it is done" >&2
  exit 1
fi

echo "restore: the backups in $BACKUP_DIR:"
find "$BACKUP_DIR" -maxdepth 1 -name '*.dump' -printf '  %f  %s bytes\n' | sort
if [[ "$RESTORE_FILE" == latest ]]; then
  nightly="$PGDATABASE-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z.dump"
  file=$(find "$BACKUP_DIR" -maxdepth 1 -name "$nightly" -printf '%f\n' | sort | tail -n 1)
  [[ -n "$file" ]] || { echo "restore: no backup of $PGDATABASE in $BACKUP_DIR" >&2; exit 1; }
else
  file=$RESTORE_FILE
fi
[[ -f "$BACKUP_DIR/$file" ]] || { echo "restore: no file $file in $BACKUP_DIR" >&2; exit 1; }

echo "restore: loading $file into database $PGDATABASE on $PGHOST"
pg_restore --dbname="$PGDATABASE" --clean --if-exists --no-owner --no-privileges --single-transaction --exit-on-error "$BACKUP_DIR/$file"
echo "restore: done"
