"""Real PostgreSQL and RabbitMQ for the tests: no mocks, and a clear failure when missing.

Each test run works in its own databases (`<prefix>_<component>`) and its own RabbitMQ vhost
(`<prefix>`), so tests never touch a platform started with `fupin up` on the same machine.
Set FUPIN_TEST_PREFIX to run two suites side by side.
"""
import os
import socket
import subprocess
import uuid
from contextlib import ExitStack, contextmanager

import kombu.pools
import pytest
from kombu import Connection
from nameko.containers import ServiceContainer
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import create_engine, text

from services.common.config import load_config
from services.common.db import drop_database, ensure_database
from services.common.migrate import migrate

PREFIX = os.environ.get("FUPIN_TEST_PREFIX", "fupin_test")
PG_BASE = os.environ.get("FUPIN_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
AMQP_HOST = os.environ.get("FUPIN_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")

HOW_TO_START = {
    "postgresql": "PostgreSQL is not reachable at 127.0.0.1:5432. Start it with `fupin doctor` "
                  "(or: sudo pg_ctlcluster $(ls /etc/postgresql) main start; install: "
                  "sudo apt-get install postgresql).",
    "rabbitmq": "RabbitMQ is not reachable at 127.0.0.1:5672. Start it with `fupin doctor` "
                "(or: sudo rabbitmq-server -detached; install: sudo apt-get install rabbitmq-server).",
}


def require_infra():
    for name, port in (("postgresql", 5432), ("rabbitmq", 5672)):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError:
            pytest.fail(HOW_TO_START[name], pytrace=False)


def database_url(component):
    return f"{PG_BASE}/{PREFIX}_{component}"


def fresh_database(component, name=None):
    """Drop and re-create the component's test database (`name` to have several), migrated."""
    url = database_url(name or component)
    drop_database(url)
    migrate(component, url)
    return url


def fresh_database_from_metadata(name, *metadatas):
    """For test-only services without migrations."""
    url = database_url(name)
    drop_database(url)
    ensure_database(url)
    engine = create_engine(url)
    for metadata in metadatas:
        metadata.create_all(engine)
    engine.dispose()
    return url


def truncate_all(url, keep=("alembic_version",)):
    engine = create_engine(url)
    with engine.begin() as conn:
        names = [
            row[0] for row in conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            ) if row[0] not in keep
        ]
        if names:
            conn.execute(text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY"))
    engine.dispose()


def fresh_vhost(suffix=None):
    """A clean vhost for this run: deleted and re-created, so no queue from an earlier run
    holds stale messages. Needs rabbitmqctl on this machine (the broker is local in CI).

    A whole platform (e2e, browser) takes its own `suffix`: consumers' queues are durable, so
    in a shared vhost the queues an earlier module's assessment declared would hold every
    event later modules published, and the platform's assessment would score them too."""
    vhost = f"{PREFIX}_{suffix}" if suffix else PREFIX
    try:
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=60)
        subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True, timeout=60)
        subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
                       check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.fail(f"could not create RabbitMQ vhost {vhost!r} with rabbitmqctl ({exc}); "
                    "run the tests as a user allowed to use rabbitmqctl (root or rabbitmq)",
                    pytrace=False)
    uri = f"{AMQP_HOST}/{vhost}"
    with Connection(uri, connect_timeout=5) as conn:
        conn.ensure_connection(max_retries=3)
    return uri


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_config(component, amqp_uri, database=None, **overrides):
    """The component's real config.yaml, pointed at the test broker and database."""
    config = load_config(component) if component else {}
    config.update(
        AMQP_URI=amqp_uri,
        WEB_SERVER_ADDRESS=f"127.0.0.1:{free_port()}",
    )
    if database:
        config["DATABASE_URL"] = database
    config.update(overrides)
    return config


def forget_pooled_connections():
    """Make kombu's pools start afresh without closing anything they hold.

    kombu.pools.reset() force-closes every pooled connection, also the ones another green thread
    has acquired and is waiting on: that thread's read listener stays registered on the closed
    fd, a later connection reuses the fd number, and eventlet refuses it ("Second simultaneous
    read on fileno"). Forgetting the pools instead leaves each connection to whoever holds it:
    the next acquire opens a new one, and the old ones close when nothing refers to them."""
    for group in (kombu.pools.connections, kombu.pools.producers):
        group.clear()


@contextmanager
def running(service_cls, config):
    """Run one nameko service container for the duration of the block.

    A broker restart (another suite's fault test on this shared machine) leaves dead connections
    in kombu's pools, and the next container to start would fail on one: the pools are forgotten
    (forget_pooled_connections) and the start tried once more."""
    container = ServiceContainer(service_cls, config)
    try:
        container.start()
    except (ConnectionError, OSError, AttributeError):
        container.kill()
        forget_pooled_connections()
        container = ServiceContainer(service_cls, config)
        container.start()
    try:
        yield container
    finally:
        container.stop()


@contextmanager
def running_services(amqp_uri, databases, *service_classes):
    """Every database of `databases` ({component: url}) emptied, then each service of
    `service_classes` running on its own one; yields an RPC client of them all."""
    for url in databases.values():
        truncate_all(url)
    with ExitStack() as stack:
        for service_cls in service_classes:
            config = service_config(service_cls.name, amqp_uri, databases[service_cls.name])
            stack.enter_context(running(service_cls, config))
        yield stack.enter_context(rpc_client(amqp_uri))


@contextmanager
def rpc_client(amqp_uri, timeout=30):
    with ClusterRpcProxy({"AMQP_URI": amqp_uri}, timeout=timeout) as cluster:
        yield cluster


def wait_until(predicate, timeout=20.0, interval=0.05, message="condition"):
    import time

    import eventlet

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        eventlet.sleep(interval)


def id_number(seed, born="19800203", sex="male"):
    """A valid GB 11643 ID number for a member born on `born` (YYYYMMDD) of `sex`, the same for the
    same seed. Region and sequence both come from the seed: the e2e and browser counties share one
    registry database across runs, so 500 sequence numbers alone collided (a 409 on the 2nd run)."""
    digest = uuid.uuid5(uuid.NAMESPACE_DNS, seed).int
    region = 110000 + digest % 550000
    sequence = (digest // 550000) % 500 * 2 + (1 if sex == "male" else 0)
    body = f"{region}{born}{sequence:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights)) % 11]
