"""The monthly cycle the leading group pays by (000 §三), worked by hand from DOMAIN.md.

A small county: unit U1 (transport) with staff cadres C1 and C2, each paired with one household
since 1 January 2023 and visiting it every month. One policy exam was held, on 15 March, with a
maximum of 50: C2 scored 45, C1 missed it. C2 got an external 差 (province) on 20 April; C1 an
external 好 (city) on 8 May and another (county) on 12 January.
Cadre weights (rulebook v1): visit_compliance 50, policy_exam 20, awareness_checks 20,
supervision_rating 10, residency 10.
"""
import uuid
from datetime import date

import pytest

from services.assessment import domain, scoring
from services.assessment.facts import DEFAULT_RULES, Facts
from services.common.errors import ServiceUnavailable, ValidationFailed
from services.common.events import StoredEvent
from tests.rulebook_defaults import declared_defaults_events


def county():
    events = []

    def ev(type_, **payload):
        events.append(StoredEvent(len(events) + 1, str(uuid.uuid4()), "", "", 1, type_, 1, payload))

    ev("unit_registered", unit_id="U1", name="交通运输局", department="transport", parent_unit_id=None)
    ev("unit_registered", unit_id="U2", name="水利局", department="water", parent_unit_id=None)
    for cadre_id in ("C1", "C2"):
        ev("cadre_registered", cadre_id=cadre_id, unit_id="U1", name=cadre_id, rank="staff",
           deputy_section_or_above=False)
    for pairing, cadre, household in (("P1", "C1", "H1"), ("P2", "C2", "H2")):
        ev("household_registered", household_id=household, household_no=household, village_id="V1",
           township_id="T1", head_name="x", poverty_causes=[], registered_on="2022-12-01")
        ev("household_paired", pairing_id=pairing, cadre_id=cadre, unit_id="U1", household_id=household,
           **{"from": "2023-01-01"})
        for month in range(1, 7):
            ev("visit_recorded", visit_id=str(uuid.uuid4()), pairing_id=pairing, cadre_id=cadre, unit_id="U1",
               household_id=household, visited_on=f"2023-{month:02d}-10", measures=[], outcome="", changes="",
               policy_explained=True)
    ev("exam_scored", cadre_id="C2", unit_id="U1", exam_id="2023-03", score=45, taken_on="2023-03-15", max_score=50)
    ev("rating_recorded", rating_id="r1", subject_type="cadre", subject_id="C2", rating="poor", source="province",
       rated_on="2023-04-20")
    ev("rating_recorded", rating_id="r2", subject_type="cadre", subject_id="C1", rating="good", source="city",
       rated_on="2023-05-08")
    ev("rating_recorded", rating_id="r3", subject_type="cadre", subject_id="C1", rating="good", source="county",
       rated_on="2023-01-12")
    return events, ev


def facts_of(events):
    facts = Facts()
    for event in [*declared_defaults_events(), *events]:
        facts.apply(event)
    return facts


def card(subject_type, subject_id, period, as_of, facts):
    return scoring.score(subject_type, subject_id, facts, scoring.parse_period(period), as_of)


def names(card_):
    return [i["name"] for i in card_["indicators"]]


def indicator(card_, name):
    return next(i for i in card_["indicators"] if i["name"] == name)


@pytest.fixture(scope="module")
def facts():
    return facts_of(county()[0])


def test_perfect_visits_in_a_month_without_an_exam_is_excellent(facts):
    c1 = card("cadre", "C1", "2023-02", date(2023, 3, 5), facts)
    # February: visited H1 on 10 Feb → visit_compliance 1/1 × 50 = 50 points.
    # No exam taken by anyone in February → policy_exam does not apply (not "0 of 20").
    # No checks, ratings or stationing in February → only visit_compliance applies.
    # 100 × 50 / 50 = 100.00 → excellent → 850 yuan, no reward, nothing withheld.
    assert names(c1) == ["visit_compliance"]
    assert c1["score"] == 100.0 and c1["grade"] == "excellent"
    assert c1["pay"]["monthly_performance_pay"] == "850.00"
    assert c1["pay"]["rewards"] == "0.00" and not c1["pay"]["withheld"]


def test_a_month_with_an_exam_they_missed(facts):
    c1 = card("cadre", "C1", "2023-03", date(2023, 4, 5), facts)
    # March: visits 1/1 → 50. An exam was held (C2 took it on 15 March), C1 has no score → 0 of 20.
    # 100 × 50 / 70 = 71.428… → 71.43 → poor → 750.
    exam = indicator(c1, "policy_exam")
    assert (exam["numerator"], exam["denominator"], exam["points"]) == (0, 1, 0.0)
    assert exam["evidence"] == [{"cadre_id": "C1", "best_score": None, "max_score": None}]
    assert c1["score"] == 71.43 and c1["grade"] == "poor" and c1["pay"]["monthly_performance_pay"] == "750.00"
    c2 = card("cadre", "C2", "2023-03", date(2023, 4, 5), facts)
    # C2 scored 45 of the exam's maximum 50 → 0.9 × 20 = 18 (not 45 / 100 = 0.45 → 9).
    # 100 × (50 + 18) / 70 = 97.142… → 97.14 → excellent.
    assert indicator(c2, "policy_exam")["points"] == 18.0
    assert c2["score"] == 97.14 and c2["grade"] == "excellent"


def test_an_exam_recorded_before_scores_carried_their_maximum_is_out_of_100():
    events, ev = county()
    ev("exam_scored", cadre_id="C1", unit_id="U1", exam_id="old", score=80, taken_on="2023-06-01")
    c1 = card("cadre", "C1", "2023-06", date(2023, 7, 3), facts_of(events))
    # June: visits 50; exam 80 / 100 (no max_score in the payload) → 16 of 20: 100 × 66 / 70 = 94.29
    assert indicator(c1, "policy_exam")["points"] == 16.0 and c1["score"] == 94.29


def test_an_external_poor_withholds_that_months_pay(facts):
    april = card("cadre", "C2", "2023-04", date(2023, 5, 5), facts)
    # April: visits 1/1 → 50; supervision_rating 差 = 0 → 0 of 10; no exam in April.
    # 100 × 50 / 60 = 83.33, but an external 差 vetoes → poor; and it withholds April's
    # performance pay entirely: 0 (750 withheld); no awards/transfers/promotion until 2024-04-20.
    assert april["score"] == 83.33 and april["vetoed"] and april["grade"] == "poor"
    assert april["pay"]["monthly_performance_pay"] == "0.00" and april["pay"]["withheld"]
    assert april["pay"]["withheld_amount"] == "750.00" and april["pay"]["months_withheld"] == ["2023-04"]
    assert april["pay"]["restrictions_until"] == "2024-04-20"
    may = card("cadre", "C2", "2023-05", date(2023, 6, 5), facts)
    # May: visits 50 / 50 → 100.00 excellent → 850 paid; the restrictions still run.
    assert may["score"] == 100.0 and not may["vetoed"] and may["pay"]["monthly_performance_pay"] == "850.00"
    assert may["pay"]["restrictions_until"] == "2024-04-20" and "不提拔" in may["pay"]["restrictions"]
    quarter = card("cadre", "C2", "2023-Q2", date(2023, 7, 5), facts)
    assert quarter["pay"]["months_withheld"] == ["2023-04"]


def test_an_external_good_earns_the_reward_in_its_month(facts):
    may = card("cadre", "C1", "2023-05", date(2023, 6, 5), facts)
    # May: visits 50; supervision_rating 好 = 1.0 → 10: 100 × 60 / 60 = 100.00 → 850,
    # and the city's 好 of 8 May earns the rulebook's reward, 1,000 yuan, in May.
    assert may["score"] == 100.0 and may["pay"]["monthly_performance_pay"] == "850.00"
    assert may["pay"]["rewards"] == "1000.00" and may["pay"]["rewards_by_month"] == {"2023-05": "1000.00"}
    assert card("cadre", "C1", "2023-04", date(2023, 5, 5), facts)["pay"]["rewards"] == "0.00"
    year = card("cadre", "C1", "2023", date(2023, 12, 31), facts)
    # The year sums them: 12 January + 8 May → 2,000.
    assert year["pay"]["rewards"] == "2000.00"
    assert year["pay"]["rewards_by_month"] == {"2023-01": "1000.00", "2023-05": "1000.00"}


def test_visits_per_month_comes_from_the_assistance_section_in_force_on_the_scoring_date():
    events, ev = county()
    facts = facts_of(events)
    # its one home is the assistance section: a `rules_changed` event of the assistance service
    ev("rules_changed", section="assistance", version=1, effective_from="2023-02-01",
       changes={"visits_per_month": 2}, reason="县扶贫办通知")
    facts.apply(events[-1])
    # One visit in February is short of two: 0/1, with what was made and needed in the evidence.
    scored = card("cadre", "C1", "2023-02", date(2023, 3, 5), facts)
    visits = indicator(scored, "visit_compliance")
    assert (visits["numerator"], visits["denominator"]) == (0, 1)
    assert visits["evidence"][0]["visits"] == 1 and visits["evidence"][0]["required"] == 2
    assert scored["rulebook_sections"]["assistance"] == 1
    # January is scored under the value in force then: one visit was enough
    assert indicator(card("cadre", "C1", "2023-01", date(2023, 3, 5), facts), "visit_compliance")["numerator"] == 1
    # A second record of the same day is not a second visit; another day is.
    for day in ("2023-02-10", "2023-02-21"):
        ev("visit_recorded", visit_id=str(uuid.uuid4()), pairing_id="P1", cadre_id="C1", unit_id="U1",
           household_id="H1", visited_on=day, measures=[], outcome="", changes="", policy_explained=True)
        facts.apply(events[-1])
        visits = indicator(card("cadre", "C1", "2023-02", date(2023, 3, 5), facts), "visit_compliance")
        assert visits["numerator"] == (0 if day == "2023-02-10" else 1)


def test_the_scoring_rulebook_refuses_values_whose_home_is_another_section():
    events, _ = county()
    book = facts_of(events).scoring_rulebook
    for key, section in (("visits_per_month", "assistance"), ("residency_min_days", "assistance"),
                         ("disbursement_by", "projects")):
        with pytest.raises(ValidationFailed) as refused:
            domain.decide_rulebook(book, {key: 2}, date(2023, 3, 1))
        assert f"/api/v1/rulebook/{section}" in str(refused.value.details[key])


def test_a_version_published_before_effective_dating_reads_as_it_did():
    """Events written before the effective-dated rulebook read as they did: a whole published
    rulebook held for every period, and one that carried visits_per_month still scores with it
    while it is the newest in force; versions published since carry none."""
    events, ev = county()
    legacy = {**DEFAULT_RULES, "visits_per_month": 2, "restriction_years": 3}
    ev("rulebook_published", version=2, rules=legacy, published_on="2023-03-01")
    facts = facts_of(events)
    scored = card("cadre", "C1", "2023-02", date(2023, 3, 5), facts)
    assert scored["rulebook_version"] == 2  # from the beginning, though published on 1 March
    assert indicator(scored, "visit_compliance")["evidence"][0]["required"] == 2
    [published] = domain.decide_rulebook(facts.scoring_rulebook, {"grade_bands": {"excellent": 91}},
                                         date(2023, 4, 1))
    assert published.payload["changes"] == {"grade_bands": {"excellent": 91}}
    facts.apply(StoredEvent(99_999, str(uuid.uuid4()), "rulebook", "county", 2, published.type, 1, published.payload))
    version, rules = facts.rulebook(day=date(2023, 4, 1))
    assert version == 3 and "visits_per_month" not in rules and rules["restriction_years"] == 3
    assert facts.rulebook(day=date(2023, 3, 31)) == (2, legacy)


def test_values_of_other_sections_come_from_their_owners_events_not_a_copy():
    """visits_per_month is the assistance section's: with the section's defaults on record the
    score takes the value the events say (here a release that made it 2), and before any of that
    section's events arrived it is a 503 (retry), never a guess."""
    events, _ = county()
    declared = [e for e in declared_defaults_events() if e.payload["section"] == "assistance"][0]
    released = StoredEvent(declared.global_position + 100, "declared-again", declared.stream_type, "assistance", 2,
                           declared.type, 1, {"section": "assistance",
                                              "defaults": {**declared.payload["defaults"], "visits_per_month": 2}})
    facts = facts_of([*events, released])
    visits = indicator(card("cadre", "C1", "2023-02", date(2023, 3, 5), facts), "visit_compliance")
    assert visits["evidence"][0]["required"] == 2
    bare = Facts()
    for event in events:
        bare.apply(event)
    with pytest.raises(ServiceUnavailable) as waiting:
        card("cadre", "C1", "2023-02", date(2023, 3, 5), bare)
    assert waiting.value.details["section"] == "assistance"


def test_a_project_cancelled_after_its_deadline_stays_due_and_undelivered():
    events, ev = county()

    def project(pid, deadline="2023-05-31"):
        ev("project_planned", project_id=pid, title=f"{pid} 村道", department="transport", category="village_road",
           level="township", township_id="T1", village_ids=["V1"], planned_quantity="1", quantity_unit="km",
           budget="100000.00", funding_sources=[], plan_year=2023, deadline=deadline)

    project("PX")  # late, then cancelled on 10 June, after its 31 May deadline
    project("PY")  # cancelled on 20 May, before its deadline
    project("PZ")  # completed on time
    ev("project_cancelled", project_id="PX", department="transport", on="2023-06-10", reason="dropped")
    ev("project_cancelled", project_id="PY", department="transport", on="2023-05-20", reason="merged")
    ev("project_completed", project_id="PZ", department="transport", on="2023-05-25", quantity_done="1",
       deadline="2023-05-31", late=False)
    facts = facts_of(events)
    for as_of in (date(2023, 6, 5), date(2023, 6, 30)):  # before and after PX's cancellation
        u1 = card("unit", "U1", "2023-05", as_of, facts)
        # May: visit_compliance P1 and P2 visited → 2/2 × 30 = 30.
        # project_delivery: PZ on time; PX due and undelivered (cancelled after the deadline, or
        # not yet cancelled); PY dropped out → 1/2 × 20 = 10.
        # No exam, village visits (a month needs 0 of 2 or 4 a year), funds or unit ratings.
        # 100 × 40 / 50 = 80.00 → good.
        delivery = indicator(u1, "project_delivery")
        assert (delivery["numerator"], delivery["denominator"]) == (1, 2), as_of
        assert [e["project_id"] for e in delivery["evidence"]] == ["PX"]
        assert delivery["evidence"][0]["cancelled_on"] == (None if as_of < date(2023, 6, 10) else "2023-06-10")
        assert names(u1) == ["visit_compliance", "project_delivery"]
        assert u1["score"] == 80.0 and u1["grade"] == "good"


def test_a_months_disbursement_is_measured_at_the_months_end():
    events, ev = county()
    ev("project_planned", project_id="W1", title="W1 供水", department="water", category="water_supply",
       level="county", township_id="T1", village_ids=["V1"], planned_quantity="1", quantity_unit="units",
       budget="100000.00", funding_sources=[], plan_year=2023, deadline="2023-08-31")
    ev("project_planned", project_id="W2", title="W2 供水", department="water", category="water_supply",
       level="county", township_id="T1", village_ids=["V1"], planned_quantity="1", quantity_unit="units",
       budget="100000.00", funding_sources=[], plan_year=2023, deadline="2023-08-31")
    ev("funds_allocated", project_id="W1", department="water", plan_year=2023, amount="100000.00", source="county",
       on="2023-03-01")
    ev("funds_allocated", project_id="W2", department="water", plan_year=2023, amount="100000.00", source="county",
       on="2023-03-01")
    ev("funds_disbursed", project_id="W1", department="water", plan_year=2023, amount="50000.00", on="2023-03-20",
       payee="x")
    ev("funds_disbursed", project_id="W1", department="water", plan_year=2023, amount="50000.00", on="2023-04-10",
       payee="x")
    ev("project_cancelled", project_id="W2", department="water", on="2023-10-15", reason="dropped")
    facts = facts_of(events)
    march = indicator(card("unit", "U2", "2023-03", date(2023, 4, 30), facts), "fund_disbursement")
    # March's score: 50,000 of 200,000 at 31 March (April's payment is not March's work) → 0.25
    assert (march["numerator"], march["denominator"]) == (50000, 200000)
    # the year as of 31 December, measured at 30 September: 100,000 / 200,000; W2 was cancelled
    # after the 30 September target date, so its allocation still counts
    year = indicator(card("unit", "U2", "2023", date(2023, 12, 31), facts), "fund_disbursement")
    assert (year["numerator"], year["denominator"]) == (100000, 200000)
