#!/usr/bin/env bash
# Back up every Fupin database off this machine (deploy/README.md, "One machine: backups").
#   FUPIN_BACKUP_TARGET=backup@nas.county.example.cn:/srv/fupin deploy/one-machine/fupin-backup.sh
# Each run: pg_dump (custom format) of every database, each dump checked with pg_restore --list,
# a SHA256SUMS file, all in one tar, encrypted to FUPIN_BACKUP_GPG_RECIPIENT's public key when set
# (household personal data: set it), copied with rsync to FUPIN_BACKUP_TARGET (another host over
# ssh, or a mounted NAS folder), and archives older than FUPIN_BACKUP_KEEP_DAYS there deleted.
# Run nightly by fupin-backup.timer. Exit status non-zero, and nothing deleted, if any step fails.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
target=${FUPIN_BACKUP_TARGET:?set FUPIN_BACKUP_TARGET: user@host:/path (rsync over ssh) or a mounted folder}
keep_days=${FUPIN_BACKUP_KEEP_DAYS:-30}
recipient=${FUPIN_BACKUP_GPG_RECIPIENT:-}
compose="docker compose -f $here/../compose.yaml"
# How to reach PostgreSQL: by default inside the compose service; FUPIN_PG_DUMP/FUPIN_PG_RESTORE
# for a PostgreSQL installed on the machine (e.g. "pg_dump -h 127.0.0.1 -U postgres").
pg_dump=${FUPIN_PG_DUMP:-$compose exec -T postgres pg_dump -U fupin}
pg_restore=${FUPIN_PG_RESTORE:-$compose exec -T postgres pg_restore}
databases=${FUPIN_DATABASES:-fupin_gateway fupin_registry fupin_assistance fupin_projects fupin_credit fupin_assessment fupin_supervision}

stamp=$(TZ=Asia/Shanghai date +%Y-%m-%dT%H%M%S)
name=fupin-$stamp
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/$name"

for database in $databases; do
    dump="$work/$name/$database.dump"
    bash -c "$pg_dump --format=custom --dbname=$database" > "$dump"
    # a dump that pg_restore cannot read is not a backup
    bash -c "$pg_restore --list" < "$dump" > /dev/null
    echo "dumped $database ($(stat -c %s "$dump") bytes)"
done
(cd "$work/$name" && sha256sum -- *.dump > SHA256SUMS)

archive="$work/$name.tar"
tar -C "$work" -cf "$archive" "$name"
if [[ -n "$recipient" ]]; then
    gpg --batch --yes --trust-model always --recipient "$recipient" --output "$archive.gpg" --encrypt "$archive"
    rm -f "$archive"
    archive="$archive.gpg"
fi

rsync --times --partial "$archive" "${target%/}/"
echo "copied $(basename "$archive") to $target"

# Retention, on the target, only after today's copy arrived.
if [[ "$target" == *:* ]]; then
    host=${target%%:*} path=${target#*:}
    ssh -- "$host" "find '$path' -maxdepth 1 -name 'fupin-*.tar*' -mtime +$keep_days -delete"
else
    find "$target" -maxdepth 1 -name 'fupin-*.tar*' -mtime +"$keep_days" -delete
fi
