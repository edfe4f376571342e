"""What one command costs in statements, on real PostgreSQL (issue 17: a command's time was its
round trips), and that the shortcuts keep every guarantee.

A household command is: the stream's lock, snapshot, events and the rulebook's heads in one call
(`fupin_load_stream`); the households row; the append lock and the insert in one
(`fupin_append_events`), written last so the append lock, which every command of the service
waits for, is held only for it and the commit; the commit. Its rules come from a cache checked against the rulebook's last event
in that first call, so a change made anywhere (another replica) is used by the next command.
"""
import threading
import time
from unittest import mock

import psycopg2.extensions
import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from services.common import rulebook
from services.common.db import create_db_engine
from services.common.errors import RuleRefused
from services.common.events import NewEvent
from services.common.store import SNAPSHOT_EVERY, EventStore
from services.registry.service import RegistryService
from tests import support
from tests.service.test_registry_service import HEAD_ID

LEADING = {"actor": {"id": "admin", "role": "county_admin"}}


class DirectRegistry(RegistryService):
    """RegistryService's own command methods, called in-process on its migrated database."""

    def __init__(self, engine):
        from services.common.db import _WorkerDb

        self.db = _WorkerDb(engine)
        self.config = {"RULES": {}}
        self.nudge = lambda: None


class Recorded(psycopg2.extensions.cursor):
    statements: list = []

    def execute(self, query, vars=None):
        Recorded.statements.append(query if isinstance(query, str) else query.decode())
        return super().execute(query, vars)


@pytest.fixture
def engine(infra):
    url = support.fresh_database("registry", name="registry_round_trips")
    engine = create_db_engine(url)

    @event.listens_for(engine, "connect")
    def recording(dbapi_connection, record):
        dbapi_connection.cursor_factory = Recorded

    yield engine
    engine.dispose()


@pytest.fixture
def registry(engine):
    registry = DirectRegistry(engine)
    registry.register_township({"township_id": "T1", "name": "龙泉乡"})
    registry.register_village({"village_id": "V1", "township_id": "T1", "name": "长岭村", "poor_village": True})
    return registry


def new_household(registry, number="342401001"):
    return registry.register_household({"household_no": number, "village_id": "V1", "head_name": "王伟",
                                        "poverty_causes": ["illness"], "registered_on": "2023-01-05"})["household_id"]


def assess(registry, household_id, amount="5230.00", on="2023-06-30"):
    return registry.assess_income({"household_id": household_id, "year": int(on[:4]), "per_capita_income": amount,
                                   "assessed_on": on})


def test_an_income_assessment_is_one_call_to_load_one_row_and_one_to_append_last(registry):
    household_id = new_household(registry)
    assess(registry, household_id)  # the rulebook sections are read once, then kept
    Recorded.statements.clear()
    assess(registry, household_id, "5300.00")
    assert [statement.split("(")[0].strip() for statement in Recorded.statements] == [
        "SELECT * FROM fupin_load_stream", "INSERT INTO households", "SELECT * FROM fupin_append_events"]


def test_the_append_lock_is_taken_by_the_last_statement_after_the_remembered_result(registry):
    """The append lock serialises every command of the service until its commit: nothing but the
    append itself may run under it (the idempotency key's result is remembered before it)."""
    household_id = new_household(registry)
    assess(registry, household_id)
    Recorded.statements.clear()
    registry.assess_income({"household_id": household_id, "year": 2023, "per_capita_income": "5400.00",
                            "assessed_on": "2023-06-30"}, {"idempotency_key": "k-append-last"})
    names = [statement.split("(")[0].strip() for statement in Recorded.statements]
    assert names[-1] == "SELECT * FROM fupin_append_events"
    assert Recorded.statements[-2].startswith("INSERT INTO idempotency_keys")


def test_a_household_with_personal_data_and_a_snapshot_gets_its_key_with_its_events(registry):
    household_id = new_household(registry)
    registry.add_member({"household_id": household_id, "name": "王伟", "id_number": HEAD_ID, "relation": "head",
                         "birth_date": "1980-02-03", "sex": "male", "labor_capacity": "full", "health": "healthy",
                         "phone": "13812345678"})
    for n in range(SNAPSHOT_EVERY + 1):  # long enough to be snapshotted: its snapshot is sealed with the key
        assess(registry, household_id, f"{5000 + n}.00")
    Recorded.statements.clear()
    answer = assess(registry, household_id, "5300.00")
    assert [statement.split("(")[0].strip() for statement in Recorded.statements] == [
        "SELECT * FROM fupin_load_stream", "INSERT INTO households", "SELECT * FROM fupin_append_events"]
    assert answer["members"][0]["id_number"] == HEAD_ID[:4] + "*" * 10 + HEAD_ID[-4:]  # opened with that key, masked

    registry.erase_personal_data({"household_id": household_id, "reason": "PIPL request"}, LEADING)
    after = assess(registry, household_id, "5400.00")
    assert after["members"][0]["id_number"] is None and after["members"][0]["phone"] is None


def test_a_rule_changed_elsewhere_is_used_by_the_next_command(registry, engine):
    household_id = new_household(registry)
    assert assess(registry, household_id, "4300.00")["poverty_line"] == "4000.00"
    # Another replica of the registry changes the poverty line: its event is all this one sees.
    with Session(engine) as session:
        EventStore(session).append(rulebook.STREAM_TYPE, "registry", 0, [NewEvent(rulebook.CHANGED, {
            "section": "registry", "version": 1, "effective_from": "2023-01-01", "changes": {"poverty_line": "4500"},
            "reason": "县政府文件"})])
        session.commit()
    answer = assess(registry, household_id, "4300.00")
    assert answer["poverty_line"] == "4500.00"
    # ... and a change through this one is seen as well
    registry.change_rules({"effective_from": "2023-01-01", "changes": {"poverty_line": "4200"}, "reason": "再调整"},
                          LEADING)
    assert assess(registry, household_id, "4300.00")["poverty_line"] == "4200.00"


def test_a_command_waiting_for_the_stream_lock_folds_what_the_holder_wrote(registry, engine):
    """The lock is taken inside fupin_load_stream before its reads: a command that waited for it
    sees the holder's events (no conflict, no retry), as with a separate lock statement."""
    household_id = new_household(registry)
    held, done = threading.Event(), threading.Event()

    def holder():
        with Session(engine) as session:
            session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"household:{household_id}"})
            held.set()
            time.sleep(0.3)
            EventStore(session).append("household", household_id, 1, [NewEvent("income_assessed", {
                "household_id": household_id, "year": 2022, "per_capita_income": "3900.00",
                "assessed_on": "2022-06-30"}, "2022-06-30")])
            session.commit()
        done.set()

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    with mock.patch("services.common.commands.RETRIES_ON_CONFLICT", 0):  # a stale read would now be a 409
        answer = assess(registry, household_id)
    thread.join()
    assert done.is_set() and answer["events"] == ["income_assessed"]
    assert [item["payload"]["year"] for item in registry.household_history(household_id)[1:]] == [2022, 2023]


def test_a_refused_command_writes_nothing(registry):
    household_id = new_household(registry)
    with pytest.raises(RuleRefused):
        registry.clear_monitoring({"household_id": household_id, "cleared_on": "2023-06-30"})
    assert len(registry.household_history(household_id)) == 1


def test_a_pooled_connection_is_pinged_only_after_it_was_idle(infra):
    url = support.fresh_database_from_metadata("ping_when_idle")
    engine = create_db_engine(url, pool_size=1, ping_after_idle=0.2)
    try:
        with mock.patch.object(engine.dialect, "do_ping", wraps=engine.dialect.do_ping) as ping:
            with engine.connect() as connection:
                first = connection.execute(text("SELECT pg_backend_pid()")).scalar()
            with engine.connect() as connection:  # returned a moment ago: handed out as it is
                assert connection.execute(text("SELECT pg_backend_pid()")).scalar() == first
            assert ping.call_count == 0
            admin = create_db_engine(url, pool_size=1)  # the server ends the pooled connection meanwhile
            with admin.connect() as connection:
                connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
            admin.dispose()
            time.sleep(0.3)
            with engine.connect() as connection:  # idle long enough: pinged, found gone, replaced
                assert connection.execute(text("SELECT pg_backend_pid()")).scalar() != first
            assert ping.call_count >= 1
    finally:
        engine.dispose()
