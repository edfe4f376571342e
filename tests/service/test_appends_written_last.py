"""A command's events are written last, just before its commit (commands.Streams), on real
PostgreSQL: the append lock that serialises every command of a service is not held while the
command projects, and whatever the command reads in between still sees its own events."""
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from services.common import commands
from services.common.events import NewEvent
from services.common.store import APPEND_LOCK, WRITTEN_AT_ONCE, EventStore, metadata
from tests import support


def count(state, event):
    return (state or 0) + 1


@pytest.fixture
def engine(infra):
    engine = create_engine(support.fresh_database_from_metadata("appends_written_last", metadata))
    yield engine
    engine.dispose()


def holds_append_lock(session):
    return session.execute(text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        " AND objid = hashtext(:k)::oid"), {"k": APPEND_LOCK}).scalar() > 0


def test_events_are_projected_before_they_are_written_and_written_in_append_order(engine):
    seen = []

    def project(session, event):
        seen.append((event.stream_id, event.global_position,
                     session.execute(text("SELECT count(*) FROM events")).scalar(), holds_append_lock(session)))

    def work(streams):
        for stream_id in ("b", "a"):
            streams.load("tally", stream_id, count, lock=True)
        streams.append("tally", "b", [NewEvent("counted", {"n": 1})])
        streams.append("tally", "a", [NewEvent("counted", {"n": 2}), NewEvent("counted", {"n": 3})])
        return {}

    commands.run_streams(lambda: Session(engine), "test", "count", work, project=project)
    # projected with no row written and without the append lock; positions come with the write
    assert seen == [("b", 0, 0, False), ("a", 0, 0, False), ("a", 0, 0, False)]
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT stream_id, version, payload->>'n' FROM events ORDER BY global_position"))
        assert [tuple(row) for row in rows] == [("b", 1, "1"), ("a", 1, "2"), ("a", 2, "3")]


def test_a_stream_read_after_an_append_in_the_same_command_sees_the_appended_event(engine):
    def work(streams):
        streams.load("tally", "a", count, lock=True)
        streams.append("tally", "a", [NewEvent("counted", {})])
        return {"read": streams.read("tally", "a", count), "locked": holds_append_lock(streams.session)}

    answer = commands.run_streams(lambda: Session(engine), "test", "count", work, project=lambda *_: None)
    assert answer == {"read": 1, "locked": True}  # written (so locked) to be read


def test_a_stream_type_whose_fold_keeps_positions_is_written_at_once(engine):
    WRITTEN_AT_ONCE.add("positioned")
    try:
        def work(streams):
            streams.load("positioned", "p", lambda state, event: event.global_position, lock=True)
            streams.append("positioned", "p", [NewEvent("placed", {})])
            return {"position": streams.state("positioned", "p")}

        answer = commands.run_streams(lambda: Session(engine), "test", "place", work, project=lambda *_: None)
        assert answer["position"] > 0
    finally:
        WRITTEN_AT_ONCE.discard("positioned")


def test_a_stream_not_locked_by_the_command_is_written_at_once_and_a_conflict_runs_it_again(engine):
    """Only a locked stream can be written last: another writer may take an unlocked one's next
    version meanwhile, and that conflict must show at the append (and re-run the command), not be
    hidden behind a read model's own constraint."""
    with Session(engine) as session:
        session.execute(text("CREATE TABLE projected (n int)"))
        session.commit()
    runs, written_before_projecting = [], []

    def work(streams):
        runs.append(1)
        version = streams.load("tally", "a", count) or 0  # not locked
        if len(runs) == 1:  # another writer takes version 1 of "a" meanwhile
            with Session(engine) as other:
                EventStore(other).append("tally", "a", 0, [NewEvent("counted", {})])
                other.commit()
        streams.append("tally", "a", [NewEvent("counted", {"after": version})])
        return {"after": version}

    def project(session, event):
        written_before_projecting.append(event.global_position > 0)
        session.execute(text("INSERT INTO projected VALUES (:n)"), {"n": event.version})

    answer = commands.run_streams(lambda: Session(engine), "test", "count", work, project=project)
    assert len(runs) == 2 and answer == {"after": 1} and written_before_projecting == [True]
    with engine.connect() as connection:
        assert [row[0] for row in connection.execute(text("SELECT n FROM projected"))] == [2]


def test_a_stream_locked_with_lock_is_written_last_too(engine):
    def work(streams):
        streams.lock(("tally", "n"))
        streams.load("tally", "n", count)
        streams.append("tally", "n", [NewEvent("counted", {})])
        return {"locked": holds_append_lock(streams.session)}

    assert commands.run_streams(lambda: Session(engine), "test", "count", work,
                                project=lambda *_: None) == {"locked": False}
