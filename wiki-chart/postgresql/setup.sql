-- Roles and grants, as this chart version wants them. Run by setup.sh as the superuser
-- at every start of PostgreSQL's pod, so every statement is idempotent. The passwords
-- are set by passwords.sql, included below and also run, while PostgreSQL runs, by the
-- pod's passwords container whenever the database Secret changes.

-- Optional ones are empty unless set (the feature is off).
\set monitoring_user ''
\set backup_user ''
\getenv database POSTGRES_DB
\getenv api_user API_USER
\getenv monitoring_user MONITORING_USER
\getenv backup_user BACKUP_USER
SELECT :'monitoring_user' <> '' AS monitoring, :'backup_user' <> '' AS backup \gset

-- The API's role: it logs in and owns its own tables, nothing more. Not a superuser,
-- so an injected statement cannot reach COPY ... TO PROGRAM (a shell), ALTER SYSTEM,
-- or other databases' data.
SELECT format('CREATE ROLE %I', :'api_user') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'api_user') \gexec
ALTER ROLE :"api_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;

\if :monitoring
-- postgres_exporter's role: pg_monitor reads the statistics views and settings, and
-- no table data. A few connections at most (the exporter uses one).
SELECT format('CREATE ROLE %I', :'monitoring_user') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'monitoring_user') \gexec
ALTER ROLE :"monitoring_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 3;
GRANT pg_monitor TO :"monitoring_user";
\endif

\if :backup
-- The backup's role: pg_read_all_data reads every table (what pg_dump needs) and
-- writes none. pg_dump uses one connection, then psql one to record the run.
SELECT format('CREATE ROLE %I', :'backup_user') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'backup_user') \gexec
ALTER ROLE :"backup_user" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 2;
GRANT pg_read_all_data TO :"backup_user";
\endif

-- Every role's password, from the Secret (through the environment).
\ir passwords.sql

-- The API's database, owned by the superuser: only the roles granted below connect.
SELECT format('CREATE DATABASE %I', :'database') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"database" TO :"api_user";
\if :backup
GRANT CONNECT ON DATABASE :"database" TO :"backup_user";
\endif
\if :monitoring
-- The exporter connects to the API's database: its tables' statistics (dead rows,
-- vacuum and analyze runs) are visible only from inside it.
GRANT CONNECT ON DATABASE :"database" TO :"monitoring_user";
\endif

\connect :"database"
-- PostgreSQL 15 lets only the database owner create in the public schema: the API's
-- migrations create their tables there.
GRANT USAGE, CREATE ON SCHEMA public TO :"api_user";

-- Where the backup CronJob records each good backup, and where the exporter (connected
-- to this database) reads the time of the last one (exporter-queries.yaml). The schema
-- belongs to the superuser: the API's role cannot read it. backup.sh leaves it out of
-- every dump, so a restore, which replaces only what the dump holds, never brings back
-- an old record. (Chart 0.13 and earlier kept it in the "postgres" database; setup.sh
-- moves it here.)
\if :backup
CREATE SCHEMA IF NOT EXISTS backup;
REVOKE ALL ON SCHEMA backup FROM PUBLIC;
CREATE TABLE IF NOT EXISTS backup.runs (
  finished_at timestamptz PRIMARY KEY DEFAULT now(),
  file text NOT NULL,
  bytes bigint NOT NULL,
  -- The backups volume's size and free space after the run (chart 0.14; empty before).
  volume_bytes bigint,
  volume_free_bytes bigint
);
-- When the dump was copied to the object store, checked (chart 0.15; empty when not copied).
ALTER TABLE backup.runs ADD COLUMN IF NOT EXISTS copied_at timestamptz;
-- When backups began to be expected: the alert on a missing backup counts from here
-- until the first one.
CREATE TABLE IF NOT EXISTS backup.expected_since (since timestamptz NOT NULL);
INSERT INTO backup.expected_since SELECT now() WHERE NOT EXISTS (SELECT FROM backup.expected_since);
GRANT USAGE ON SCHEMA backup TO :"backup_user";
GRANT SELECT, INSERT ON backup.runs TO :"backup_user";
GRANT UPDATE (copied_at) ON backup.runs TO :"backup_user";
\if :monitoring
GRANT USAGE ON SCHEMA backup TO :"monitoring_user";
GRANT SELECT ON backup.runs, backup.expected_since TO :"monitoring_user";
\endif
\endif
-- After an upgrade from chart 0.10 or earlier, the superuser owns the API's tables
-- (it created them). The API's role takes them over: ALTER TABLE moves their identity
-- sequences and indexes too, and rewrites no data.
SELECT format('ALTER TABLE %I.%I OWNER TO %I', n.nspname, c.relname, :'api_user')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = :'api_user') \gexec
