#!/usr/bin/env bash
# Run once by the postgres image on an empty data volume (/docker-entrypoint-initdb.d): one role
# per Fupin process, owning its own database and nothing else; no other role but the superuser
# may even connect to it. Each role's password is DB_PASSWORD_<PROCESS> (deploy/.env, made by
# deploy/one-machine/make-env.py). FUPIN_DB_PREFIX (default fupin) names roles and databases.
set -euo pipefail
prefix=${FUPIN_DB_PREFIX:-fupin}
for process in gateway registry assistance projects credit assessment supervision; do
    variable="DB_PASSWORD_${process^^}"
    password=${!variable:?$variable is not set (deploy/.env)}
    role="${prefix}_${process}"
    psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
        -v role="$role" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
    echo "role and database $role"
done
