"""Evidence a person can act on (issue 19): shortfalls named by household number and head,
village, cadre and project; veto reasons as structured items the page words in its language."""
from datetime import date

from services.assessment import evidence
from tests.unit.test_assessment_monthly import card, county, facts_of, indicator


def test_shortfalls_are_named_not_ids():
    events, ev = county()
    ev("village_registered", village_id="V1", township_id="T1", name="长岭村", poor_village=True)
    ev("household_registered", household_id="H3", household_no="431222-00003", village_id="V1", township_id="T1",
       head_name="王小明", poverty_causes=[], registered_on="2022-12-01")
    ev("household_paired", pairing_id="P3", cadre_id="C1", unit_id="U1", household_id="H3", **{"from": "2023-01-01"})
    facts = facts_of(events)
    raw = card("cadre", "C1", "2023-03", date(2023, 4, 5), facts)
    named = evidence.describe(raw, facts)
    # March: H3 was never visited; C1 missed the exam held on 15 March.
    [shortfall] = indicator(named, "visit_compliance")["evidence"]
    assert (shortfall["household_no"], shortfall["head_name"], shortfall["village_name"], shortfall["month"],
            shortfall["cadre_name"]) == ("431222-00003", "王小明", "长岭村", "2023-03", "C1")
    assert indicator(named, "policy_exam")["evidence"][0]["cadre_name"] == "C1"
    assert "household_no" not in indicator(raw, "visit_compliance")["evidence"][0], "kept cards are not mutated"
    masked = evidence.masked(named)
    assert indicator(masked, "visit_compliance")["evidence"][0]["head_name"] == "王**"


def test_veto_reasons_are_structured_for_the_page_to_word():
    events, ev = county()
    ev("veto_recorded", veto_id="v1", subject_type="cadre", subject_id="C2", reason="重大安全事故", on="2023-04-02")
    facts = facts_of(events)
    april = evidence.describe(card("cadre", "C2", "2023-04", date(2023, 5, 5), facts), facts)
    assert april["vetoes"] == [{"kind": "veto", "on": "2023-04-02", "reason": "重大安全事故"},
                               {"kind": "external_poor_rating", "on": "2023-04-20", "source": "province"}]
    may = evidence.describe(card("cadre", "C2", "2023-05", date(2023, 6, 5), facts), facts)
    assert may["vetoes"] == [] and not may["vetoed"]
