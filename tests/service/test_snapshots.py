"""Snapshots of long streams on real PostgreSQL: a cache of the fold, never a second truth.

A command folds only the events after its stream's snapshot and writes a new snapshot every
SNAPSHOT_EVERY events, in its own transaction; a snapshot the code no longer matches (its
fingerprint) or cannot read is ignored, and the state is always the fold of every event.
"""
import pickle
import threading

import pytest
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

from services.common import commands
from services.common import store as store_module
from services.common.errors import RuleRefused
from services.common.events import NewEvent
from services.common.store import SNAPSHOT_EVERY, EventStore, snapshot_fingerprint, snapshots
from services.registry import domain as registry_domain
from services.registry.service import RegistryService
from tests import support
from tests.service.sample_services import evolve, read_models
from tests.service.test_registry_service import HEAD_ID


@pytest.fixture(scope="module")
def snapshot_db(infra):
    return support.fresh_database_from_metadata("snapshots", store_module.metadata, read_models)


@pytest.fixture
def engine(snapshot_db):
    support.truncate_all(snapshot_db)
    engine = create_engine(snapshot_db, pool_size=10)
    yield engine
    engine.dispose()


def increment(engine, stream_id, by=1, result=None):
    """One command through commands.run_command, as every service's `handle` runs it."""
    def decide(total):
        if by <= 0:
            raise RuleRefused("increments must be positive", {"rule": "positive_increment"})
        return [NewEvent("incremented", {"by": by})]

    return commands.run_command(
        lambda: Session(engine), "ledger", "increment", stream_type="counter", stream_id=stream_id,
        evolve=evolve, decide=decide, project=lambda session, event: None, initial=0,
        result=result or (lambda total, stored: {"total": total, "version": stored[-1].version}))


def append_directly(engine, stream_id, count, by=1):
    with Session(engine) as session:
        EventStore(session).append("counter", stream_id, 0, [NewEvent("incremented", {"by": by})] * count)
        session.commit()


def load(engine, stream_id):
    with Session(engine) as session:
        return EventStore(session).load_state("counter", stream_id, evolve, 0)


def snapshot_row(engine, stream_id):
    with Session(engine) as session:
        return session.execute(select(snapshots).where(snapshots.c.stream_id == stream_id)).first()


def full_fold(engine, stream_id):
    with Session(engine) as session:
        return commands.fold(evolve, 0, EventStore(session).load("counter", stream_id))


def test_a_command_on_a_long_stream_snapshots_it_and_the_next_folds_only_what_came_after(engine):
    append_directly(engine, "long", 3 * SNAPSHOT_EVERY)
    before = load(engine, "long")
    assert (before.state, before.version, before.snapshot_version) == (3 * SNAPSHOT_EVERY, 3 * SNAPSHOT_EVERY, 0)

    assert increment(engine, "long", 2) == {"total": 3 * SNAPSHOT_EVERY + 2, "version": 3 * SNAPSHOT_EVERY + 1}
    row = snapshot_row(engine, "long")
    assert row.version == 3 * SNAPSHOT_EVERY + 1 and pickle.loads(row.state) == 3 * SNAPSHOT_EVERY + 2
    assert row.fingerprint == snapshot_fingerprint(evolve)

    assert increment(engine, "long", 5)["total"] == 3 * SNAPSHOT_EVERY + 7
    after = load(engine, "long")
    assert (after.snapshot_version, after.folded) == (3 * SNAPSHOT_EVERY + 1, 1)
    assert after.state == full_fold(engine, "long") == 3 * SNAPSHOT_EVERY + 7


def test_a_short_stream_gets_no_snapshot_until_it_has_grown_enough(engine):
    for _ in range(SNAPSHOT_EVERY - 1):
        increment(engine, "short")
    assert snapshot_row(engine, "short") is None
    increment(engine, "short")
    assert snapshot_row(engine, "short").version == SNAPSHOT_EVERY
    for _ in range(SNAPSHOT_EVERY - 1):
        increment(engine, "short")
    assert snapshot_row(engine, "short").version == SNAPSHOT_EVERY  # the next is due at 2 × SNAPSHOT_EVERY
    assert load(engine, "short").state == full_fold(engine, "short") == 2 * SNAPSHOT_EVERY - 1


def test_a_snapshot_of_other_code_or_unreadable_is_ignored_and_the_whole_stream_folded(engine):
    append_directly(engine, "stale", SNAPSHOT_EVERY)
    increment(engine, "stale")
    with Session(engine) as session:
        session.execute(update(snapshots).where(snapshots.c.stream_id == "stale")
                        .values(fingerprint="evolve:older-code", state=pickle.dumps(10_000)))
        session.commit()
    loaded = load(engine, "stale")
    assert (loaded.state, loaded.snapshot_version) == (SNAPSHOT_EVERY + 1, 0)

    with Session(engine) as session:
        session.execute(update(snapshots).where(snapshots.c.stream_id == "stale")
                        .values(fingerprint=snapshot_fingerprint(evolve), state=b"not a pickle"))
        session.commit()
    loaded = load(engine, "stale")
    assert (loaded.state, loaded.snapshot_version) == (SNAPSHOT_EVERY + 1, 0)
    assert increment(engine, "stale")["total"] == SNAPSHOT_EVERY + 2  # and a command rewrites it
    assert pickle.loads(snapshot_row(engine, "stale").state) == SNAPSHOT_EVERY + 2


def test_the_fingerprint_changes_with_the_evolve_code_and_with_the_upcasters():
    assert snapshot_fingerprint(evolve) != snapshot_fingerprint(registry_domain.evolve_in_place)
    first = lambda state, event: event.payload  # noqa: E731 - two folds of one function, as services write them
    second = lambda state, event: (state or 0) + 1  # noqa: E731
    assert snapshot_fingerprint(first) != snapshot_fingerprint(second)
    before = snapshot_fingerprint(evolve)
    store_module.UPCASTERS[("incremented", 1)] = lambda payload: {**payload, "by": payload["by"]}
    try:
        assert snapshot_fingerprint(evolve) != before
    finally:
        del store_module.UPCASTERS[("incremented", 1)]
    assert snapshot_fingerprint(evolve) == before


def test_a_command_that_fails_after_its_snapshot_leaves_neither_events_nor_snapshot(engine):
    append_directly(engine, "undone", SNAPSHOT_EVERY)

    def fails(total, stored):
        raise RuntimeError("the answer could not be built")

    with pytest.raises(RuntimeError):
        increment(engine, "undone", result=fails)
    assert snapshot_row(engine, "undone") is None
    assert load(engine, "undone").version == SNAPSHOT_EVERY


def test_concurrent_commands_across_snapshots_lose_nothing(engine):
    threads, each = 4, SNAPSHOT_EVERY
    errors = []

    def writer():
        try:
            for _ in range(each):
                increment(engine, "busy")
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=writer) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []
    loaded = load(engine, "busy")
    assert loaded.state == loaded.version == full_fold(engine, "busy") == threads * each
    assert loaded.snapshot_version > 0 and loaded.folded < SNAPSHOT_EVERY


class DirectRegistry(RegistryService):
    """RegistryService's own command methods, called in-process on its migrated database."""

    def __init__(self, engine):
        from services.common.db import _WorkerDb

        self.db = _WorkerDb(engine)
        self.config = {"RULES": {}}
        self.nudge = lambda: None


def test_a_registry_household_from_its_snapshot_is_the_household_folded_from_every_event(infra):
    url = support.fresh_database("registry", name="registry_snapshots")
    engine = create_engine(url)
    try:
        registry = DirectRegistry(engine)
        registry.register_township({"township_id": "T1", "name": "龙泉乡"})
        registry.register_village({"village_id": "V1", "township_id": "T1", "name": "长岭村", "poor_village": True})
        household_id = registry.register_household({
            "household_no": "342401001", "village_id": "V1", "head_name": "王伟", "poverty_causes": ["illness"],
            "registered_on": "2020-01-05"})["household_id"]
        registry.add_member({"household_id": household_id, "name": "王伟", "id_number": HEAD_ID, "relation": "head",
                             "birth_date": "1980-02-03", "sex": "male", "labor_capacity": "full",
                             "health": "healthy", "phone": "13812345678"})
        for n in range(2 * SNAPSHOT_EVERY):
            answer = registry.assess_income({"household_id": household_id, "year": 2020 + n % 4,
                                             "per_capita_income": f"{4000 + n}.00",
                                             "assessed_on": f"{2020 + n % 4}-06-{1 + n % 28:02d}"})
        with Session(engine) as session:
            store = EventStore(session)
            loaded = store.load_state("household", household_id, registry_domain.evolve_in_place)
            folded = commands.fold(registry_domain.evolve_in_place, None, store.load("household", household_id))
        assert loaded.snapshot_version > 0
        assert registry_domain.household_view(loaded.state) == registry_domain.household_view(folded)
        assert loaded.state.incomes == folded.incomes and len(folded.incomes) == 2 * SNAPSHOT_EVERY
        assert answer["version"] == folded.version == 2 * SNAPSHOT_EVERY + 2
        assert registry.get_household(household_id)["latest_income"] == \
            registry_domain.household_view(folded)["latest_income"]
        # The household's snapshot holds its members' numbers: it is sealed with the household's key.
        stored = snapshot_row(engine, household_id).state
        assert HEAD_ID.encode() not in stored and b"13812345678" not in stored
        assert b"13812345678" in pickle.dumps(folded)  # what an unsealed snapshot would have held
        assert [m["id_number"] for m in loaded.state.living_members()] == [HEAD_ID]

        registry.erase_personal_data({"household_id": household_id, "reason": "PIPL request"},
                                     {"actor": {"id": "admin", "role": "county_admin"}})
        with Session(engine) as session:
            after = EventStore(session).load_state("household", household_id, registry_domain.evolve_in_place)
        assert after.snapshot_version == 0  # the old snapshot no longer opens: erasure reaches it too
        assert [m["id_number"] for m in after.state.living_members()] == [None]
    finally:
        engine.dispose()


def test_a_state_that_cannot_be_pickled_gets_no_snapshot_and_the_command_still_succeeds(engine):
    def evolve_unpicklable(state, event):
        return {"total": ((state or {}).get("total", 0)) + event.payload["by"], "hook": lambda: None}

    with Session(engine) as session:
        EventStore(session).append("counter", "odd", 0, [NewEvent("incremented", {"by": 1})] * SNAPSHOT_EVERY)
        session.commit()
    answer = commands.run_command(
        lambda: Session(engine), "ledger", "increment", stream_type="counter", stream_id="odd",
        evolve=evolve_unpicklable, decide=lambda state: [NewEvent("incremented", {"by": 1})],
        project=lambda session, event: None, result=lambda state, stored: {"total": state["total"]})
    assert answer == {"total": SNAPSHOT_EVERY + 1}
    assert snapshot_row(engine, "odd") is None
