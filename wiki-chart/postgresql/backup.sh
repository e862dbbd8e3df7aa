#!/bin/bash
# The backup CronJob's script: one pg_dump of the API's database, in the custom
# format (compressed; pg_restore can restore it whole or in part), into BACKUP_DIR,
# keeping the newest BACKUP_KEEP. Any error fails the Job.
#
# A dump is written under a temporary name and renamed only once pg_dump has finished
# and pg_restore has read every byte of it back, so a partial file is never taken for
# a backup; a failed run leaves the earlier backups as they were. Each good backup is
# then recorded in PostgreSQL (backup.runs, a schema of the API's database that no dump
# holds), where postgres_exporter reads the time of the last one, and the backups
# volume's size and free space, for Prometheus.
#
# With OBJECT_STORE_PATH set (postgresql.backup.objectStore), the dump is then copied
# off the cluster with rclone, to the remote "store" its RCLONE_CONFIG_STORE_*
# variables define; the store keeps the newest BACKUP_KEEP too. rclone checks the
# copy's size and checksum against the file; only then is the copy recorded
# (backup.runs.copied_at), which the freshness alert reads. A failed copy fails the Job
# and leaves the local dump, recorded as such.
#
# Environment (from the CronJob): PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD,
# BACKUP_DIR, BACKUP_KEEP; OBJECT_STORE_PATH (bucket/path) and RCLONE_CONFIG_STORE_*.
set -euo pipefail

: "${PGDATABASE:?}" "${BACKUP_DIR:?}" "${BACKUP_KEEP:?}"
# The nightly dumps, and only them: a file copied here by hand under another name is
# never pruned, nor taken for the latest.
nightly="$PGDATABASE-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z.dump"

# One backup or restore at a time on this volume. The CronJob's concurrencyPolicy does
# not cover a Job made by hand (`kubectl create job --from=cronjob/...`), which would
# otherwise dump beside the nightly one, into the same space, past the backup role's
# connection limit.
exec 9> "$BACKUP_DIR/.lock"
if ! flock --nonblock 9; then
  echo "backup: another backup or restore holds $BACKUP_DIR/.lock: not starting a second one" >&2
  exit 1
fi

# A run killed outright (its deadline, a node drain, the memory limit: SIGKILL) cannot
# remove its partial file, and nothing else would; the lock says no run is writing one.
find "$BACKUP_DIR" -maxdepth 1 -name '.*.partial' -printf 'backup: removing %f, left by a run that was killed\n' -delete

# The oldest dumps go before the new one is written, down to BACKUP_KEEP - 1, so that
# BACKUP_KEEP dumps are all the volume must hold: pruning only after a good dump would
# need room for one more, and once that no longer fits every run would fail. A failed
# run therefore leaves BACKUP_KEEP - 1, never fewer.
prune() {
  find "$BACKUP_DIR" -maxdepth 1 -name "$nightly" -printf '%f\n' | sort | head -n "-$1" | while read -r old; do
    echo "backup: removing $old (keeping the newest $BACKUP_KEEP)"
    rm -f "$BACKUP_DIR/$old"
  done
}
prune "$((BACKUP_KEEP - 1))"

name="$PGDATABASE-$(date -u +%Y%m%dT%H%M%SZ).dump"
partial="$BACKUP_DIR/.$name.partial"
trap 'rm -f "$partial"' EXIT

echo "backup: dumping database $PGDATABASE from $PGHOST"
# Not the backup records (schema "backup"): a restore of an old dump must not bring
# back old records, nor replace the ones the alert reads.
pg_dump --format=custom --exclude-schema=backup --file="$partial"
# Every byte read back and decompressed (the whole SQL script, thrown away): a
# truncated or corrupt file fails here, not on the day it is needed. `pg_restore
# --list` would read only the table of contents at the start of the file.
pg_restore --file=/dev/null "$partial"
# On disk before it gets its final name, and the rename on disk before it counts.
sync "$partial"
mv "$partial" "$BACKUP_DIR/$name"
sync "$BACKUP_DIR"
bytes=$(stat --format=%s "$BACKUP_DIR/$name")
# The volume's size and free space, for the alert that fires before the next dump
# no longer fits.
read -r volume_bytes free_bytes < <(df --block-size=1 --output=size,avail "$BACKUP_DIR" | tail -n 1)
echo "backup: $BACKUP_DIR/$name ($bytes bytes; $free_bytes of the volume's $volume_bytes bytes free)"

psql --no-psqlrc --quiet --set=ON_ERROR_STOP=1 --set=file="$name" --set=bytes="$bytes" \
  --set=volume_bytes="$volume_bytes" --set=free_bytes="$free_bytes" <<'SQL'
INSERT INTO backup.runs (file, bytes, volume_bytes, volume_free_bytes) VALUES (:'file', :'bytes', :'volume_bytes', :'free_bytes');
SQL

if [[ -n "${OBJECT_STORE_PATH:-}" ]]; then
  echo "backup: copying $name to the object store (store:$OBJECT_STORE_PATH)"
  rclone copyto "$BACKUP_DIR/$name" "store:$OBJECT_STORE_PATH/$name"
  # The store keeps the newest BACKUP_KEEP nightly dumps, as the volume does.
  rclone lsf --files-only "store:$OBJECT_STORE_PATH" | grep -xE "$PGDATABASE-[0-9]{8}T[0-9]{6}Z\.dump" | sort | head -n "-$BACKUP_KEEP" |
    while read -r old; do
      echo "backup: removing $old from the object store (keeping the newest $BACKUP_KEEP)"
      rclone deletefile "store:$OBJECT_STORE_PATH/$old"
    done
  psql --no-psqlrc --quiet --set=ON_ERROR_STOP=1 --set=file="$name" <<'SQL'
UPDATE backup.runs SET copied_at = now() WHERE file = :'file';
SQL
  echo "backup: $name copied to the object store"
fi
