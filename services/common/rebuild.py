"""Rebuilding a service's read models from its events, into shadow tables swapped in at the end.

A rebuild must neither stall the service for the whole replay nor show a half-filled read model.
So the replay writes into copies of the read-model tables in a schema of its own (SHADOW_SCHEMA,
put first on the rebuild's search_path, so the projections' unqualified table names reach the
copies while the event store and everything else stay where they are). Meanwhile readers and
commands keep using the live tables, complete as they were.

At the end, in one short step of the same transaction: the live tables are locked (ACCESS
EXCLUSIVE, a short lock_timeout), the events committed since the replay caught up are replayed
too (the tail), the live tables are dropped and the copies moved into their place, with every
index and constraint under its own name. A command that commits during the replay is therefore
in the new tables: either the replay read its events, or it still held its read-model rows when
the lock was asked for (the lock waits for its commit, the tail reads it), or it projects after
the swap, into the new tables (PostgreSQL looks the names up again once the lock is granted).
If the lock is not granted in time (a long reader, a deadlock with a command) the step is rolled
back to its savepoint, the replay catches up again and the step is tried again.

Everything happens in the caller's transaction: a rebuild that crashes leaves nothing behind
(the schema and the copies were never committed), and one that commits swaps all tables at once.
A read-model table may not take part in a foreign key (drop and move would break it); its grants
are not copied (the service's own role owns its tables).
"""
import logging
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from .errors import ServiceUnavailable
from .store import EventStore

log = logging.getLogger(__name__)

SHADOW_SCHEMA = "fupin_rebuild"
REBUILD_LOCK = "fupin.read_models.rebuild"  # one rebuild at a time per database (all replicas)
SWAP_LOCK_TIMEOUT_MS = 2000  # queued behind this lock, readers and writers wait at most this long
SWAP_ATTEMPTS = 10
RETRY_AFTER_SECONDS = 30
_LOCK_NOT_GRANTED = {"55P03", "40P01"}  # lock_timeout, deadlock


def rebuild(session: Session, projections: Any, batch_size: int = 2000) -> int:
    """Replay every event into shadow copies of `projections.READ_MODEL_TABLES` and swap them in,
    in the caller's transaction (the caller commits). Returns the number of events replayed."""
    tables = tuple(projections.READ_MODEL_TABLES)
    if not session.execute(text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"), {"k": REBUILD_LOCK}).scalar():
        raise ServiceUnavailable("the read models are being rebuilt already; try again when that is done",
                                 {"retry_after": RETRY_AFTER_SECONDS})
    live_schema = session.execute(text("SELECT current_schema()")).scalar_one()
    search_path, lock_timeout = session.execute(
        text("SELECT current_setting('search_path'), current_setting('lock_timeout')")).one()
    _create_shadow_tables(session, live_schema, tables)
    _set_search_path(session, f"{_quoted(SHADOW_SCHEMA)}, {search_path}")
    replayed, position = _replay(session, projections, 0, batch_size)
    for name in tables:  # the new tables start with statistics, so the first queries plan well
        session.execute(text(f"ANALYZE {_quoted(SHADOW_SCHEMA)}.{_quoted(name)}"))
    for attempt in range(1, SWAP_ATTEMPTS + 1):
        swap = session.begin_nested()
        try:
            _lock_live_tables(session, live_schema, tables)
        except DBAPIError as exc:
            if getattr(exc.orig, "pgcode", None) not in _LOCK_NOT_GRANTED:
                raise
            swap.rollback()
            log.info("rebuild: the live read models were busy (attempt %d of %d); catching up again",
                     attempt, SWAP_ATTEMPTS)
            more, position = _replay(session, projections, position, batch_size)
            replayed += more
            continue
        more, position = _replay(session, projections, position, batch_size)
        replayed += more
        _swap_in(session, live_schema, tables)
        _set_search_path(session, search_path)
        session.execute(text("SELECT set_config('lock_timeout', :value, true)"), {"value": lock_timeout})
        swap.commit()
        session.info["replayed"] = replayed
        return replayed
    raise ServiceUnavailable("the read models were rebuilt but stayed too busy to be swapped in; try again",
                             {"retry_after": RETRY_AFTER_SECONDS})


def _replay(session: Session, projections: Any, position: int, batch_size: int) -> tuple[int, int]:
    """Project every event after `position`, in order; returns (events replayed, last position)."""
    store = EventStore(session)
    replayed = 0
    while True:
        batch = store.events_since(position, batch_size)
        for event in batch:
            projections.project(session, event)
        replayed += len(batch)
        if batch:
            position = batch[-1].global_position
        if len(batch) < batch_size:
            return replayed, position


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _set_search_path(session: Session, path: str) -> None:
    session.execute(text("SELECT set_config('search_path', :path, true)"), {"path": path})


def _create_shadow_tables(session: Session, live_schema: str, tables: tuple[str, ...]) -> None:
    """Empty copies of the live tables in SHADOW_SCHEMA: columns, defaults and NOT NULLs by LIKE;
    constraints and indexes from the catalog, under their live names (a schema of their own lets
    the names repeat), so the tables moved in later are the ones the migrations made."""
    shadow = _quoted(SHADOW_SCHEMA)
    session.execute(text(f"DROP SCHEMA IF EXISTS {shadow} CASCADE"))  # only ever uncommitted, but be sure
    session.execute(text(f"CREATE SCHEMA {shadow}"))
    for name in tables:
        live = f"{_quoted(live_schema)}.{_quoted(name)}"
        copy = f"{shadow}.{_quoted(name)}"
        session.execute(text(f"CREATE TABLE {copy} (LIKE {live} INCLUDING ALL EXCLUDING INDEXES EXCLUDING CONSTRAINTS)"))
        constraints = session.execute(text(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = CAST(:table AS regclass) AND contype IN ('p', 'u', 'c', 'x', 'f') ORDER BY conname"),
            {"table": live}).all()
        for constraint_name, kind, definition in constraints:
            if kind == "f":
                raise RuntimeError(f"read model {name} has a foreign key ({constraint_name}); "
                                   "a shadow rebuild cannot swap tables that take part in one")
            session.execute(text(f"ALTER TABLE {copy} ADD CONSTRAINT {_quoted(constraint_name)} {definition}"))
        indexes = session.execute(text(
            "SELECT pg_get_indexdef(i.indexrelid), format('%I.%I', n.nspname, c.relname) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE i.indrelid = CAST(:table AS regclass) AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid) "
            "ORDER BY 1"), {"table": live}).all()
        for definition, qualified in indexes:
            on_live = f" ON {qualified} USING "
            if on_live not in definition:
                raise RuntimeError(f"cannot copy index of {name}: {definition}")
            session.execute(text(definition.replace(on_live, f" ON {copy} USING ", 1)))


def _lock_live_tables(session: Session, live_schema: str, tables: tuple[str, ...]) -> None:
    """Wait for every command holding read-model rows to commit, and hold later ones off until
    the swap commits; given up after SWAP_LOCK_TIMEOUT_MS (a failed attempt's savepoint rollback
    undoes the setting; a successful swap sets the caller's value back)."""
    session.execute(text(f"SET LOCAL lock_timeout = {int(SWAP_LOCK_TIMEOUT_MS)}"))
    if tables:
        names = ", ".join(f"{_quoted(live_schema)}.{_quoted(name)}" for name in tables)
        session.execute(text(f"LOCK TABLE {names} IN ACCESS EXCLUSIVE MODE"))


def _swap_in(session: Session, live_schema: str, tables: tuple[str, ...]) -> None:
    live = _quoted(live_schema)
    if tables:
        session.execute(text("DROP TABLE " + ", ".join(f"{live}.{_quoted(name)}" for name in tables)))
    for name in tables:
        session.execute(text(f"ALTER TABLE {_quoted(SHADOW_SCHEMA)}.{_quoted(name)} SET SCHEMA {live}"))
    session.execute(text(f"DROP SCHEMA {_quoted(SHADOW_SCHEMA)}"))
