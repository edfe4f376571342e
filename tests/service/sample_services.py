"""A tiny producer and consumer built only on services/common, to test the chassis itself."""
from nameko.events import event_handler
from services.common.rpc import rpc
from nameko.timer import timer
from sqlalchemy import BigInteger, Column, Integer, MetaData, Table, Text, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.common.chassis import EventSourcedService
from services.common.consumer import EventConsumer
from services.common.errors import RuleRefused
from services.common.events import NewEvent

read_models = MetaData()
counters = Table(
    "counters", read_models,
    Column("counter_id", Text, primary_key=True),
    Column("total", BigInteger, nullable=False),
    Column("increments", Integer, nullable=False),
)
tallies = Table(
    "tallies", read_models,
    Column("counter_id", Text, primary_key=True),
    Column("total", BigInteger, nullable=False),
)


class CounterProjections:
    READ_MODEL_TABLES = ("counters",)

    @staticmethod
    def project(session, event):
        if event.type == "incremented":
            session.execute(
                pg_insert(counters)
                .values(counter_id=event.stream_id, total=event.payload["by"], increments=1)
                .on_conflict_do_update(
                    index_elements=["counter_id"],
                    set_={"total": counters.c.total + event.payload["by"],
                          "increments": counters.c.increments + 1},
                )
            )


def evolve(state, event):
    return (state or 0) + event.payload["by"]


class Ledger(EventSourcedService):
    name = "ledger"
    projections = CounterProjections

    @rpc
    def increment(self, counter_id, by, context=None, expected_version=None):
        def decide(total):
            if by <= 0:
                raise RuleRefused("increments must be positive", {"rule": "positive_increment"})
            return [NewEvent("incremented", {"by": by})]

        return self.handle(
            "increment", stream_type="counter", stream_id=counter_id, evolve=evolve,
            decide=decide, initial=0, expected_version=expected_version, context=context,
            result=lambda total, stored: {"counter_id": counter_id, "total": total},
        )

    @rpc
    def total(self, counter_id):
        with self.db.new_session() as session:
            row = session.execute(select(counters).where(counters.c.counter_id == counter_id)).first()
            return None if row is None else {"total": row.total, "increments": row.increments}


class Tally(EventSourcedService, EventConsumer):
    """Consumes ledger events into `tallies`."""

    name = "tally"
    projections = type("NoProjections", (), {"READ_MODEL_TABLES": (), "project": staticmethod(lambda s, e: None)})
    sources = ("ledger",)

    def apply_event(self, session, source, event):
        if event.type == "incremented":
            session.execute(
                pg_insert(tallies).values(counter_id=event.stream_id, total=event.payload["by"])
                .on_conflict_do_update(index_elements=["counter_id"],
                                       set_={"total": tallies.c.total + event.payload["by"]})
            )

    @event_handler("ledger", "#")
    def on_ledger(self, envelope):
        self.receive("ledger", envelope)

    @timer(interval=1, eager=True)
    def catch_up(self):
        self.catch_up_all()

    @rpc
    def tally(self, counter_id):
        with self.db.new_session() as session:
            return session.execute(
                select(tallies.c.total).where(tallies.c.counter_id == counter_id)
            ).scalar()
