"""Pruning: `idempotency_keys` and `inbox` would otherwise grow with every command and event.

- An idempotency key is kept IDEMPOTENCY_RETENTION_DAYS (default 30): a client retries within
  minutes; a month covers a department system that resends a day's batch a week later.
- An inbox row only guards against a second delivery of an event. Catch-up never asks again for
  a position at or below its checkpoint, and the bus does not redeliver week-old messages, so a
  row older than INBOX_RETENTION_DAYS (default 7) *and* at or below its source's checkpoint
  can go. (The assessment's source_events keep their own unique event id as a second guard.)

Rows are deleted in batches of PRUNE_BATCH, each its own short transaction, so pruning never
holds locks a command waits for. Every service runs it hourly (a timer in the chassis);
`fupin prune` runs it now, for every database.
"""
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Table, and_, delete, exists, func, inspect, select
from sqlalchemy.engine import Engine

from .store import consumer_checkpoints, idempotency_keys, inbox

DEFAULT_IDEMPOTENCY_RETENTION_DAYS = 30
DEFAULT_INBOX_RETENTION_DAYS = 7
PRUNE_BATCH = 5000


def retention_from_config(config: Any) -> dict[str, int]:
    return {
        "idempotency_days": int(config.get("IDEMPOTENCY_RETENTION_DAYS") or DEFAULT_IDEMPOTENCY_RETENTION_DAYS),
        "inbox_days": int(config.get("INBOX_RETENTION_DAYS") or DEFAULT_INBOX_RETENTION_DAYS),
    }


def _delete_in_batches(engine: Engine, table: Table, key: Any, condition: Any) -> int:
    deleted = 0
    while True:
        with engine.begin() as connection:
            doomed = select(key).where(condition).limit(PRUNE_BATCH)
            count = connection.execute(delete(table).where(key.in_(doomed.scalar_subquery()))).rowcount
        deleted += count
        if count < PRUNE_BATCH:
            return deleted


def prune(engine: Engine, idempotency_days: int = DEFAULT_IDEMPOTENCY_RETENTION_DAYS,
          inbox_days: int = DEFAULT_INBOX_RETENTION_DAYS, now: datetime | None = None) -> dict[str, int]:
    """Delete what the retention allows; returns {table: rows deleted} for the tables present."""
    now = now or datetime.now(timezone.utc)
    present = set(inspect(engine).get_table_names())
    deleted = {}
    if "idempotency_keys" in present:
        deleted["idempotency_keys"] = _delete_in_batches(
            engine, idempotency_keys, idempotency_keys.c.key,
            idempotency_keys.c.recorded_at < now - timedelta(days=idempotency_days))
    if "inbox" in present:
        behind_checkpoint = exists().where(and_(consumer_checkpoints.c.source == inbox.c.source,
                                                inbox.c.global_position <= consumer_checkpoints.c.position))
        deleted["inbox"] = _delete_in_batches(
            engine, inbox, inbox.c.event_id,
            and_(inbox.c.applied_at < now - timedelta(days=inbox_days), behind_checkpoint))
    return deleted


def oldest(engine: Engine, table: str) -> Any:
    column = {"idempotency_keys": idempotency_keys.c.recorded_at, "inbox": inbox.c.applied_at}[table]
    with engine.connect() as connection:
        return connection.execute(select(func.min(column))).scalar()
