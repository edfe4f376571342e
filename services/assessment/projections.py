"""The assessment's read model: the source events scores are made of, and the Facts built
from them (with the assessment's own ratings, vetoes and rulebooks) kept in memory until a new
event arrives."""
from eventlet.semaphore import Semaphore
from sqlalchemy import BigInteger, Column, MetaData, Table, Text, func, select, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.common.events import StoredEvent
from services.common.metrics import UNUSABLE_FACTS
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
SOURCE_EVENTS_LOCK = "fupin.assessment.source_events"


def project(session, event):
    """Own events (ratings, vetoes, rulebooks) are read from the event store itself."""


def record_source_events(session, source, events):
    """Keep the events scores are made of (one multi-row insert); the rest only pass the inbox."""
    rows = [{"event_id": event.event_id, "source": source, "global_position": event.global_position,
             "event_type": event.type, "payload": event.payload}
            for event in events if event.type in RELEVANT]
    if rows:
        # Held until commit, so rows become visible in seq order and load_facts, reading past
        # the last seq it saw, never skips a row that a slower transaction commits later.
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": SOURCE_EVENTS_LOCK})
        session.execute(pg_insert(source_events).values(rows).on_conflict_do_nothing())


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
        for seq, event_id, event_type, payload, position in cursor:
            facts.apply(StoredEvent(position, event_id, "", "", 0, event_type, 1, payload))
            count, max_seq = count + 1, seq
    return count, max_seq


def load_facts(session):
    """Facts for everything applied so far, kept per database and brought up to date per call.

    Facts.apply is idempotent and order-free, so rows past the last seq seen (and own events
    past the last position) are applied on top of the cached facts. Rows commit in seq order
    (record_source_events), so none is skipped; a different first row means the table was
    emptied (a rebuild, or tests), and the facts are loaded again from scratch.
    """
    cache = _cache_for(session)
    with cache["loading"]:
        first = session.execute(select(source_events.c.seq, source_events.c.event_id)
                                .order_by(source_events.c.seq).limit(1)).first()
        first = None if first is None else tuple(first)
        facts, last_seq, last_head = cache["facts"], cache["max_seq"], cache["head"]
        if facts is None or cache["first"] != first:
            facts, last_seq, last_head = Facts(), 0, 0
        # Applied in place: scoring is pure CPU, so under eventlet no reader is interrupted
        # halfway through a ranking, and apply() only ever adds events a reader may also see.
        _, newest = _apply_source_rows(facts, session, after_seq=last_seq)
        own = EventStore(session).events_since(last_head, 10**9)
        for event in own:
            facts.apply(event)
        cache.update(facts=facts, first=first, max_seq=max(last_seq, newest),
                     head=own[-1].global_position if own else last_head)
        # What the facts were built from: a kept ranking is current while this is unchanged.
        facts.loaded_version = (id(facts), first, cache["max_seq"], cache["head"])
        UNUSABLE_FACTS.labels("assessment").set(len(facts.unusable))
        return facts
