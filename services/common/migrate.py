"""Alembic, one database and one migrations folder per service.

Each service's `migrations/env.py` is just `run_migrations()`; its first revision calls
`create_event_store(op)` and later ones add its read models.
"""
from typing import Any

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from sqlalchemy import create_engine
from sqlalchemy.dialects import postgresql

from .config import REPO_ROOT
from .db import ensure_database


def migrations_folder(component: Any) -> Any:
    if component == "gateway":
        return REPO_ROOT / "gateway" / "migrations"
    return REPO_ROOT / "services" / component / "migrations"


def migrate(component: Any, database_url: Any) -> None:
    """Create the database if missing and bring it to the newest revision."""
    ensure_database(database_url)
    config = Config()
    config.set_main_option("script_location", str(migrations_folder(component)))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, "head")


def run_migrations() -> None:
    """Body of every env.py: run the pending revisions online, one transaction each."""
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("alembic's sqlalchemy.url is not set (run migrations through services.common.migrate)")
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def create_event_store(op: Any) -> None:
    """Version 1 of the event-store tables, frozen here as they were first shipped."""
    op.create_table(
        "events",
        sa.Column("global_position", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("event_id", postgresql.UUID(as_uuid=False), nullable=False, unique=True),
        sa.Column("stream_type", sa.Text, nullable=False),
        sa.Column("stream_id", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("schema_version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("payload", postgresql.JSONB, nullable=False),
        sa.Column("metadata", postgresql.JSONB, nullable=False, server_default="{}"),
        sa.Column("occurred_on", sa.Date),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("stream_type", "stream_id", "version", name="uq_events_stream_version"),
    )
    op.create_index("ix_events_type", "events", ["event_type"])
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("command_type", sa.Text, nullable=False),
        sa.Column("result", postgresql.JSONB, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "relay_checkpoint",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "inbox",
        sa.Column("event_id", postgresql.UUID(as_uuid=False), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("global_position", sa.BigInteger, nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "consumer_checkpoints",
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("position", sa.BigInteger, nullable=False),
    )


def add_quarantine_and_retention(op: Any) -> None:
    """Version 2 of the event-store tables: the quarantine of events a consumer could not apply,
    and the indexes the pruning jobs (idempotency keys, inbox) delete by."""
    op.create_table(
        "quarantine",
        sa.Column("event_id", postgresql.UUID(as_uuid=False), primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("global_position", sa.BigInteger, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("envelope", postgresql.JSONB, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_idempotency_keys_recorded_at", "idempotency_keys", ["recorded_at"])
    op.create_index("ix_inbox_applied_at", "inbox", ["applied_at"])


def create_snapshots(op: Any) -> None:
    """Version 2 of the event store: the snapshots of long streams' folded state (a cache that
    `EventStore.load_state` reads and ignores when its fingerprint no longer matches the code)."""
    op.create_table(
        "snapshots",
        sa.Column("stream_type", sa.Text, primary_key=True),
        sa.Column("stream_id", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("state", sa.LargeBinary, nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def create_store_functions(op: Any) -> None:
    """The event store's server-side functions for the command path (store.STORE_FUNCTIONS):
    the stream lock, snapshot and events read in one call; the append lock and insert in one."""
    from .store import STORE_FUNCTIONS

    op.execute(STORE_FUNCTIONS)
