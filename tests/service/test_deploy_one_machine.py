"""The one-machine pieces of deploy/one-machine, run for real: the nightly off-host backup script
against the real PostgreSQL (dump, check, encrypt, copy, prune; then decrypt and restore), its
systemd timer's schedule, and the logrotate rule on a log a process keeps open."""
import configparser
import hashlib
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests import support

ONE_MACHINE = Path(__file__).resolve().parents[2] / "deploy" / "one-machine"


def tool(name):
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is needed (sudo apt-get install {name})", pytrace=False)
    return path


@pytest.fixture(scope="module")
def database(infra):
    url = support.fresh_database("registry", "deploy_backup_registry")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE backup_probe (note text)"))
        conn.execute(text("INSERT INTO backup_probe VALUES ('长岭乡 2023')"))
    engine.dispose()
    return url


@pytest.fixture
def gpg_home(tmp_path):
    """A throwaway key pair; the script encrypts to its public key (the county keeps the secret
    key off the machine)."""
    tool("gpg")
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    subprocess.run(["gpg", "--homedir", str(home), "--batch", "--passphrase", "", "--quick-gen-key",
                    "fupin-backup@county.example.cn", "default", "default", "never"],
                   check=True, capture_output=True, timeout=120)
    return home


def test_nightly_backup_is_dumped_encrypted_copied_off_host_pruned_and_restores(database, gpg_home, tmp_path):
    tool("rsync")
    target = tmp_path / "nas"
    target.mkdir()
    old, recent = target / "fupin-2000-01-01T020000.tar.gpg", target / "fupin-yesterday.tar.gpg"
    old.write_bytes(b"old")
    recent.write_bytes(b"recent")
    forty_days_ago = time.time() - 40 * 86400
    os.utime(old, (forty_days_ago, forty_days_ago))
    name = database.rsplit("/", 1)[1]
    base = database.rsplit("/", 1)[0].replace("postgresql://", "")
    user, host = base.split("@") if "@" in base else ("postgres", base)
    env = dict(os.environ, GNUPGHOME=str(gpg_home), FUPIN_BACKUP_TARGET=str(target),
               FUPIN_BACKUP_GPG_RECIPIENT="fupin-backup@county.example.cn", FUPIN_DATABASES=name,
               FUPIN_PG_DUMP=f"pg_dump -h {host.split(':')[0]} -U {user}", FUPIN_PG_RESTORE="pg_restore")
    run = subprocess.run([str(ONE_MACHINE / "fupin-backup.sh")], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    archives = sorted(p.name for p in target.iterdir())
    assert not old.exists() and recent.exists(), archives  # pruned after 30 days, not before
    [archive] = [target / a for a in archives if a != recent.name]
    assert archive.name.endswith(".tar.gpg") and b"backup_probe" not in archive.read_bytes()  # encrypted
    plain = tmp_path / "restore.tar"
    subprocess.run(["gpg", "--homedir", str(gpg_home), "--batch", "--output", str(plain), "--decrypt", str(archive)],
                   check=True, capture_output=True, timeout=60)
    with tarfile.open(plain) as tar:
        tar.extractall(tmp_path / "restore", filter="data")
    [folder] = (tmp_path / "restore").iterdir()
    sums = dict(reversed(line.split("  ")) for line in (folder / "SHA256SUMS").read_text().splitlines())
    assert hashlib.sha256((folder / f"{name}.dump").read_bytes()).hexdigest() == sums[f"{name}.dump"]
    restored = support.database_url("deploy_backup_restored")
    from services.common.db import drop_database, ensure_database
    drop_database(restored)
    ensure_database(restored)
    subprocess.run(["pg_restore", "-h", host.split(":")[0], "-U", user, "--no-owner", "--dbname",
                    restored.rsplit("/", 1)[1], str(folder / f"{name}.dump")], check=True, capture_output=True, timeout=120)
    engine = create_engine(restored)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT note FROM backup_probe")).scalar() == "长岭乡 2023"
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    engine.dispose()


def test_backup_fails_and_prunes_nothing_when_a_database_cannot_be_dumped(infra, tmp_path):
    target = tmp_path / "nas"
    target.mkdir()
    old = target / "fupin-2000-01-01T020000.tar"
    old.write_bytes(b"old")
    os.utime(old, (time.time() - 40 * 86400,) * 2)
    env = dict(os.environ, FUPIN_BACKUP_TARGET=str(target), FUPIN_DATABASES="fupin_no_such_database_i21",
               FUPIN_PG_DUMP="pg_dump -h 127.0.0.1 -U postgres", FUPIN_PG_RESTORE="pg_restore")
    run = subprocess.run([str(ONE_MACHINE / "fupin-backup.sh")], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "fupin_no_such_database_i21" in run.stderr
    assert old.exists() and [p.name for p in target.iterdir()] == [old.name]


def test_backup_timer_runs_nightly_at_2_beijing_time_and_catches_up_after_downtime():
    timer = configparser.ConfigParser(strict=False)
    timer.read(ONE_MACHINE / "fupin-backup.timer")
    calendar = timer["Timer"]["OnCalendar"]
    assert calendar == "*-*-* 02:00:00 Asia/Shanghai" and timer["Timer"]["Persistent"] == "true"
    checked = subprocess.run([tool("systemd-analyze"), "calendar", "--iterations=2", calendar],
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0 and "18:00:00 UTC" in checked.stdout, checked.stdout + checked.stderr
    service = configparser.ConfigParser(strict=False)
    service.read(ONE_MACHINE / "fupin-backup.service")
    assert service["Service"]["ExecStart"].endswith("deploy/one-machine/fupin-backup.sh")
    unit = (ONE_MACHINE / "fupin-backup.service").read_text()
    assert "Environment=FUPIN_BACKUP_TARGET=" in unit and "Environment=FUPIN_BACKUP_GPG_RECIPIENT=" in unit


def test_logrotate_rotates_a_log_the_process_keeps_open(tmp_path):
    log_dir = tmp_path / "opt" / "var" / "log"
    log_dir.mkdir(parents=True)
    config = (ONE_MACHINE / "logrotate.conf").read_text().replace("/opt/fupin/var/log", str(log_dir))
    (tmp_path / "fupin.conf").write_text(config)
    log = log_dir / "registry.log"
    with open(log, "ab") as process:  # as `fupin up` opens it, and keeps it
        process.write(b"before rotation\n" * 100)
        process.flush()
        subprocess.run([tool("logrotate"), "--state", str(tmp_path / "state"), "--force", str(tmp_path / "fupin.conf")],
                       check=True, capture_output=True, timeout=60)
        process.write(b"after rotation\n")
        process.flush()
    assert log.read_bytes() == b"after rotation\n"  # written at the start of the emptied file
    assert (log_dir / "registry.log.1").read_bytes() == b"before rotation\n" * 100


def test_one_machine_identities_made_by_make_env_work_on_the_real_servers(infra, tmp_path):
    """make-env.py's RabbitMQ definitions, imported into the real broker, let each process's user
    in with the password written to .env and keep it to its own queues; postgres-init.sh, run
    against the real PostgreSQL, makes roles that own their database and cannot even connect to
    another's. (Names are prefixed so nothing the machine already runs is touched.)"""
    import json

    from amqp.exceptions import AccessRefused
    from kombu import Connection, Queue
    from sqlalchemy.exc import OperationalError
    made = subprocess.run(["python3", str(ONE_MACHINE / "make-env.py"), "--host", "fupin.county.example.cn",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    env = dict(line.split("=", 1) for line in (tmp_path / ".env").read_text().splitlines() if "=" in line
               and not line.startswith("#"))
    assert oct((tmp_path / ".env").stat().st_mode & 0o777) == "0o600"
    again = subprocess.run(["python3", str(ONE_MACHINE / "make-env.py"), "--host", "x", "--out", str(tmp_path)],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode != 0 and "exists" in again.stderr  # never overwrites the passwords in use
    definitions = json.loads((tmp_path / "rabbitmq" / "definitions.json").read_text())
    assert env["AMQP_PASSWORD_REGISTRY"] not in (tmp_path / "rabbitmq" / "definitions.json").read_text()

    # RabbitMQ: the definitions under a test vhost and test user names
    vhost, prefix = f"{support.PREFIX}_one_machine", f"{support.PREFIX}_om"
    text_ = json.dumps(definitions).replace('"fupin_', f'"{prefix}_').replace('"vhost": "fupin"', f'"vhost": "{vhost}"')
    text_ = text_.replace('"name": "fupin", "default_queue_type"', f'"name": "{vhost}", "default_queue_type"')
    text_ = text_.replace('{"name": "fupin", "password_hash"', f'{{"name": "{prefix}", "password_hash"')
    text_ = text_.replace('"user": "fupin"', f'"user": "{prefix}"')
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=60)
    # rabbitmqctl runs as the rabbitmq user, which cannot read pytest's folders: a readable file
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir="/tmp") as readable:
        readable.write(text_)
        readable.flush()
        os.chmod(readable.name, 0o644)
        subprocess.run(["rabbitmqctl", "-q", "import_definitions", readable.name], check=True, capture_output=True,
                       timeout=60)
    try:
        uri = f"amqp://{prefix}_registry:{env['AMQP_PASSWORD_REGISTRY']}@127.0.0.1:5672/{vhost}"
        with Connection(uri, connect_timeout=5) as connection:
            channel = connection.channel()
            Queue("rpc-registry", durable=True)(channel).declare()
        listed = subprocess.run(["rabbitmqctl", "-q", "list_queues", "-p", vhost, "--no-table-headers", "name", "type"],
                                check=True, capture_output=True, text=True, timeout=60).stdout
        assert "rpc-registry\tquorum" in listed
        with Connection(uri, connect_timeout=5) as connection:
            with pytest.raises(AccessRefused):
                Queue("rpc-credit", durable=True)(connection.channel()).declare()
        with pytest.raises(Exception, match="ACCESS_REFUSED|Login was refused|AccessRefused"):
            with Connection(uri.replace(env["AMQP_PASSWORD_REGISTRY"], "wrong"), connect_timeout=5) as connection:
                connection.ensure_connection(max_retries=1)
    finally:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=60)
        for user in [prefix] + [f"{prefix}_{c}" for c in ("gateway", "registry", "assistance", "projects", "credit",
                                                          "assessment", "supervision")]:
            subprocess.run(["rabbitmqctl", "-q", "delete_user", user], capture_output=True, timeout=60)

    # PostgreSQL: the init script as the postgres image runs it, with prefixed names
    db_prefix = f"{support.PREFIX}_om"
    admin = create_engine(f"{support.PG_BASE}/postgres", isolation_level="AUTOCOMMIT")

    def drop_all():
        with admin.connect() as conn:
            for process in ("gateway", "registry", "assistance", "projects", "credit", "assessment", "supervision"):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db_prefix}_{process}" WITH (FORCE)'))
                conn.execute(text(f'DROP ROLE IF EXISTS "{db_prefix}_{process}"'))
    drop_all()
    try:
        host = support.PG_BASE.rsplit("@", 1)[-1].split(":")[0]
        run = subprocess.run(["bash", str(ONE_MACHINE / "postgres-init.sh")], capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, **env, FUPIN_DB_PREFIX=db_prefix, PGHOST=host, POSTGRES_USER="postgres"))
        assert run.returncode == 0, run.stderr
        with admin.connect() as conn:
            owners = dict(conn.execute(text(
                "SELECT datname, pg_get_userbyid(datdba) FROM pg_database WHERE datname LIKE :p"), {"p": f"{db_prefix}_%"}).all())
        assert owners == {f"{db_prefix}_{c}": f"{db_prefix}_{c}" for c in
                          ("gateway", "registry", "assistance", "projects", "credit", "assessment", "supervision")}
        registry = f"postgresql://{db_prefix}_registry:{env['DB_PASSWORD_REGISTRY']}@{host}:5432/{db_prefix}_registry"
        support.migrate("registry", registry)  # the migrations run as the owner, as compose's migrate does
        credit_as_registry = registry.rsplit("/", 1)[0] + f"/{db_prefix}_credit"
        engine = create_engine(credit_as_registry)
        with pytest.raises(OperationalError, match="permission denied"):
            engine.connect().close()
        engine.dispose()
    finally:
        drop_all()
        admin.dispose()
