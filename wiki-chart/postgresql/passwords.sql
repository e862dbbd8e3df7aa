-- Every role's password, from the environment (\getenv: never on a command line). Run
-- by setup.sql at every start of PostgreSQL's pod, and by the pod's passwords container
-- (sync-passwords.sh) on the running server whenever the database Secret changes, so
-- that a rotated password takes effect without restarting PostgreSQL. A password is
-- checked when a connection logs in: sessions already open go on.

\set monitoring_user ''
\set monitoring_password ''
\set backup_user ''
\set backup_password ''
\getenv superuser_password POSTGRES_PASSWORD
\getenv api_user API_USER
\getenv api_password API_PASSWORD
\getenv monitoring_user MONITORING_USER
\getenv monitoring_password MONITORING_PASSWORD
\getenv backup_user BACKUP_USER
\getenv backup_password BACKUP_PASSWORD
SELECT :'monitoring_user' <> '' AS monitoring, :'backup_user' <> '' AS backup \gset

ALTER ROLE postgres PASSWORD :'superuser_password';
ALTER ROLE :"api_user" PASSWORD :'api_password';
\if :monitoring
ALTER ROLE :"monitoring_user" PASSWORD :'monitoring_password';
\endif
\if :backup
ALTER ROLE :"backup_user" PASSWORD :'backup_password';
\endif
