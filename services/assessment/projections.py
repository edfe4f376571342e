"""The assessment's read model: the source events scores are made of, and the Facts built
from them (with the assessment's own ratings, vetoes and rulebooks) kept in memory until a new
event arrives."""
import threading

from sqlalchemy import BigInteger, Column, MetaData, Table, Text, func, select, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.common.events import StoredEvent
from services.common.store import EventStore, inbox

from .domain import Facts

metadata = MetaData()
source_events = Table(
    "source_events", metadata,
    Column("seq", BigInteger, primary_key=True),
    Column("event_id", UUID(as_uuid=False), nullable=False, unique=True),
    Column("source", Text, nullable=False),
    Column("global_position", BigInteger, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
)

# Own events need no table of their own: Facts reads them from the event store directly.
READ_MODEL_TABLES = ()
RELEVANT = {name[4:] for name in dir(Facts) if name.startswith("_on_")}


def project(session, event):
    """Own events (ratings, vetoes, rulebooks) are read from the event store itself."""


def record_source_events(session, source, events):
    """Keep the events scores are made of (one multi-row insert); the rest only pass the inbox."""
    rows = [{"event_id": event.event_id, "source": source, "global_position": event.global_position,
             "event_type": event.type, "payload": event.payload}
            for event in events if event.type in RELEVANT]
    if rows:
        session.execute(pg_insert(source_events).values(rows).on_conflict_do_nothing())


def replayed_counts(session):
    """{source: events in the inbox}: what a rebuild has replayed, whichever worker applied it."""
    return dict(session.execute(select(inbox.c.source, func.count()).group_by(inbox.c.source)).all())


def forget_source_events(session):
    # In the order catch-up (checkpoint, inbox, source_events) and delivery (inbox, source_events)
    # take their locks, so a rebuild running beside them waits instead of deadlocking.
    session.execute(text("TRUNCATE consumer_checkpoints, inbox, source_events RESTART IDENTITY"))


_caches = {}  # database URL -> cached facts (several assessment containers may share a process in tests)
_cache_lock = threading.Lock()


def _cache_for(session):
    key = str(session.get_bind().url)
    with _cache_lock:
        return _caches.setdefault(key, {"facts": None, "rows": 0, "max_seq": 0, "head": 0})


def _apply_source_rows(facts, rows):
    count, max_seq = 0, 0
    for row in rows:
        facts.apply(StoredEvent(row.global_position, str(row.event_id), "", "", 0, row.event_type, 1, row.payload))
        count, max_seq = count + 1, row.seq
    return count, max_seq


def load_facts(session):
    """Facts for everything applied so far. Facts.apply is idempotent and order-free, so new
    events are applied on top of the cached facts; the row count guards against a source row
    with a lower seq committing after a higher one (then, or after a rebuild, reload fully)."""
    count, max_seq = session.execute(
        select(func.count(), func.coalesce(func.max(source_events.c.seq), 0))).one()
    head = EventStore(session).head_position()
    cache = _cache_for(session)
    with _cache_lock:
        cached = dict(cache)
    if cached["facts"] is not None and (cached["rows"], cached["max_seq"], cached["head"]) == (count, max_seq, head):
        return cached["facts"]
    columns = (source_events.c.seq, source_events.c.event_id, source_events.c.event_type,
               source_events.c.payload, source_events.c.global_position)
    facts, rows, last_seq, last_head = cached["facts"], cached["rows"], cached["max_seq"], cached["head"]
    if facts is not None and count >= rows and head >= last_head:
        # Applied in place: scoring is pure CPU, so under eventlet no reader is interrupted
        # halfway through a ranking, and apply() only ever adds events a reader may also see.
        added, newest = _apply_source_rows(facts, session.execute(
            select(*columns).where(source_events.c.seq > last_seq).order_by(source_events.c.seq)))
        if rows + added != count:
            facts = None
        else:
            rows, last_seq = count, max(last_seq, newest)
    else:
        facts = None
    if facts is None:
        facts = Facts()
        rows, last_seq = _apply_source_rows(facts, session.execute(select(*columns).order_by(source_events.c.seq)))
        last_head = 0
    for event in EventStore(session).events_since(last_head, 10**9):
        facts.apply(event)
    with _cache_lock:
        cache.update(facts=facts, rows=rows, max_seq=last_seq, head=head)
    return facts
