"""After a visit, a kept ranking is brought up to date by scoring only the visit's cadre and unit,
and it equals the ranking computed whole; any other event ranks everyone again."""
import random
import uuid
from datetime import date

import pytest

from services.assessment import incremental, scoring, service
from services.assessment.facts import Facts
from services.common.events import StoredEvent
from tests.rulebook_defaults import declared_defaults_events

PERIOD, AS_OF = scoring.parse_period("2023-Q2"), date(2023, 6, 30)


def event(event_type, payload):
    return StoredEvent(1, str(uuid.uuid4()), "s", "s", 1, event_type, 1, payload)


class County:
    """Facts fed the way projections.load_facts feeds them: each applied event recorded in the
    change log, and a new facts version after each batch."""

    def __init__(self, cadres=12, units=3):
        self.facts = Facts()
        self.facts.changes = incremental.ChangeLog()
        self.batch = 0
        self.pairings = []
        events = list(declared_defaults_events())
        for u in range(units):
            events.append(event("unit_registered", {"unit_id": f"U{u}", "name": f"单位{u}", "department": "transport"}))
        for c in range(cadres):
            unit = f"U{c % units}"
            events.append(event("cadre_registered", {"cadre_id": f"C{c}", "unit_id": unit, "name": f"干部{c}"}))
            for h in range(2):
                pairing = f"P{c}-{h}"
                self.pairings.append((pairing, f"C{c}", unit, f"H{c}-{h}"))
                events.append(event("household_paired", {"pairing_id": pairing, "cadre_id": f"C{c}", "unit_id": unit,
                                                         "household_id": f"H{c}-{h}", "from": "2023-01-01"}))
        self.apply(events)

    def apply(self, events):
        for item in events:
            self.facts.apply(item)
            self.facts.changes.record(incremental.affected_subjects(self.facts, item.type, item.payload))
        self.batch += 1
        self.facts.loaded_version = (id(self.facts), "first", self.batch, 0)

    def visit(self, rng):
        pairing, cadre, unit, household = rng.choice(self.pairings)
        return event("visit_recorded", {"visit_id": str(uuid.uuid4()), "pairing_id": pairing, "cadre_id": cadre,
                                        "unit_id": unit, "household_id": household,
                                        "visited_on": f"2023-{rng.randint(4, 6):02d}-{rng.randint(1, 28):02d}"})


@pytest.fixture
def full_rankings(monkeypatch):
    monkeypatch.setattr(service, "_RANKINGS", {})
    monkeypatch.setattr(service, "_LATEST", {})
    calls = []
    rank_all = scoring.rank_all

    def counted(subject_type, facts, period, as_of, version=None):
        calls.append(subject_type)
        return rank_all(subject_type, facts, period, as_of, version)

    monkeypatch.setattr(service.scoring, "rank_all", counted)
    return calls


def strip(ranking):
    return [{k: card[k] for k in ("subject_id", "score", "grade", "rank", "vetoed", "indicators")} for card in ranking]


def test_visits_update_the_kept_rankings_without_ranking_everyone_and_agree_with_a_full_ranking(full_rankings):
    county, rng = County(), random.Random(17)
    for subject_type in ("cadre", "unit"):
        service._kept_ranking(subject_type, county.facts, PERIOD, AS_OF, None)
    assert full_rankings == ["cadre", "unit"]
    for _ in range(25):
        county.apply([county.visit(rng) for _ in range(rng.randint(1, 3))])
        for subject_type in ("cadre", "unit"):
            kept = service._kept_ranking(subject_type, county.facts, PERIOD, AS_OF, None)
            assert strip(kept) == strip(scoring.rank(
                [scoring.score(subject_type, s, county.facts, PERIOD, AS_OF) for s in county.facts.subject_ids(subject_type)]))
    assert full_rankings == ["cadre", "unit"]  # every update after the first ranking was incremental
    assert any(card["score"] not in (None, 0) for card in kept)


def test_a_long_stream_of_visits_never_ranks_everyone_again(full_rankings):
    """More new facts versions than rankings are kept: the oldest are forgotten, not the last
    ranking each query is updated from."""
    county, rng = County(), random.Random(64)
    for _ in range(service._RANKINGS_KEPT * 2):
        county.apply([county.visit(rng)])
        for subject_type in ("cadre", "unit"):
            kept = service._kept_ranking(subject_type, county.facts, PERIOD, AS_OF, None)
    assert full_rankings == ["cadre", "unit"]
    assert len(service._RANKINGS) <= service._RANKINGS_KEPT
    assert strip(kept) == strip(scoring.rank([scoring.score("unit", s, county.facts, PERIOD, AS_OF)
                                             for s in county.facts.subject_ids("unit")]))


def test_monitoring_flags_and_exits_change_no_score_and_rank_no_one(full_rankings):
    """They follow income assessments, the most frequent command; only the bulletin reads them."""
    county = County()
    before = {t: service._kept_ranking(t, county.facts, PERIOD, AS_OF, None) for t in ("cadre", "unit")}
    county.apply([event("monitoring_flagged", {"household_id": "H1-0", "flagged_on": "2023-05-03"}),
                  event("household_exited", {"household_id": "H2-1", "exited_on": "2023-05-20", "year": 2023})])
    for subject_type in ("cadre", "unit"):
        kept = service._kept_ranking(subject_type, county.facts, PERIOD, AS_OF, None)
        assert kept is before[subject_type]
        assert strip(kept) == strip(scoring.rank([scoring.score(subject_type, s, county.facts, PERIOD, AS_OF)
                                                 for s in county.facts.subject_ids(subject_type)]))
    assert full_rankings == ["cadre", "unit"]
    assert len(county.facts.flags) == 1 and len(county.facts.exits) == 1


def test_the_subject_index_is_kept_across_visits_and_rebuilt_after_other_events():
    county, rng = County(), random.Random(3)
    index = county.facts.index()
    county.apply([county.visit(rng), event("monitoring_flagged", {"household_id": "H1-0", "flagged_on": "2023-05-03"})])
    assert county.facts.index() is index
    county.apply([event("exam_scored", {"cadre_id": "C1", "unit_id": "U1", "exam_id": "E1", "score": 80,
                                        "taken_on": "2023-05-15"})])
    assert county.facts.index() is not index and county.facts.index()["exam_days"] == [date(2023, 5, 15)]


def test_any_other_event_ranks_everyone_again(full_rankings):
    county = County()
    service._kept_ranking("cadre", county.facts, PERIOD, AS_OF, None)
    county.apply([event("exam_scored", {"cadre_id": "C1", "unit_id": "U1", "exam_id": "E1", "score": 80,
                                        "taken_on": "2023-05-15"})])
    kept = service._kept_ranking("cadre", county.facts, PERIOD, AS_OF, None)
    assert full_rankings == ["cadre", "cadre"]
    assert strip(kept) == strip(scoring.rank([scoring.score("cadre", s, county.facts, PERIOD, AS_OF)
                                             for s in county.facts.subject_ids("cadre")]))
    # a visit to a pairing the facts do not know yet is not guessed at either
    county.apply([event("visit_recorded", {"visit_id": "v", "pairing_id": "P-unknown", "cadre_id": "C1",
                                           "unit_id": "U1", "household_id": "H", "visited_on": "2023-05-02"})])
    service._kept_ranking("cadre", county.facts, PERIOD, AS_OF, None)
    assert full_rankings == ["cadre", "cadre", "cadre"]


def test_the_change_log_forgets_old_changes_and_then_says_it_does_not_know():
    log = incremental.ChangeLog()
    log.record({("cadre", "C1")})
    log.record({("unit", "U1")})
    assert log.since(0) == {("cadre", "C1"), ("unit", "U1")} and log.since(2) == set()
    log.record(None)
    assert log.since(2) is None and log.since(3) == set()
    small = incremental.ChangeLog()
    small.entries = type(small.entries)(maxlen=2)
    for n in range(4):
        small.record({("cadre", f"C{n}")})
    assert small.since(1) is None and small.since(2) == {("cadre", "C2"), ("cadre", "C3")}
