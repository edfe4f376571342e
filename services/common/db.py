"""PostgreSQL access: one engine per service container, one SQLAlchemy session per worker.

psycopg2 blocks the whole process unless told to yield to eventlet; psycogreen installs the
wait callback that makes it cooperative, so one slow query doesn't stall every worker.
"""
import time
import weakref
from typing import Any

import psycogreen.eventlet
from nameko.extensions import DependencyProvider
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session

_patched = False


def make_cooperative() -> None:
    global _patched
    if not _patched:
        psycogreen.eventlet.patch_psycopg()
        _patched = True


# One stuck client must not stop every write of a service: a lock waited for longer than
# LOCK_TIMEOUT_MS fails (the command answers 503 with Retry-After, the client retries with its
# key), and a session left idle inside a transaction is ended by the server, releasing its locks.
DEFAULT_LOCK_TIMEOUT_MS = 10_000
DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000


def session_options(config: Any) -> str:
    """libpq `options` for every connection of a service, from its config."""
    lock_ms = int(config.get("LOCK_TIMEOUT_MS") or DEFAULT_LOCK_TIMEOUT_MS)
    idle_ms = int(config.get("IDLE_IN_TRANSACTION_TIMEOUT_MS") or DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS)
    return f"-c lock_timeout={lock_ms} -c idle_in_transaction_session_timeout={idle_ms}"


# A pooled connection idle for longer than this is pinged before it is handed out (one round trip)
# and replaced if it is gone (a database restart, a pooler's idle timeout). One used a moment ago
# is handed out as it is: pinging every checkout was a sixth of a command's time (issue 17).
PING_AFTER_IDLE_SECONDS = 1.0


def create_db_engine(database_url: Any, pool_size: int = 10, options: str | None = None,
                     ping_after_idle: float = PING_AFTER_IDLE_SECONDS) -> Any:
    engine = create_engine(
        database_url,
        pool_size=pool_size,
        max_overflow=pool_size,
        future=True,
        connect_args={"options": options if options is not None else session_options({})},
    )
    ping_when_idle(engine, ping_after_idle)
    return engine


def ping_when_idle(engine: Engine, after_seconds: float) -> None:
    """SQLAlchemy's pool_pre_ping, for connections idle `after_seconds` or more only."""

    @event.listens_for(engine, "connect")
    def connected(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def returned(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def handed_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if time.monotonic() - record.info.get("idle_since", 0.0) < after_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # the pool then drops it and connects anew (up to three times)
            raise DisconnectionError(f"a pooled connection is gone: {exc}") from exc


def ensure_database(database_url: Any) -> None:
    """Create the database named in the URL if it doesn't exist (connects to `postgres`)."""
    url = make_url(database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            ).scalar()
            if not exists:
                conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    finally:
        admin.dispose()


def drop_database(database_url: Any) -> None:
    url = make_url(database_url)
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": url.database},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}"'))
    finally:
        admin.dispose()


class Database(DependencyProvider):
    """Gives each worker `self.db`: `.session` (a fresh Session, closed after the worker) and
    `.engine` (for work that manages its own transactions, like the relay)."""

    def setup(self) -> None:
        make_cooperative()
        config = self.container.config
        self.engine = create_db_engine(config["DATABASE_URL"], options=session_options(config))
        self._by_worker: weakref.WeakKeyDictionary[Any, _WorkerDb] = weakref.WeakKeyDictionary()

    def stop(self) -> None:
        self.engine.dispose()

    def kill(self) -> None:
        self.engine.dispose()

    def get_dependency(self, worker_ctx: Any) -> Any:
        db = _WorkerDb(self.engine)
        self._by_worker[worker_ctx] = db
        return db

    def worker_teardown(self, worker_ctx: Any) -> None:
        db = self._by_worker.pop(worker_ctx, None)
        if db is not None:
            db.close()


class _WorkerDb:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = Session(self.engine, future=True)
        return self._session

    def new_session(self) -> Any:
        return Session(self.engine, future=True)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
