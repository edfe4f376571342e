"""The assessment's persisted facts on real PostgreSQL: a restart starts from them, never from
something other than the events.

The facts are a cache: restored only when the code that builds them is unchanged (fingerprint)
and the source rows they were built from are still there (first row); rows and own events
recorded after them are applied on top; the rankings equal a load from every row.
"""
import uuid
from datetime import date

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from services.assessment import projections, scoring
from services.common.events import StoredEvent
from tests import support

PERIOD, AS_OF = scoring.parse_period("2023-Q2"), date(2023, 6, 30)


@pytest.fixture
def engine(infra):
    url = support.fresh_database("assessment", "assessment_cold_start")
    engine = create_engine(url)
    projections._caches.clear()
    yield engine
    projections._caches.clear()
    engine.dispose()


def event(event_type, payload, position=1):
    return StoredEvent(position, str(uuid.uuid4()), "s", "s", 1, event_type, 1, payload)


def county(cadres):
    yield event("unit_registered", {"unit_id": "U1", "name": "县教育局", "kind": "department"})
    for n in range(cadres):
        yield event("cadre_registered", {"cadre_id": f"C{n}", "unit_id": "U1", "name": f"干部{n}"})
        yield event("exam_scored", {"cadre_id": f"C{n}", "unit_id": "U1", "exam_id": f"E{n}", "score": 50 + n,
                                    "maximum": 100, "taken_on": "2023-05-15"})
        for day in range(1, 4):  # n of the cadre's three spot checks fail
            yield check(f"C{n}", passed=day > n, day=day)


def check(cadre, passed, day=1):
    return event("awareness_checked", {"cadre_id": cadre, "unit_id": "U1", "household_id": "H1",
                                       "checked_on": f"2023-05-{day:02d}", "passed": passed})


def record(engine, events):
    with Session(engine) as session:
        projections.record_source_events(session, "assistance", list(events))
        session.commit()


def load(engine):
    with Session(engine) as session:
        facts = projections.load_facts(session)
        ranking = scoring.rank_all("cadre", facts, PERIOD, AS_OF)
    return facts, [(card["subject_id"], card["score"], card["rank"]) for card in ranking]


def restart():
    projections._caches.clear()


def save(engine):
    with Session(engine) as session:
        projections.load_facts(session)
        saved = projections.save_facts_snapshot(session)
        session.commit()
    return saved


def test_a_restart_starts_from_the_persisted_facts_and_applies_what_came_after(engine):
    record(engine, county(6))
    _, before = load(engine)
    assert save(engine) is not None
    record(engine, [event("exam_scored", {"cadre_id": "C0", "unit_id": "U1", "exam_id": "E-late", "score": 100,
                                          "maximum": 100, "taken_on": "2023-06-01"})]
           + [check("C5", passed=True, day=day) for day in range(4, 20)])
    restart()
    facts, after = load(engine)
    assert projections._caches[str(engine.url)]["restored"] is True
    assert len(facts.exams["C0"]) == 2  # the row recorded after the save was applied on top
    restart()
    with Session(engine) as session:  # the same answer as from every row, without the persisted facts
        session.execute(text("DELETE FROM snapshots"))
        session.commit()
    facts_again, from_rows = load(engine)
    assert projections._caches[str(engine.url)]["restored"] is False
    assert after == from_rows and after != before  # C5 climbs with the checks recorded after the save
    assert before[-1][0] == "C5" and after[0][0] != "C5" and all(score is not None for _, score, _ in after)
    assert facts.exams == facts_again.exams and facts.cadres == facts_again.cadres


def test_persisted_facts_of_other_code_or_other_rows_are_not_used(engine):
    record(engine, county(3))
    save(engine)
    with Session(engine) as session:
        session.execute(text("UPDATE snapshots SET fingerprint = 'facts:older-code'"))
        session.commit()
    restart()
    load(engine)
    assert projections._caches[str(engine.url)]["restored"] is False

    save(engine)
    support.truncate_all(engine.url.render_as_string(hide_password=False), keep=("alembic_version", "snapshots"))
    record(engine, county(2))  # the table emptied and refilled: the persisted facts describe other rows
    restart()
    facts, ranking = load(engine)
    assert projections._caches[str(engine.url)]["restored"] is False
    assert sorted(facts.cadres) == ["C0", "C1"] and len(ranking) == 2


def test_the_timer_saves_only_after_enough_new_rows(engine, monkeypatch):
    monkeypatch.setattr(projections, "FACTS_SNAPSHOT_EVERY", 10)
    record(engine, county(1))  # 6 rows
    with Session(engine) as session:
        projections.load_facts(session)
        assert projections.save_facts_snapshot_if_due(session) is None
    record(engine, county(1))  # 6 more (new event ids)
    with Session(engine) as session:
        projections.load_facts(session)
        assert projections.save_facts_snapshot_if_due(session) == 12
        session.commit()
        assert projections.save_facts_snapshot_if_due(session) is None


def test_the_first_ranking_after_a_restart_is_the_persisted_one_brought_up_to_date(engine, monkeypatch):
    from services.assessment import service

    monkeypatch.setattr(service, "_RANKINGS", {})
    monkeypatch.setattr(service, "_LATEST", {})
    record(engine, county(6))
    with Session(engine) as session:
        facts = projections.load_facts(session)
        kept = service._kept_ranking("cadre", facts, PERIOD, AS_OF, None)
        assert projections.save_facts_snapshot(session, service._current_rankings(facts)) is not None
        session.commit()
    restart()
    service._RANKINGS.clear()
    service._LATEST.clear()
    ranked_whole = []
    monkeypatch.setattr(scoring, "rank_all", lambda *args, **kwargs: ranked_whole.append(args) or [])
    with Session(engine) as session:
        facts = projections.load_facts(session)
        assert service._kept_ranking("cadre", facts, PERIOD, AS_OF, None) == kept
    assert ranked_whole == [] and projections._caches[str(engine.url)]["restored"] is True

    # Rows recorded after the save: the persisted ranking is brought up to date, or ranked whole
    # when what changed is not known; either way it equals a ranking from every row.
    monkeypatch.undo()
    record(engine, [check("C5", passed=True, day=day) for day in range(4, 20)])
    restart()
    service._RANKINGS.clear()
    service._LATEST.clear()
    with Session(engine) as session:
        after = service._kept_ranking("cadre", projections.load_facts(session), PERIOD, AS_OF, None)
    assert [card["subject_id"] for card in after] != [card["subject_id"] for card in kept]
    assert after == scoring.rank_all("cadre", load(engine)[0], PERIOD, AS_OF)


def test_persisted_rankings_of_other_scoring_code_are_not_used(engine, monkeypatch):
    from services.assessment import service

    record(engine, county(3))
    with Session(engine) as session:
        facts = projections.load_facts(session)
        service._kept_ranking("cadre", facts, PERIOD, AS_OF, None)
        projections.save_facts_snapshot(session, service._current_rankings(facts))
        session.commit()
    monkeypatch.setattr(projections, "rankings_fingerprint", lambda: "other scoring code")
    restart()
    with Session(engine) as session:
        facts = projections.load_facts(session)
    assert projections._caches[str(engine.url)]["restored"] is True and facts.restored_rankings == {}


def test_facts_larger_than_a_slice_are_saved_in_pieces_and_restored_the_same(engine, monkeypatch):
    monkeypatch.setattr(projections, "SLICE", 7)  # seen, checks, ... span several pieces
    record(engine, county(6))
    facts, before = load(engine)
    assert len(facts.seen) > 3 * projections.SLICE
    save(engine)
    restart()
    restored, after = load(engine)
    assert projections._caches[str(engine.url)]["restored"] is True and after == before

    def state(of):  # what was persisted; an object without equality of its own compared by its fields
        return {name: (vars(value) if hasattr(value, "__dict__") and type(value).__eq__ is object.__eq__ else value)
                for name, value in vars(of).items() if name not in projections._NOT_SAVED}

    assert state(restored) == state(facts)


def test_other_green_threads_run_while_the_facts_are_pickled(engine, monkeypatch):
    import eventlet

    monkeypatch.setattr(projections, "SLICE", 7)
    record(engine, county(6))
    facts, _ = load(engine)
    ticks = []
    ticker = eventlet.spawn(lambda: [ticks.append(eventlet.sleep(0)) for _ in range(1000)])
    projections._pickled({}, {name: value for name, value in vars(facts).items()
                              if name not in projections._NOT_SAVED})
    during = len(ticks)
    ticker.kill()
    assert during > 1
