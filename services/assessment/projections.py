"""The assessment's read model: the source events scores are made of, and the Facts built
from them (with the assessment's own ratings, vetoes and rulebooks) kept in memory until a new
event arrives."""
import gc
import hashlib
import inspect
import io
import logging
import pickle
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import eventlet
import psycopg2
from psycopg2.extras import Json
from eventlet.semaphore import Semaphore
from sqlalchemy import BigInteger, Column, Date, DateTime, Index, MetaData, Table, Text, func, select, text
from sqlalchemy.dialects.postgresql import JSONB, UUID

from services.common.events import StoredEvent
from services.common.metrics import UNUSABLE_FACTS
from services.common.store import EventStore, events as own_events, inbox

from . import incremental, periods, scoring
from .facts import Facts

log = logging.getLogger(__name__)

metadata = MetaData()
source_events = Table(
    "source_events", metadata,
    Column("seq", BigInteger, primary_key=True),
    Column("event_id", UUID(as_uuid=False), nullable=False, unique=True),
    Column("source", Text, nullable=False),
    Column("global_position", BigInteger, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    # The month an event is about and when its service recorded it: what a closed month lists
    # as its late corrections (periods.py). Null on rows from before closing existed.
    Column("dated", Date),
    Column("recorded_at", DateTime(timezone=True)),
    Index("ix_source_events_dated", "dated"),
)

# Own events need no table of their own: Facts reads them from the event store directly.
READ_MODEL_TABLES = ()
RELEVANT = {name[4:] for name in dir(Facts) if name.startswith("_on_")}
SOURCE_EVENTS_LOCK = "fupin.assessment.source_events"
REBUILD_LOCK = "fupin.assessment.rebuild"  # held by a rebuild; scores are not answered meanwhile


def project(session, event):
    """Own events (ratings, vetoes, rulebooks) are read from the event store itself."""


def record_source_events(session, source, events):
    """Keep the events scores are made of (one multi-row insert); the rest only pass the inbox."""
    rows = [(event.event_id, source, event.global_position, event.type, Json(event.payload),
             periods.business_date(event.type, event.payload, event.occurred_on), event.recorded_at)
            for event in events if event.type in RELEVANT]
    if rows:
        # Held until commit, so rows become visible in seq order and load_facts, reading past
        # the last seq it saw, never skips a row that a slower transaction commits later.
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": SOURCE_EVENTS_LOCK})
        EventStore(session).execute_values(
            "INSERT INTO source_events (event_id, source, global_position, event_type, payload, dated, recorded_at) "
            "VALUES %s ON CONFLICT DO NOTHING", rows)


def replayed_counts(session):
    """{source: events in the inbox}: what a rebuild has replayed, whichever worker applied it."""
    return dict(session.execute(select(inbox.c.source, func.count()).group_by(inbox.c.source)).all())


def forget_source_events(session):
    # In the order catch-up (checkpoint, inbox, source_events) and delivery (inbox, source_events)
    # take their locks, so a rebuild running beside them waits instead of deadlocking.
    # seq keeps counting (no RESTART IDENTITY): a cached facts' "first row" then never matches.
    session.execute(text("TRUNCATE consumer_checkpoints, inbox, source_events"))


_caches = {}  # database URL -> cached facts (several assessment containers may share a process in tests)


def _cache_for(session):
    # One loader at a time per database: concurrent requests after a restart wait for the one
    # cold load (tens of seconds for a million events) instead of each doing it again.
    return _caches.setdefault(str(session.get_bind().url),
                              {"facts": None, "first": None, "max_seq": 0, "head": 0, "loading": Semaphore()})


def _apply_source_rows(facts, session, after_seq=0, page=10_000):
    """Apply every source row past `after_seq`; returns (rows applied, highest seq).

    Read through a server-side cursor straight from the driver: a cold start reads every row
    (a million for seven county-years), and SQLAlchemy's per-row processing and uuid objects
    cost more than the scoring itself; the cursor also keeps only one page in memory.
    """
    count, max_seq = 0, 0
    with session.connection().connection.cursor(name="assessment_facts") as cursor:
        cursor.itersize = page
        cursor.execute("SELECT seq, event_id::text, event_type, payload, global_position FROM source_events"
                       " WHERE seq > %s ORDER BY seq", (after_seq,))
        changes = getattr(facts, "changes", None)
        for seq, event_id, event_type, payload, position in cursor:
            facts.apply(StoredEvent(position, event_id, "", "", 0, event_type, 1, payload))
            if changes is not None:
                changes.record(incremental.affected_subjects(facts, event_type, payload))
            count, max_seq = count + 1, seq
    return count, max_seq


# --- the facts, persisted: a restart starts from them instead of every row ------------------------
# A cache like the event store's snapshots (same table): the pickled Facts with what they were
# built from. Ignored when the code that builds Facts changed (fingerprint) or the table was emptied
# since (first row); rows past its last seq and own events past its head are applied on top.
FACTS_SNAPSHOT = ("assessment_facts", "all")
# The timer saves again once this many source rows, or a tenth of all rows, were applied since the
# last save: pickling the facts holds the service's event loop (28 s at a million rows on the loaded
# 2-core machine), so the larger the facts, the rarer the save (a restart applies the rest, ~3 s
# per 100,000 rows).
FACTS_SNAPSHOT_EVERY = 20_000


def facts_fingerprint():
    modules = sorted({cls.__module__ for cls in Facts.__mro__ if cls is not object})
    digest = hashlib.sha256()
    for name in modules:
        digest.update(name.encode())
        digest.update(inspect.getsource(sys.modules[name]).encode())
    return "facts:" + digest.hexdigest()[:24]


def rankings_fingerprint():
    """What a persisted ranking depends on besides the facts: the scoring code."""
    return hashlib.sha256(inspect.getsource(scoring).encode()).hexdigest()[:24]


@contextmanager
def _collector_paused():
    """Python's cycle collector off while (un)pickling the facts: a million new objects set it off
    again and again, scanning every older one each time (3.1 s instead of 5.1 s to unpickle a
    million rows' facts, 7.8 s instead of 13.6 s to pickle them, on the loaded 2-core machine)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def save_facts_snapshot(session, rankings=None):
    """Persist the cached facts (after load_facts), with `rankings` ({(subject type, period,
    as_of, rulebook version): ranked cards} that are current for exactly these facts), so the
    first ranking after a restart is read, not computed; returns the number of source rows they
    hold, or None if not saved."""
    cache = _cache_for(session)
    facts = cache["facts"]
    if facts is None:
        return None
    # Under the loader's lock: the pickling lets other green threads run, and none may apply rows
    # to these facts meanwhile (the saved state must be exactly what max_seq and head say).
    with cache["loading"]:
        state = {name: value for name, value in vars(facts).items() if name not in _NOT_SAVED}
        pickled = _pickled({"first": cache["first"], "max_seq": cache["max_seq"], "head": cache["head"],
                            "rankings": dict(rankings or {}), "rankings_fingerprint": rankings_fingerprint()},
                           state)
    with session.connection().connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO snapshots (stream_type, stream_id, version, fingerprint, state) VALUES (%s, %s, 0, %s, %s) "
            "ON CONFLICT (stream_type, stream_id) DO UPDATE SET fingerprint = excluded.fingerprint, "
            "state = excluded.state, taken_at = now()",
            (*FACTS_SNAPSHOT, facts_fingerprint(), psycopg2.Binary(pickled)))
    cache["saved_seq"] = cache["max_seq"]
    return cache["max_seq"]


# The facts are pickled piece by piece (SLICE items of a large dict, set or list at a time) by one
# Pickler, so shared objects stay shared (its memo spans the pieces), and the service's event loop
# runs between pieces: pickled in one call, a million rows' facts held it for 20-50 s, long enough
# for the broker to drop the connection for a missed heartbeat and hand a rebuild's RPC to another
# worker (which then failed on the rebuild lock, and its error was the caller's answer).
SLICE = 50_000


def _pickled(header, state):
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    layout = []
    for name, value in state.items():
        kind = (("dict" if isinstance(value, dict) else "set" if isinstance(value, set) else "list")
                if type(value) in (dict, set, list) and len(value) > SLICE else "whole")
        layout.append((name, kind))
    with _collector_paused():
        pickler.dump({**header, "layout": layout})
        for name, kind in layout:
            value = state[name]
            if kind == "whole":
                pickler.dump(value)
                continue
            items = list(value.items()) if kind == "dict" else list(value)
            pickler.dump(-(-len(items) // SLICE))
            for start in range(0, len(items), SLICE):
                pickler.dump(items[start:start + SLICE])
                eventlet.sleep(0)
    return buffer.getvalue()


def _unpickled(data):
    """(header, facts state) from `_pickled`'s bytes (or the one dict the first form held)."""
    unpickler = pickle.Unpickler(io.BytesIO(data))
    with _collector_paused():
        header = unpickler.load()
        if "layout" not in header:
            return header, header["facts"]
        state = {}
        for name, kind in header["layout"]:
            if kind == "whole":
                state[name] = unpickler.load()
                continue
            items = []
            for _ in range(unpickler.load()):
                items.extend(unpickler.load())
                eventlet.sleep(0)
            state[name] = dict(items) if kind == "dict" else set(items) if kind == "set" else items
    return header, state


# Built again after a restore (the index, what load_facts built them from, the change log) or kept
# beside them (the restored rankings): not part of the persisted facts.
_NOT_SAVED = ("_index", "loaded_version", "changes", "restored_rankings")


def save_facts_snapshot_if_due(session, rankings=None):
    cache = _cache_for(session)
    due = max(FACTS_SNAPSHOT_EVERY, cache["max_seq"] // 10)
    if cache["facts"] is not None and cache["max_seq"] - cache.get("saved_seq", 0) >= due:
        return save_facts_snapshot(session, rankings)
    return None


def _restore_facts(session, first):
    """(facts, last seq, head) from the persisted facts, or None when there are none that fit.
    The rankings persisted with them are `facts.restored_rankings` (current as of change 0 of
    the new change log, before anything newer is applied), when the scoring code is unchanged."""
    with session.connection().connection.cursor() as cursor:
        cursor.execute("SELECT fingerprint, state FROM snapshots WHERE stream_type = %s AND stream_id = %s",
                       FACTS_SNAPSHOT)
        row = cursor.fetchone()
    if row is None or row[0] != facts_fingerprint():
        return None
    try:
        saved, state = _unpickled(bytes(row[1]))
    except Exception:  # noqa: BLE001 - only a cache: load every row instead
        log.warning("unreadable persisted assessment facts; loading every source row")
        return None
    if saved["first"] != first:  # the table was emptied and refilled since
        return None
    facts = Facts.__new__(Facts)
    vars(facts).update(state)
    fresh = saved.get("rankings_fingerprint") == rankings_fingerprint()
    facts.restored_rankings = saved.get("rankings", {}) if fresh else {}
    return facts, saved["max_seq"], saved["head"]


_FRESHNESS = (
    "SELECT {lock}, first.seq, first.event_id::text,"
    " (SELECT max(seq) FROM source_events), (SELECT max(global_position) FROM events),"
    " period.global_position, period.event_id::text"
    " FROM (SELECT 1) AS one"
    " LEFT JOIN LATERAL (SELECT seq, event_id FROM source_events ORDER BY seq LIMIT 1) AS first ON true"
    " LEFT JOIN LATERAL (SELECT global_position, event_id FROM events WHERE stream_type = 'period'"
    " ORDER BY global_position DESC LIMIT 1) AS period ON true")


@dataclass(frozen=True)
class Freshness:
    """What a score read must know before answering, asked in one round trip (the queries one by
    one were a third of the assessment's CPU under load): no rebuild holds the lock (the shared
    lock is then held until the transaction ends), the source rows' first row and last seq, the
    last own event, and the newest month closing or re-opening."""
    not_rebuilding: bool
    first: tuple | None
    newest_seq: int
    newest_own: int
    months_head: tuple | None


def freshness(session, rebuild_lock=False):
    """`rebuild_lock`: also take the shared rebuild lock (score reads), else only look."""
    with session.connection().connection.cursor() as cursor:
        if rebuild_lock:
            cursor.execute(_FRESHNESS.format(lock="pg_try_advisory_xact_lock_shared(hashtext(%s))"), (REBUILD_LOCK,))
        else:
            cursor.execute(_FRESHNESS.format(lock="true"))
        lock, first_seq, first_id, newest_seq, newest_own, period_position, period_id = cursor.fetchone()
    return Freshness(lock, None if first_seq is None else (first_seq, first_id), newest_seq or 0, newest_own or 0,
                     None if period_position is None else (period_position, period_id))


def load_facts(session, fresh=None):
    """Facts for everything applied so far, kept per database and brought up to date per call.

    Facts.apply is idempotent and order-free, so rows past the last seq seen (and own events
    past the last position) are applied on top of the cached facts. Rows commit in seq order
    (record_source_events), so none is skipped; a different first row means the table was
    emptied (a rebuild, or tests), and the facts are loaded again from scratch.
    """
    cache = _cache_for(session)
    with cache["loading"]:
        # Every score read comes here: one round trip says whether anything is new (reading past
        # the last seq with the cursor and the own events cost four more on every read).
        fresh = fresh or freshness(session)
        first, newest_seq, newest_own = fresh.first, fresh.newest_seq, fresh.newest_own
        facts, last_seq, last_head = cache["facts"], cache["max_seq"], cache["head"]
        if facts is None or cache["first"] != first:
            restored = _restore_facts(session, first) if first is not None else None
            facts, last_seq, last_head = restored or (Facts(), 0, 0)
            cache["saved_seq"] = last_seq
            cache["restored"] = restored is not None
            facts.changes = incremental.ChangeLog()  # what each event applied from now on may change
        # Applied in place: scoring is pure CPU, so under eventlet no reader is interrupted
        # halfway through a ranking, and apply() only ever adds events a reader may also see.
        newest = _apply_source_rows(facts, session, after_seq=last_seq)[1] if newest_seq > last_seq else 0
        own = EventStore(session).events_since(last_head, 10**9) if newest_own > last_head else []
        for event in own:
            facts.apply(event)
            facts.changes.record(None)  # ratings, vetoes, rulebooks: ranked whole again
        cache.update(facts=facts, first=first, max_seq=max(last_seq, newest),
                     head=own[-1].global_position if own else last_head)
        # What the facts were built from: a kept ranking is current while this is unchanged.
        facts.loaded_version = (id(facts), first, cache["max_seq"], cache["head"])
        facts.own_position = cache["head"]  # the last own event (rating, veto, rulebook) applied
        UNUSABLE_FACTS.labels("assessment").set(len(facts.unusable))
        return facts


# --- closing a month ------------------------------------------------------------------------------
def lock_source_events(session):
    """Until this transaction ends no source row is being written: the watermark and the facts
    read under it agree (writers hold the same lock from insert to commit)."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": SOURCE_EVENTS_LOCK})


def source_watermark(session):
    """{source: highest global position kept}: how far into each source a closing has seen."""
    return {source: int(position) for source, position in session.execute(
        select(source_events.c.source, func.max(source_events.c.global_position)).group_by(source_events.c.source))}


def month_streams(session, fresh=None):
    """Every month's stream of closings and re-openings: {month: MonthState}, folded from the
    assessment's own events and kept until a new one is appended."""
    cache = _cache_for(session).setdefault("months", {"head": None, "states": {}})
    # The newest event's id as well as its position: tests empty the tables, positions may repeat.
    head = (fresh or freshness(session)).months_head
    if head != cache["head"]:
        states = {}
        for event in EventStore(session).load_all("period"):
            states[event.stream_id] = periods.evolve_month(states.get(event.stream_id), event)
        cache.update(head=head, states=states)
    return cache["states"]


def late_corrections(session, closing, start, end):
    """Events dated into [start, end] that the closing's facts did not hold: source events past
    its watermark and own ratings and vetoes recorded after it. Oldest recorded first."""
    watermark = closing["watermark"]
    found = []
    rows = session.execute(
        select(source_events.c.event_id, source_events.c.source, source_events.c.global_position,
               source_events.c.event_type, source_events.c.dated, source_events.c.recorded_at)
        .where(source_events.c.dated >= start, source_events.c.dated <= end))
    for event_id, source, position, event_type, dated, recorded_at in rows:
        if position > watermark.get(source, 0):
            found.append({"event": event_type, "event_id": str(event_id), "dated": dated.isoformat(),
                          "recorded_at": recorded_at.isoformat() if recorded_at else None, "source": source,
                          "position": position})
    own = session.execute(
        select(own_events.c.event_id, own_events.c.global_position, own_events.c.event_type,
               own_events.c.occurred_on, own_events.c.recorded_at)
        .where(own_events.c.stream_type.in_(("rating", "veto")), own_events.c.occurred_on >= start,
               own_events.c.occurred_on <= end, own_events.c.global_position > watermark.get(periods.OWN, 0)))
    for event_id, position, event_type, dated, recorded_at in own:
        found.append({"event": event_type, "event_id": str(event_id), "dated": dated.isoformat(),
                      "recorded_at": recorded_at.isoformat() if recorded_at else None, "source": periods.OWN,
                      "position": position})
    found.sort(key=lambda item: (item["recorded_at"] or "", item["source"], item["position"]))
    return found
