"""`fupin`: run the platform on one machine, check it, migrate it, rebuild read models.

Every process is a separate `nameko run`; pids and logs live in `var/`.
"""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import click

from services.common.config import REPO_ROOT, config_path

SERVICES = ("registry", "assistance", "projects", "credit", "assessment", "supervision")
COMPONENTS = SERVICES + ("gateway",)
PORTS = {"gateway": 8000, "registry": 8001, "assistance": 8002, "projects": 8003, "credit": 8004, "assessment": 8005,
         "supervision": 8006}
# `module:Class`, because nameko would otherwise also try to run the base classes a module imports
SERVICE_CLASSES = {
    "registry": "services.registry.service:RegistryService",
    "assistance": "services.assistance.service:AssistanceService",
    "projects": "services.projects.service:ProjectsService",
    "credit": "services.credit.service:CreditService",
    "assessment": "services.assessment.service:AssessmentService",
    "supervision": "services.supervision.service:SupervisionService",
    "gateway": "gateway.service:GatewayService",
}
VAR = REPO_ROOT / "var"
DEFAULT_AMQP = "amqp://guest:guest@localhost:5672/"


def database_url(component):
    """`<COMPONENT>_DATABASE_URL` if set, else the local default database of the component."""
    return os.environ.get(
        f"{component.upper()}_DATABASE_URL", f"postgresql://postgres@localhost:5432/fupin_{component}"
    )


def process_env(component):
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(component),
        AMQP_URI=os.environ.get("AMQP_URI", DEFAULT_AMQP),
        WEB_SERVER_ADDRESS=f"127.0.0.1:{PORTS[component]}",
        PYTHONPATH=str(REPO_ROOT),
    )
    env.setdefault("FUPIN_ADMIN_PASSWORD", "fupin-admin")  # refused outside development (gateway/auth.py)
    env.setdefault("FUPIN_AUDITOR_PASSWORD", "fupin-auditor")
    env.setdefault("FUPIN_JWT_SECRET", "local-development-only-secret")
    return env


def pid_file(component):
    return VAR / "run" / f"{component}.pid"


def log_file(component):
    return VAR / "log" / f"{component}.log"


def running_pid(component):
    try:
        pid = int(pid_file(component).read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def port_open(port, host="127.0.0.1"):
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def ready(component):
    import requests

    try:
        return requests.get(f"http://127.0.0.1:{PORTS[component]}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def check_backing_services():
    problems = []
    if not port_open(5432):
        problems.append("PostgreSQL is not answering on 127.0.0.1:5432 — run `bash scripts/ensure-services.sh` "
                        "(starts or installs it), or `sudo pg_ctlcluster $(ls /etc/postgresql) main start`.")
    if not port_open(5672):
        problems.append("RabbitMQ is not answering on 127.0.0.1:5672 — run `bash scripts/ensure-services.sh` "
                        "(starts or installs it), or `sudo rabbitmq-server -detached`.")
    return problems


@click.group()
def main():
    """Fupin (扶贫): targeted poverty alleviation, one county per deployment."""


@main.command()
def doctor():
    """Check Python, PostgreSQL and RabbitMQ; say exactly how to fix what is missing."""
    ok = True
    click.echo(f"python {sys.version.split()[0]}: " + ("ok" if sys.version_info[:2] == (3, 11) else "need 3.11"))
    ok &= sys.version_info[:2] == (3, 11)
    problems = check_backing_services()
    for problem in problems:
        click.echo(f"✗ {problem}")
    if not problems:
        click.echo("✓ PostgreSQL on 127.0.0.1:5432")
        click.echo("✓ RabbitMQ on 127.0.0.1:5672")
    for component in COMPONENTS:
        pid = running_pid(component)
        click.echo(f"  {component:<11} " + (f"running (pid {pid})" if pid else "not running"))
    sys.exit(0 if ok and not problems else 1)


@main.command()
@click.argument("components", nargs=-1)
def migrate(components):
    """Create and migrate the databases (all components when none is named)."""
    from services.common.migrate import migrate as run_migration

    for component in components or COMPONENTS:
        if component not in COMPONENTS:
            raise click.BadParameter(f"unknown component {component!r}; one of {', '.join(COMPONENTS)}")
        run_migration(component, database_url(component))
        click.echo(f"migrated {component}")


def start(component):
    if running_pid(component):
        return False
    (VAR / "run").mkdir(parents=True, exist_ok=True)
    (VAR / "log").mkdir(parents=True, exist_ok=True)
    module = SERVICE_CLASSES[component]
    nameko = Path(sys.executable).with_name("nameko")
    with open(log_file(component), "ab") as log:
        process = subprocess.Popen(
            [str(nameko), "run", "--config", str(config_path(component)), module],
            cwd=REPO_ROOT, env=process_env(component), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    pid_file(component).write_text(str(process.pid))
    return True


def ports_taken_by_others():
    """Components not started from this checkout whose port something else answers on (typically
    a platform started from another directory): starting ours would fail to bind, and `ready`
    would be answered by the other one."""
    return [f"{component} (port {PORTS[component]})" for component in COMPONENTS
            if not running_pid(component) and port_open(PORTS[component])]


def bring_up(timeout=120):
    problems = check_backing_services()
    if problems:
        raise click.ClickException("\n".join(problems))
    taken = ports_taken_by_others()
    if taken:
        raise click.ClickException(
            f"another process already listens where this platform must: {', '.join(taken)}. Is a Fupin started "
            f"from another directory still running? Stop it there (`make down`), or find it with "
            f"`ss -ltnp 'sport = :{PORTS['gateway']}'`.")
    from services.common.migrate import migrate as run_migration

    for component in COMPONENTS:
        click.echo(f"migrating {component} ...")
        run_migration(component, database_url(component))
    for component in COMPONENTS:
        if start(component):
            click.echo(f"started {component}")
    deadline = time.monotonic() + timeout
    waiting = set(COMPONENTS)
    while waiting and time.monotonic() < deadline:
        for component in sorted(waiting):
            if not running_pid(component):
                raise click.ClickException(f"{component} exited at start; see {log_file(component)}")
            if ready(component):
                waiting.discard(component)
        time.sleep(0.5)
    if waiting:
        raise click.ClickException(
            f"not ready after {timeout}s: {', '.join(sorted(waiting))}; see the logs in {VAR / 'log'}"
        )
    click.echo("all ready:")
    for component in COMPONENTS:
        click.echo(f"  {component:<11} http://127.0.0.1:{PORTS[component]}  (log {log_file(component)})")
    if start_watchdog():
        click.echo(f"watchdog started: a process that exits is started again (log {log_file('watchdog')})")


def start_watchdog():
    if running_pid("watchdog"):
        return False
    fupin = Path(sys.executable).with_name("fupin")
    with open(log_file("watchdog"), "ab") as log:
        process = subprocess.Popen(
            [str(fupin), "watchdog"], cwd=REPO_ROOT, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
    pid_file("watchdog").write_text(str(process.pid))
    return True


@main.command(hidden=True)
@click.option("--interval", default=1.0, show_default=True)
def watchdog(interval):
    """Start again every process of `fupin up` that exited (run by `fupin up`)."""
    import logging

    from fupin.supervisor import Watchdog

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    def alive(name):
        reap_children()  # a restarted process is our child: once exited, a zombie until reaped
        return running_pid(name) is not None

    Watchdog(COMPONENTS, alive, start).run(interval)


def reap_children():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


@main.command()
def up():
    """Create the databases, migrate, start every service and the gateway, wait until ready."""
    bring_up()


@main.command()
def down():
    """Stop every process started by `fupin up`."""
    stop_all()


def stop_all():
    watchdog_pid = running_pid("watchdog")
    if watchdog_pid:  # first, or it would start again what is being stopped
        os.killpg(watchdog_pid, signal.SIGTERM)
        pid_file("watchdog").unlink(missing_ok=True)
        click.echo("stopped the watchdog")
    for component in COMPONENTS:
        pid = running_pid(component)
        if not pid:
            continue
        os.killpg(pid, signal.SIGTERM)
        for _ in range(50):
            if not running_pid(component):
                break
            time.sleep(0.2)
        else:
            os.killpg(pid, signal.SIGKILL)
        pid_file(component).unlink(missing_ok=True)
        click.echo(f"stopped {component}")


@main.command()
def status():
    """Show which processes run and whether they are ready."""
    for component in COMPONENTS:
        pid = running_pid(component)
        state = "not running" if not pid else ("ready" if ready(component) else "starting or not ready")
        click.echo(f"{component:<11} {state:<22} http://127.0.0.1:{PORTS[component]}")


@main.command()
@click.option("--idempotency-days", default=None, type=int, help="keep idempotency keys this long (default 30)")
@click.option("--inbox-days", default=None, type=int, help="keep inbox rows this long (default 7)")
@click.argument("components", nargs=-1)
def prune(idempotency_days, inbox_days, components):
    """Delete idempotency keys and inbox rows past their retention (every service also does it hourly)."""
    from services.common import retention
    from services.common.db import create_db_engine

    for component in components or COMPONENTS:
        if component not in COMPONENTS:
            raise click.BadParameter(f"unknown component {component!r}; one of {', '.join(COMPONENTS)}")
        engine = create_db_engine(database_url(component), pool_size=1)
        try:
            deleted = retention.prune(engine, idempotency_days or retention.DEFAULT_IDEMPOTENCY_RETENTION_DAYS,
                                      inbox_days or retention.DEFAULT_INBOX_RETENTION_DAYS)
        finally:
            engine.dispose()
        click.echo(f"{component}: " + (", ".join(f"{n} {table} rows" for table, n in deleted.items()) or "nothing to prune"))


@main.command()
@click.argument("service", type=click.Choice(SERVICES))
def rebuild(service):
    """Rebuild a service's read models from its events, into shadow tables swapped in at the end
    (the service must run, and answers from the old tables meanwhile)."""
    from nameko.standalone.rpc import ClusterRpcProxy

    config = {"AMQP_URI": os.environ.get("AMQP_URI", DEFAULT_AMQP)}
    started = time.monotonic()
    with ClusterRpcProxy(config, timeout=3600) as cluster:
        reply = getattr(cluster, service).rebuild_read_models.call_async()
        if service == "assessment":  # the consumer: replays every source over RPC, minutes for a large county
            show_replay_progress(config, service, reply, started)
        result = reply.result()
    click.echo(f"rebuilt {service} in {time.monotonic() - started:.0f} s: {result}")


def show_replay_progress(config, service, reply, started, every=15):
    """Print an event consumer's checkpoints every `every` seconds until its rebuild replies
    (also used by bench/assessment_bench.py)."""
    import threading

    from nameko.standalone.rpc import ClusterRpcProxy

    def wait_for_reply():
        try:
            reply.result()  # the reply is kept; the caller's result() then returns or raises it
        except Exception:
            pass

    waiter = threading.Thread(target=wait_for_reply, daemon=True)
    waiter.start()
    with ClusterRpcProxy(config, timeout=30) as watcher:
        while waiter.join(every) or waiter.is_alive():
            positions = getattr(watcher, service).consumer_checkpoints()
            done = ", ".join(f"{source} at {position:,}" for source, position in sorted(positions.items()))
            click.echo(f"  {time.monotonic() - started:.0f} s: replayed {done or 'nothing yet'}")


@main.command()
@click.option("--households", default=389, show_default=True, help="households to generate")
@click.option("--cadres", default=100, show_default=True, help="cadres to generate")
@click.option("--seed", default=2023, show_default=True)
@click.option("--fresh", is_flag=True, help="stop the platform and drop its databases first (a clean county)")
@click.option("--cadre-accounts/--no-cadre-accounts", default=True, show_default=True,
              help="give every cadre an account that sends its own visits; without, the admin sends them "
                   "(a county of 2,000 cadres: each account costs the gateway two argon2 hashes, ~0.4 s of CPU)")
def demo(households, cadres, seed, fresh, cadre_accounts):
    """Bring the platform up, load a generated county year through the gateway, print rankings."""
    from fupin import demo as demo_module
    from services.common.db import drop_database

    if fresh:
        stop_all()
        for component in COMPONENTS:
            drop_database(database_url(component))
        click.echo("dropped the databases of " + ", ".join(COMPONENTS))
    bring_up()
    demo_module.run(households=households, cadres=cadres, seed=seed, cadre_accounts=cadre_accounts)


if __name__ == "__main__":
    main()


@main.group()
def audit():
    """The gateway's audit trail (append-only, chained by hash; docs/security.md)."""


@audit.command("verify")
@click.option("--database-url", default=None, help="the gateway database (default: GATEWAY_DATABASE_URL or local)")
def audit_verify(**kwargs):
    """Recompute the hash chain; report the first broken link (exit 1) or that it is intact."""
    from sqlalchemy import create_engine

    from gateway.audit import verify_chain

    url = kwargs.get("database_url") or database_url("gateway")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            checked, broken = verify_chain(conn)
    finally:
        engine.dispose()
    if broken:
        click.echo(f"✗ the audit chain is broken at audit_id {broken['audit_id']}: {broken['reason']} "
                   f"({checked} rows before it are intact)")
        sys.exit(1)
    click.echo(f"✓ {checked} audit rows, the chain is intact")


@main.command("rewrap-keys")
def rewrap_keys():
    """After a KEK rotation (FUPIN_PII_KEK new, the old one in FUPIN_PII_KEK_PREVIOUS): wrap every
    household's data key with the new KEK, so the old one can be dropped (the registry must run)."""
    from nameko.standalone.rpc import ClusterRpcProxy

    with ClusterRpcProxy({"AMQP_URI": os.environ.get("AMQP_URI", DEFAULT_AMQP)}, timeout=3600) as cluster:
        result = cluster.registry.rewrap_household_keys()
    click.echo(f"rewrapped {result['rewrapped']} household data keys with the key-encryption key {result['kek_id']}")
