"""Rebuilding read models into shadow tables (services/common/rebuild.py), on real PostgreSQL:
while the replay runs, readers see the old tables complete and commands go on; the swap at the
end brings in the new tables with every command committed meanwhile, and the tables keep the
shape (indexes, constraints, names) their migrations gave them."""
import importlib

import eventlet
import pytest
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.orm import Session

from services.common import store as store_module
from services.common.events import NewEvent
from services.common import rebuild as rebuild_module
from services.common.errors import ServiceUnavailable
from services.common.rebuild import SHADOW_SCHEMA, rebuild
from services.common.store import EventStore
from tests import support
from tests.service.sample_services import CounterProjections, counters, read_models


@pytest.fixture(scope="module")
def rebuild_db(infra):
    return support.fresh_database_from_metadata("shadow_rebuild", store_module.metadata, read_models)


@pytest.fixture
def engine(rebuild_db):
    support.truncate_all(rebuild_db)
    engine = create_engine(rebuild_db, pool_size=10)
    yield engine
    engine.dispose()


def begin_command(engine, counter_id, by):
    """A command as the chassis runs it (append and projection in one transaction), not yet
    committed: the caller commits the session it gets back."""
    session = Session(engine)
    session.execute(text("SET LOCAL lock_timeout = '5s'"))  # a rebuild must never hold a command this long
    store = EventStore(session)
    version = store.stream_version("counter", counter_id)
    for event in store.append("counter", counter_id, version, [NewEvent("incremented", {"by": by})]):
        CounterProjections.project(session, event)
    return session


def command(engine, counter_id, by):
    with begin_command(engine, counter_id, by) as session:
        session.commit()


def read_counters(engine):
    """A reader that gives up after a second: a rebuild must not hold readers behind it."""
    with engine.connect() as conn:
        conn.execute(text("SET LOCAL lock_timeout = '1s'"))
        return {row.counter_id: row.total for row in conn.execute(select(counters))}


class PausingProjections:
    """The counters' projections, calling `meanwhile()` once, in the middle of the replay."""

    READ_MODEL_TABLES = CounterProjections.READ_MODEL_TABLES

    def __init__(self, after_events, meanwhile):
        self.after_events, self.meanwhile, self.seen = after_events, meanwhile, 0

    def project(self, session, event):
        CounterProjections.project(session, event)
        self.seen += 1
        if self.seen == self.after_events:
            self.meanwhile()


def test_during_the_replay_readers_see_the_old_tables_complete_and_commands_go_on(engine):
    for i in range(6):
        command(engine, f"c{i % 2}", 10)
    with engine.begin() as conn:  # a wrong live row, as a projection bug would leave it: the rebuild mends it
        conn.execute(update(counters).where(counters.c.counter_id == "c0").values(total=999))
    seen_during_replay = {}

    def meanwhile():
        seen_during_replay.update(read_counters(engine))
        command(engine, "c1", 5)  # commits while the replay runs
        seen_during_replay["after_the_command"] = read_counters(engine)

    with Session(engine) as session:
        replayed = rebuild(session, PausingProjections(3, meanwhile), batch_size=2)
        session.commit()

    assert seen_during_replay.pop("after_the_command") == {"c0": 999, "c1": 35}
    assert seen_during_replay == {"c0": 999, "c1": 30}  # the old tables, whole, not a half-replayed copy
    assert read_counters(engine) == {"c0": 30, "c1": 35}  # the new tables, with the command made meanwhile
    assert replayed == 7


def test_a_command_in_flight_when_the_swap_begins_is_in_the_new_tables(engine):
    for i in range(4):
        command(engine, "c0", 1)
    # Holds its read-model row and the append lock, uncommitted, while the replay runs past it;
    # it commits only once the rebuild is waiting for the live tables.
    in_flight = begin_command(engine, "c0", 100)

    def commit_when_the_rebuild_waits():
        with watching(engine) as watcher:
            support.wait_until(lambda: waiting_for_a_lock(watcher), timeout=60, message="the rebuild waiting")
        in_flight.commit()
        in_flight.close()

    committer = eventlet.spawn(commit_when_the_rebuild_waits)
    with Session(engine) as session:
        replayed = rebuild(session, CounterProjections)
        session.commit()
    committer.wait()

    assert replayed == 5
    assert read_counters(engine) == {"c0": 104}


def watching(engine):
    """A connection whose every query is a transaction of its own (pg_stat_activity is read once
    per transaction)."""
    return engine.connect().execution_options(isolation_level="AUTOCOMMIT")


def waiting_for_a_lock(conn):
    return conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                             "AND wait_event_type = 'Lock'")).scalar()


def test_a_reader_holding_the_live_tables_past_the_lock_timeout_delays_the_swap_only(engine, monkeypatch):
    monkeypatch.setattr(rebuild_module, "SWAP_LOCK_TIMEOUT_MS", 100)
    monkeypatch.setattr(rebuild_module, "SWAP_ATTEMPTS", 100_000)  # until the reader ends, however slow the machine
    command(engine, "c0", 3)
    reader = engine.connect()
    reader.execute(select(counters)).all()  # a long report: holds the table until it ends

    def end_the_reader_after_a_refused_attempt():
        with watching(engine) as watcher:
            support.wait_until(lambda: waiting_for_a_lock(watcher), timeout=60, message="a first attempt")
            support.wait_until(lambda: not waiting_for_a_lock(watcher), timeout=60, message="it given up")
            command(engine, "c0", 4)  # between attempts: the replay catches up with it
        reader.close()

    ender = eventlet.spawn(end_the_reader_after_a_refused_attempt)
    with Session(engine) as session:
        rebuild(session, CounterProjections)
        session.commit()
    ender.wait()
    assert read_counters(engine) == {"c0": 7}


def test_a_swap_that_never_gets_the_tables_is_a_503_and_changes_nothing(engine, monkeypatch):
    monkeypatch.setattr(rebuild_module, "SWAP_LOCK_TIMEOUT_MS", 50)
    monkeypatch.setattr(rebuild_module, "SWAP_ATTEMPTS", 2)
    command(engine, "c0", 3)
    with engine.connect() as reader:
        reader.execute(select(counters)).all()
        with Session(engine) as session, pytest.raises(ServiceUnavailable) as refused:
            rebuild(session, CounterProjections)
    assert refused.value.details["retry_after"] > 0
    assert read_counters(engine) == {"c0": 3}


def test_a_failed_rebuild_leaves_the_old_tables_and_no_shadow_behind(engine):
    command(engine, "c0", 7)

    class Broken:
        READ_MODEL_TABLES = CounterProjections.READ_MODEL_TABLES

        @staticmethod
        def project(session, event):
            raise RuntimeError("a projection bug")

    with Session(engine) as session, pytest.raises(RuntimeError):
        rebuild(session, Broken)
    assert read_counters(engine) == {"c0": 7}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT to_regnamespace(:s)"), {"s": SHADOW_SCHEMA}).scalar() is None


def catalog(conn, tables):
    """What a migration made of the tables: columns, constraints and indexes, by name."""
    return {
        "columns": conn.execute(text(
            "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ANY(:t) ORDER BY 1, 2"), {"t": list(tables)}).all(),
        "constraints": conn.execute(text(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid::regclass::text = ANY(:t) ORDER BY 1, 2"), {"t": list(tables)}).all(),
        "indexes": conn.execute(text(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = ANY(:t) ORDER BY 1, 2"), {"t": list(tables)}).all(),
    }


@pytest.mark.parametrize("service", ["registry", "assistance", "projects", "credit", "supervision"])
def test_the_swapped_in_tables_are_the_ones_the_migrations_made(infra, service):
    url = support.fresh_database(service, name=f"{service}_swap")
    projections = importlib.import_module(f"services.{service}.projections")
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            before = catalog(conn, projections.READ_MODEL_TABLES)
        with Session(engine) as session:
            rebuild(session, projections)
            session.commit()
        with engine.connect() as conn:
            after = catalog(conn, projections.READ_MODEL_TABLES)
            assert conn.execute(text("SELECT to_regnamespace(:s)"), {"s": SHADOW_SCHEMA}).scalar() is None
    finally:
        engine.dispose()
    assert before["indexes"] and after == before
