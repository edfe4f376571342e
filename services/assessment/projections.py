"""The assessment's read model: the source events scores are made of, and the Facts built
from them (with the assessment's own ratings, vetoes and rulebooks) kept in memory until a new
event arrives."""
import threading

from sqlalchemy import BigInteger, Column, MetaData, Table, Text, func, select, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.common.events import StoredEvent
from services.common.store import EventStore

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


def record_source_event(session, source, event):
    if event.type not in RELEVANT:
        return
    session.execute(pg_insert(source_events).values(
        event_id=event.event_id, source=source, global_position=event.global_position,
        event_type=event.type, payload=event.payload,
    ).on_conflict_do_nothing())


def forget_source_events(session):
    session.execute(text("TRUNCATE source_events, inbox, consumer_checkpoints RESTART IDENTITY"))


_cache = {"key": None, "facts": None}
_cache_lock = threading.Lock()


def load_facts(session):
    """Facts for everything applied so far; rebuilt only when a new event has arrived."""
    key = (
        session.execute(select(func.count(), func.coalesce(func.max(source_events.c.seq), 0))).one(),
        EventStore(session).head_position(),
    )
    with _cache_lock:
        if _cache["key"] == key:
            return _cache["facts"]
    facts = Facts()
    rows = session.execute(select(source_events.c.event_id, source_events.c.event_type, source_events.c.payload,
                                  source_events.c.global_position).order_by(source_events.c.seq))
    for row in rows:
        facts.apply(StoredEvent(row.global_position, str(row.event_id), "", "", 0, row.event_type, 1, row.payload))
    for event in EventStore(session).events_since(0, 10**9):
        facts.apply(event)
    with _cache_lock:
        _cache.update(key=key, facts=facts)
    return facts

