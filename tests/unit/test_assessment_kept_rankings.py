"""A ranking is kept per facts version: a read without new events does not rank again, and
new events (a new facts version) give a fresh ranking."""
from datetime import date

from services.assessment import service


class FactsStub:
    def __init__(self, version):
        self.loaded_version = version


def test_a_ranking_is_kept_until_the_facts_change(monkeypatch):
    calls = []

    def rank_all(subject_type, facts, period, as_of, version=None):
        calls.append(facts.loaded_version)
        return [{"subject_id": "c1", "score": len(calls)}]

    monkeypatch.setattr(service.scoring, "rank_all", rank_all)
    monkeypatch.setattr(service, "_RANKINGS", {})
    first = service._kept_ranking("cadre", FactsStub(("f", 1)), "2024", date(2024, 6, 30), None)
    again = service._kept_ranking("cadre", FactsStub(("f", 1)), "2024", date(2024, 6, 30), None)
    assert again is first and calls == [("f", 1)]
    other_day = service._kept_ranking("cadre", FactsStub(("f", 1)), "2024", date(2024, 7, 1), None)
    newer = service._kept_ranking("cadre", FactsStub(("f", 2)), "2024", date(2024, 6, 30), None)
    assert other_day[0]["score"] == 2 and newer[0]["score"] == 3 and len(calls) == 3
