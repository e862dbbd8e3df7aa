#!/bin/bash
# The backup CronJob's script: one pg_dump of the API's database, in the custom
# format (compressed; pg_restore can restore it whole or in part), into BACKUP_DIR,
# keeping the newest BACKUP_KEEP. Any error fails the Job.
#
# A dump is written under a temporary name and renamed only once pg_dump has finished
# and pg_restore has read it back whole, so a partial file is never taken for a
# backup; a failed run leaves the earlier backups as they were. Each good backup is
# then recorded in PostgreSQL (backup.runs, in the "postgres" database), where
# postgres_exporter reads the time of the last one for Prometheus.
#
# Environment (from the CronJob): PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD,
# BACKUP_DIR, BACKUP_KEEP.
set -euo pipefail

: "${PGDATABASE:?}" "${BACKUP_DIR:?}" "${BACKUP_KEEP:?}"
name="$PGDATABASE-$(date -u +%Y%m%dT%H%M%SZ).dump"
partial="$BACKUP_DIR/.$name.partial"
trap 'rm -f "$partial"' EXIT

echo "backup: dumping database $PGDATABASE from $PGHOST"
pg_dump --format=custom --file="$partial"
# A truncated or corrupt file fails here, not on the day it is needed.
pg_restore --list "$partial" > /dev/null
# On disk before it gets its final name, and the rename on disk before it counts.
sync "$partial"
mv "$partial" "$BACKUP_DIR/$name"
sync "$BACKUP_DIR"
bytes=$(stat --format=%s "$BACKUP_DIR/$name")
echo "backup: $BACKUP_DIR/$name ($bytes bytes)"

psql --no-psqlrc --quiet --set=ON_ERROR_STOP=1 --dbname=postgres --set=file="$name" --set=bytes="$bytes" <<'SQL'
INSERT INTO backup.runs (file, bytes) VALUES (:'file', :'bytes');
SQL

# The newest BACKUP_KEEP dumps stay (names sort by time); older ones go.
find "$BACKUP_DIR" -maxdepth 1 -name "$PGDATABASE-*.dump" -printf '%f\n' | sort | head -n "-$BACKUP_KEEP" | while read -r old; do
  echo "backup: removing $old (keeping the newest $BACKUP_KEEP)"
  rm -f "$BACKUP_DIR/$old"
done
