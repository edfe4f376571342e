"""Scores worked by hand from DOMAIN.md's table, on a small county (no infrastructure).

Period 2023 as of 2023-06-30: complete months January to June (6).
"""
import json
import pickle
import random
import uuid
from datetime import date

import pytest

from services.assessment import domain, scoring
from services.assessment.bulletin import as_csv, as_xlsx, weekly_bulletin
from services.assessment.facts import DEFAULT_RULES, Facts
from services.common.errors import RuleRefused, ValidationFailed
from services.common.events import StoredEvent
from tests.rulebook_defaults import declared_defaults_events

PERIOD = scoring.parse_period("2023")
AS_OF = date(2023, 6, 30)


def county_events():
    events = []

    def ev(type_, **payload):
        events.append(StoredEvent(len(events) + 1, str(uuid.uuid4()), "", "", 1, type_, 1, payload))

    ev("township_registered", township_id="T1", name="城关镇")
    ev("township_registered", township_id="T2", name="东风镇")
    ev("unit_registered", unit_id="U1", name="交通运输局", department="transport", parent_unit_id=None)
    ev("unit_registered", unit_id="U2", name="水利局", department="water", parent_unit_id=None)
    for cadre_id, unit_id, rank in (("C1", "U1", "head"), ("C2", "U1", "staff"), ("C3", "U2", "staff"),
                                    ("C4", "U1", "leader")):
        ev("cadre_registered", cadre_id=cadre_id, unit_id=unit_id, name=cadre_id, rank=rank,
           deputy_section_or_above=rank != "staff")
    ev("village_assigned", unit_id="U1", village_id="V1", **{"from": "2023-01-01", "until": None})
    for household_id in ("H1", "H2", "H3", "H4"):
        ev("household_registered", household_id=household_id, household_no=household_id, village_id="V1",
           township_id="T1", head_name="x", poverty_causes=[], registered_on="2022-12-01")
    for pairing, cadre, unit, household, start in (("P1", "C1", "U1", "H1", "2023-01-01"), ("P2", "C2", "U1", "H2", "2023-01-01"),
                                                   ("P3", "C2", "U1", "H3", "2023-02-15"), ("P4", "C3", "U2", "H4", "2023-01-01")):
        ev("household_paired", pairing_id=pairing, cadre_id=cadre, unit_id=unit, household_id=household, **{"from": start})
    ev("pairing_ended", pairing_id="P4", cadre_id="C3", unit_id="U2", household_id="H4", until="2023-02-10", reason="moved")

    def visit(pairing, cadre, unit, household, month):
        ev("visit_recorded", visit_id=str(uuid.uuid4()), pairing_id=pairing, cadre_id=cadre, unit_id=unit,
           household_id=household, visited_on=f"2023-{month:02d}-12", measures=[], outcome="", changes="",
           policy_explained=True)

    for month in range(1, 7):
        visit("P1", "C1", "U1", "H1", month)
        if month != 3:
            visit("P2", "C2", "U1", "H2", month)
        if month >= 3:
            visit("P3", "C2", "U1", "H3", month)
    visit("P3", "C2", "U1", "H3", 7)  # after the as-of date: ignored
    ev("village_visit_recorded", visit_id="vv1", cadre_id="C1", unit_id="U1", village_id="V1", visited_on="2023-04-03", purpose="")
    ev("village_visit_recorded", visit_id="vv2", cadre_id="C4", unit_id="U1", village_id="V1", visited_on="2023-05-03", purpose="")
    ev("exam_scored", cadre_id="C1", unit_id="U1", exam_id="e1", score=80, taken_on="2023-03-01")
    ev("exam_scored", cadre_id="C1", unit_id="U1", exam_id="e2", score=90, taken_on="2023-05-01")
    ev("exam_scored", cadre_id="C3", unit_id="U2", exam_id="e1", score=70, taken_on="2023-03-01")
    ev("awareness_checked", check_id="k1", household_id="H1", checked_on="2023-04-01", passed=True, cadre_id="C1", unit_id="U1")
    ev("awareness_checked", check_id="k2", household_id="H2", checked_on="2023-04-02", passed=False, cadre_id="C2", unit_id="U1")
    ev("awareness_checked", check_id="k3", household_id="H2", checked_on="2023-05-02", passed=True, cadre_id="C2", unit_id="U1")
    ev("cadre_stationed", stationing_id="s1", cadre_id="C1", unit_id="U1", village_id="V1", role="first_secretary",
       **{"from": "2023-01-01", "until": "2023-12-31"})
    for month, days in ((1, 20), (2, 10), (3, 15), (5, 16), (6, 18)):  # April: no report = 0 days
        ev("residency_reported", cadre_id="C1", unit_id="U1", month=f"2023-{month:02d}", days=days)

    def project(pid, department, deadline):
        ev("project_planned", project_id=pid, title=pid, department=department, category="village_road",
           level="township", township_id="T1", village_ids=["V1"], planned_quantity="1", quantity_unit="km",
           budget="100000.00", funding_sources=[], plan_year=2023, deadline=deadline)

    project("PA", "transport", "2023-05-31")
    project("PB", "transport", "2023-06-30")
    project("PC", "transport", "2023-08-31")
    project("PD", "transport", "2023-04-30")
    ev("project_completed", project_id="PA", department="transport", on="2023-05-20", quantity_done="1", deadline="2023-05-31", late=False)
    ev("project_completed", project_id="PB", department="transport", on="2023-07-05", quantity_done="1", deadline="2023-06-30", late=True)
    ev("project_cancelled", project_id="PD", department="transport", on="2023-03-01", reason="merged")
    for pid, amount, on in (("PA", "100000.00", "2023-03-01"), ("PB", "200000.00", "2023-03-01"), ("PC", "100000.00", "2023-07-01")):
        ev("funds_allocated", project_id=pid, department="transport", plan_year=2023, amount=amount, source="central", on=on)
    for pid, amount in (("PA", "100000.00"), ("PB", "95000.00")):
        ev("funds_disbursed", project_id=pid, department="transport", plan_year=2023, amount=amount, on="2023-06-01", payee="x")
    ev("rating_recorded", rating_id="r1", subject_type="unit", subject_id="U1", rating="good", source="internal", rated_on="2023-03-01")
    ev("rating_recorded", rating_id="r2", subject_type="unit", subject_id="U1", rating="fair", source="county", rated_on="2023-05-01")
    ev("rating_recorded", rating_id="r3", subject_type="cadre", subject_id="C2", rating="poor", source="province", rated_on="2023-04-01")
    ev("rating_recorded", rating_id="r4", subject_type="cadre", subject_id="C1", rating="good", source="city", rated_on="2023-05-10")
    ev("veto_recorded", veto_id="x1", subject_type="unit", subject_id="U2", reason="帮扶资料造假", on="2023-06-01")

    def loan(lid, principal, maturity, recommendation, decision):
        ev("loan_applied", loan_id=lid, household_id="H1", enterprise_name=None, township_id="T1", amount=principal,
           industry="livestock", term_months=6, applied_on="2023-01-02")
        ev("township_recommended", loan_id=lid, township_id="T1", on=recommendation[0], recommended=True, note="",
           due_by=recommendation[1], working_days=5, within_limit=recommendation[2])
        ev("loan_decided", loan_id=lid, township_id="T1", on=decision[0], approved=True, reason="",
           due_by=decision[1], working_days=10, within_limit=decision[2])
        ev("loan_disbursed", loan_id=lid, township_id="T1", on="2023-01-30", principal=principal, annual_rate="0.0435",
           maturity_date=maturity)

    loan("L1", "10000.00", "2023-05-31", ("2023-01-09", "2023-01-10", True), ("2023-01-20", "2023-01-24", True))
    loan("L2", "20000.00", "2023-06-15", ("2023-02-09", "2023-02-07", False), ("2023-02-20", "2023-02-21", True))
    loan("L3", "30000.00", "2023-09-30", ("2023-07-03", "2023-07-05", True), ("2023-07-10", "2023-07-19", True))
    ev("loan_repaid", loan_id="L1", township_id="T1", on="2023-05-20", principal="10000.00", interest="0", outstanding_after="0.00")
    ev("loan_repaid", loan_id="L2", township_id="T1", on="2023-06-10", principal="5000.00", interest="0", outstanding_after="15000.00")
    ev("loan_repaid", loan_id="L2", township_id="T1", on="2023-06-25", principal="15000.00", interest="0", outstanding_after="0.00")
    return events


def facts_of(events):
    facts = Facts()
    for event in [*declared_defaults_events(), *events]:
        facts.apply(event)
    return facts


@pytest.fixture(scope="module")
def facts():
    return facts_of(county_events())


def indicator(card, name):
    return next(i for i in card["indicators"] if i["name"] == name)


def test_unit_score_worked_by_hand(facts):
    card = scoring.score("unit", "U1", facts, PERIOD, AS_OF)
    # visit_compliance: P1 6/6, P2 5/6 (March missing), P3 Mar-Jun 4/4 (paired mid-February) = 15/16 → 30 × 15/16 = 28.125
    visits = indicator(card, "visit_compliance")
    assert (visits["numerator"], visits["denominator"], visits["points"]) == (15, 16, 28.125)
    assert visits["evidence"] == [{"household_id": "H2", "month": "2023-03", "cadre_id": "C2", "pairing_id": "P2",
                                   "visits": 0, "required": 1}]
    # leader_village_visits: head C1 needs 2×6//12 = 1, made 1 → 1; leader C4 needs 4×6//12 = 2, made 1 → 0.5; mean 0.75
    leaders = indicator(card, "leader_village_visits")
    assert (leaders["numerator"], leaders["denominator"], leaders["points"]) == (1.5, 2, 7.5)
    # policy_exam: pairing cadres C1 (best 90) and C2 (no exam = 0): (0.9 + 0) / 2 = 0.45 → 4.5; C4 has no pairing
    assert indicator(card, "policy_exam")["points"] == 4.5
    # awareness_checks: 2 passed of 3 → 6.6667
    assert indicator(card, "awareness_checks")["points"] == pytest.approx(6.6667, abs=1e-4)
    # project_delivery: due by 30 June: PA (on time), PB (finished 5 July, late); PC not due; PD cancelled → 1/2 → 10
    delivery = indicator(card, "project_delivery")
    assert (delivery["numerator"], delivery["denominator"], delivery["points"]) == (1, 2, 10.0)
    assert [e["project_id"] for e in delivery["evidence"]] == ["PB"]
    # fund_disbursement at min(as-of, 30 Sep) = 30 June: 195,000 / 300,000 = 0.65; / 0.95 = 0.6842 → 6.8421
    funds = indicator(card, "fund_disbursement")
    assert (funds["numerator"], funds["denominator"]) == (195000, 300000)
    assert funds["points"] == pytest.approx(6.8421, abs=1e-4)
    # supervision_rating: 好 1.0 and 较好 0.7 → 0.85 → 8.5
    assert indicator(card, "supervision_rating")["points"] == 8.5
    # 28.125 + 7.5 + 4.5 + 6.6667 + 10 + 6.8421 + 8.5 = 72.1338 of 100 → 72.13, below 75 → poor
    assert card["score"] == 72.13 and card["grade"] == "poor" and not card["vetoed"]


def test_non_applicable_indicators_drop_out_and_a_veto_forces_poor(facts):
    card = scoring.score("unit", "U2", facts, PERIOD, AS_OF)
    # only visit_compliance (0/1, weight 30) and policy_exam (C3 70 → 0.7, weight 10) apply: 100 × 7 / 40 = 17.5
    assert [i["name"] for i in card["indicators"]] == ["visit_compliance", "policy_exam"]
    assert card["score"] == 17.5
    assert card["vetoed"] and card["grade"] == "poor" and card["veto_reasons"] == ["2023-06-01 帮扶资料造假"]


def test_cadre_scores_and_pay_worked_by_hand(facts):
    c1 = scoring.score("cadre", "C1", facts, PERIOD, AS_OF)
    # visits 6/6 → 50; exam 90 → 18; checks 1/1 → 20; rating 好 → 10;
    # residency: stationed Jan-Jun, ≥ 15 days in Jan, Mar, May, Jun = 4/6 → 6.6667
    assert indicator(c1, "residency")["evidence"] == [{"month": "2023-02", "days": 10}, {"month": "2023-04", "days": 0}]
    # 104.6667 of 110 → 95.15 → excellent: 850 a month and one external 好 (city, 10 May) → 1,000 reward
    assert c1["score"] == 95.15 and c1["grade"] == "excellent"
    assert c1["pay"]["monthly_performance_pay"] == "850.00" and c1["pay"]["rewards"] == "1000.00"
    assert c1["pay"]["rewards_by_month"] == {"2023-05": "1000.00"} and c1["pay"]["months_withheld"] == []
    assert c1["pay"]["restrictions_until"] is None
    c2 = scoring.score("cadre", "C2", facts, PERIOD, AS_OF)
    # visits 9/10 → 45; exam none → 0 of 20; checks 1/2 → 10; rating 差 → 0 of 10: 55 of 100
    assert c2["score"] == 55.0
    # an external 差 (province) vetoes: poor, 750, no awards/transfers/promotion for a year
    assert c2["vetoed"] and c2["grade"] == "poor" and c2["pay"]["monthly_performance_pay"] == "750.00"
    assert c2["pay"]["restrictions_until"] == "2024-04-01"
    assert c2["pay"]["months_withheld"] == ["2023-04"]  # the year shows the month withheld
    c3 = scoring.score("cadre", "C3", facts, PERIOD, AS_OF)
    assert c3["score"] == 20.0  # visits 0/1 of 50, exam 0.7 × 20 = 14: 100 × 14 / 70
    assert scoring.score("cadre", "C4", facts, PERIOD, AS_OF)["score"] is None


def test_ranking_puts_vetoed_after_the_rest_and_no_score_last(facts):
    ranked = scoring.rank_all("cadre", facts, PERIOD, AS_OF)
    assert [(c["subject_id"], c["rank"]) for c in ranked] == [("C1", 1), ("C3", 2), ("C2", 3), ("C4", 4)]
    units = scoring.rank_all("unit", facts, PERIOD, AS_OF)
    assert [u["subject_id"] for u in units] == ["U1", "U2"]


def test_township_score_worked_by_hand(facts):
    card = scoring.score("township", "T1", facts, PERIOD, AS_OF)
    # recovery: L1 10,000 repaid on time, L2 20,000 with 5,000 on time; L3 matures after the as-of date
    # 15,000 / 30,000 = 0.5; / 0.95 → 0.5263 × 60 = 31.5789
    recovery = indicator(card, "loan_recovery")
    assert (recovery["numerator"], recovery["denominator"]) == (15000, 30000)
    assert [e["loan_id"] for e in recovery["evidence"]] == ["L2"]
    # reviews due by 30 June: L1 both in time, L2 recommendation late, decision in time → 3/4 × 40 = 30
    reviews = indicator(card, "review_timeliness")
    assert (reviews["numerator"], reviews["denominator"], reviews["points"]) == (3, 4, 30.0)
    assert reviews["evidence"] == [{"loan_id": "L2", "review": "recommendation", "done_on": "2023-02-09",
                                    "due_by": "2023-02-07"}]
    assert card["score"] == 61.58 and card["grade"] == "poor"
    assert scoring.score("township", "T2", facts, PERIOD, AS_OF)["score"] is None


def test_a_review_still_not_done_after_its_due_date_counts_as_late():
    """"All reviews due" includes reviews nobody has done yet: once the due date has passed on
    the as-of date they count as late; before it, or once the loan ended, they are not due."""
    events = []

    def ev(type_, **payload):
        events.append(StoredEvent(len(events) + 1, str(uuid.uuid4()), "", "", 1, type_, 1, payload))

    ev("township_registered", township_id="T3", name="新华乡")
    for lid in ("P1", "P2", "P3", "P4"):
        ev("loan_applied", loan_id=lid, household_id="H9", enterprise_name=None, township_id="T3", amount="30000.00",
           industry="livestock", term_months=12, applied_on="2023-06-01")
    # P1: village review 5 June, recommendation due 12 June, never made → late on 30 June.
    ev("village_reviewed", loan_id="P1", township_id="T3", on="2023-06-05", passed=True, note="",
       recommendation_due_by="2023-06-12")
    # P2: recommended in time; decision due 30 June, not made yet → still inside its limit on 30 June.
    ev("village_reviewed", loan_id="P2", township_id="T3", on="2023-06-12", passed=True, note="",
       recommendation_due_by="2023-06-19")
    ev("township_recommended", loan_id="P2", township_id="T3", on="2023-06-16", recommended=True, note="",
       due_by="2023-06-19", working_days=4, within_limit=True, decision_due_by="2023-06-30")
    # P3: recommended in time; the county refused (above 20,000): no decision is due any more.
    ev("village_reviewed", loan_id="P3", township_id="T3", on="2023-06-01", passed=True, note="",
       recommendation_due_by="2023-06-08")
    ev("township_recommended", loan_id="P3", township_id="T3", on="2023-06-02", recommended=True, note="",
       due_by="2023-06-08", working_days=1, within_limit=True, decision_due_by="2023-06-16")
    ev("county_approved", loan_id="P3", township_id="T3", on="2023-06-05", approved=False, decision_due_by=None)
    # P4: refused at the village review: nothing is due.
    ev("village_reviewed", loan_id="P4", township_id="T3", on="2023-06-01", passed=False, note="",
       recommendation_due_by=None)
    facts = facts_of(events)

    reviews = indicator(scoring.score("township", "T3", facts, PERIOD, AS_OF), "review_timeliness")
    # due by 30 June: P1's recommendation (late, not done), P2's recommendation (in time),
    # P3's recommendation (in time) → 2 / 3
    assert (reviews["numerator"], reviews["denominator"]) == (2, 3)
    assert reviews["evidence"] == [{"loan_id": "P1", "review": "recommendation", "done_on": None,
                                    "due_by": "2023-06-12"}]
    # on 3 July P2's decision is three days late too → 2 / 4
    reviews = indicator(scoring.score("township", "T3", facts, PERIOD, date(2023, 7, 3)), "review_timeliness")
    assert (reviews["numerator"], reviews["denominator"]) == (2, 4)
    assert [(e["loan_id"], e["review"]) for e in reviews["evidence"]] == [("P1", "recommendation"), ("P2", "decision")]


def test_enterprise_loans_count_neither_in_recovery_nor_in_review_timeliness():
    """第十三条: an enterprise loan is the county's and the credit union's, not the township's."""
    events = county_events()

    def ev(type_, **payload):
        events.append(StoredEvent(len(events) + 1, str(uuid.uuid4()), "", "", 1, type_, 1, payload))

    before = scoring.score("township", "T1", facts_of(list(events)), PERIOD, AS_OF)
    ev("loan_applied", loan_id="E1", household_id=None, enterprise_name="县桑蚕合作社", township_id="T1",
       amount="80000.00", industry="mulberry", term_months=3, applied_on="2023-01-02")
    ev("county_approved", loan_id="E1", township_id="T1", on="2023-01-03", approved=True, decision_due_by="2023-01-17")
    ev("loan_decided", loan_id="E1", township_id="T1", on="2023-03-01", approved=True, reason="",
       due_by="2023-01-17", working_days=30, within_limit=False)
    ev("loan_disbursed", loan_id="E1", township_id="T1", on="2023-03-01", principal="80000.00",
       annual_rate="0.0435", maturity_date="2023-06-01")  # matured, nothing repaid
    after = scoring.score("township", "T1", facts_of(events), PERIOD, AS_OF)
    for name in ("loan_recovery", "review_timeliness"):
        assert indicator(after, name) == indicator(before, name)
    assert after["score"] == before["score"]


def test_a_month_counts_only_once_complete():
    events = county_events()
    in_june = facts_of(events)
    card = scoring.score("cadre", "C1", in_june, PERIOD, date(2023, 6, 29))  # June not complete yet
    assert indicator(card, "visit_compliance")["denominator"] == 5


def test_shuffled_and_duplicated_events_give_identical_scores():
    events = county_events()
    expected = {t: scoring.rank_all(t, facts_of(events), PERIOD, AS_OF) for t in scoring.SUBJECT_TYPES}
    rng = random.Random(5)
    for _ in range(3):
        shuffled = events + rng.sample(events, 40)
        rng.shuffle(shuffled)
        got = {t: scoring.rank_all(t, facts_of(shuffled), PERIOD, AS_OF) for t in scoring.SUBJECT_TYPES}
        assert got == expected


def published(facts, changes, effective_from, published_on=date(2023, 7, 1), position=10_000):
    [event] = domain.decide_rulebook(facts.scoring_rulebook, changes, published_on, effective_from, "县考核办文件")
    facts.apply(StoredEvent(position, str(uuid.uuid4()), "rulebook", "county", 1, event.type, 1, event.payload))
    return event.payload["version"]


def test_a_rulebook_change_holds_from_its_date_and_any_version_can_still_be_asked_for():
    facts = facts_of(county_events())
    version = published(facts, {"weights": {"cadre": {"visit_compliance": 100}}}, date(2023, 1, 1))
    # in force on 30 June, v2: visits 0 of 100 and exam 14 of 20 → 100 × 14 /120 = 11.67
    assert scoring.score("cadre", "C3", facts, PERIOD, AS_OF)["score"] == 11.67
    assert scoring.score("cadre", "C3", facts, PERIOD, AS_OF)["rulebook_version"] == version == 2
    assert scoring.score("cadre", "C3", facts, PERIOD, AS_OF, version=1)["score"] == 20.0


def test_a_score_uses_the_version_in_force_on_its_scoring_date():
    """A change effective from 1 July leaves a period scored as of 30 June alone; one scored as of
    a day in July (same facts, same period) uses it."""
    facts = facts_of(county_events())
    published(facts, {"weights": {"cadre": {"visit_compliance": 100}}}, date(2023, 7, 1))
    before = scoring.score("cadre", "C3", facts, PERIOD, AS_OF)
    assert (before["score"], before["rulebook_version"]) == (20.0, 1)
    after = scoring.score("cadre", "C3", facts, PERIOD, date(2023, 7, 2))
    assert after["rulebook_version"] == 2 and after["score"] != 20.0
    assert scoring.score("cadre", "C3", facts, scoring.parse_period("2023-Q2"), date(2023, 12, 31))["rulebook_version"] == 1


def test_a_change_recorded_later_with_an_earlier_date_does_not_undo_one_dated_after_it():
    facts = facts_of(county_events())
    published(facts, {"grade_bands": {"excellent": 95}}, date(2024, 1, 1), position=10_000)
    published(facts, {"restriction_years": 2}, date(2023, 3, 1), published_on=date(2023, 8, 1), position=10_001)
    book = facts.scoring_rulebook
    assert book.rules(day=date(2023, 6, 30)) == (3, {**DEFAULT_RULES, "restriction_years": 2})
    version, rules = book.rules(day=date(2024, 2, 1))
    assert version == 2 and rules["grade_bands"]["excellent"] == 95 and rules["restriction_years"] == 2
    view = book.view(date(2023, 6, 30))
    assert [(v["version"], v["effective_from"]) for v in view["versions"]] == \
        [(1, "1900-01-01"), (2, "2024-01-01"), (3, "2023-03-01")]
    assert view["version_in_force"] == 3 and view["versions"][2]["reason"] == "县考核办文件"


def test_the_defaults_hold_on_any_day_before_every_change():
    facts = facts_of(county_events())
    published(facts, {"restriction_years": 2}, date(1, 1, 1))
    assert facts.scoring_rulebook.rules(day=date(1, 1, 1))[0] == 2
    assert facts.scoring_rulebook.rules(day=date(1899, 12, 31))[1]["restriction_years"] == 2
    fresh = facts_of(county_events())
    assert fresh.scoring_rulebook.rules(day=date(1, 1, 1)) == (1, DEFAULT_RULES)


def test_a_change_that_would_put_a_later_book_out_of_order_is_refused():
    facts = facts_of(county_events())
    published(facts, {"grade_bands": {"good": 85}}, date(2024, 1, 1))
    with pytest.raises(RuleRefused):  # from 2024 good 85 would be above excellent 80
        domain.decide_rulebook(facts.scoring_rulebook, {"grade_bands": {"excellent": 80}}, date(2023, 7, 1),
                               date(2023, 6, 1))


def test_grade_bands_and_refused_rulebooks():
    rules = DEFAULT_RULES
    from decimal import Decimal

    assert [scoring.grade_of(Decimal(s), rules) for s in ("90", "89.99", "75", "74.99")] == \
        ["excellent", "good", "good", "poor"]
    with pytest.raises(RuleRefused):
        domain.merge_rules(rules, {"grade_bands": {"good": 95}})
    with pytest.raises(ValidationFailed):
        domain.merge_rules(rules, {"secret_bonus": 1})


def test_periods():
    assert scoring.parse_period("2023-Q3") == scoring.Period("2023-Q3", date(2023, 7, 1), date(2023, 9, 30))
    assert scoring.parse_period("2023-02").end == date(2023, 2, 28)
    for bad in ("2023-Q5", "23", "2023-13"):
        with pytest.raises(ValidationFailed):
            scoring.parse_period(bad)


def test_weekly_bulletin(facts):
    report = weekly_bulletin(facts, "2023-W24")  # 12-18 June 2023, due Friday the 16th at noon
    assert (report["from"], report["to"], report["due"]) == ("2023-06-12", "2023-06-18", "2023-06-16T12:00")
    transport = next(r for r in report["rows"] if r["id"] == "transport")
    # P1, P2 and P3 were visited on 12 June; all three active the whole month and visited → 1.0
    assert transport["visits_this_week"] == 3 and transport["month_visit_compliance"] == 1.0
    # PA done in May, PB due 30 June (not yet), PC due in August, PD cancelled: none overdue
    assert transport["projects_overdue"] == 0
    # disbursed 195,000 of 300,000 allocated by the week's end (PC's allocation comes in July)
    assert transport["disbursement_rate"] == 0.65
    t1 = next(r for r in report["rows"] if r["id"] == "T1")
    assert (t1["visits_this_week"], t1["loans_applied"], t1["exits_this_week"]) == (3, 0, 0)
    assert [r["id"] for r in report["rows"]] == ["transport", "water", "T1", "T2"]
    assert as_csv(report).decode("utf-8-sig").splitlines()[0].startswith("类别 kind")
    assert as_xlsx(report)[:2] == b"PK"


def test_the_bulletin_is_due_when_the_supervision_section_says_and_not_before_it_is_known():
    changed = {"section": "supervision", "version": 1, "effective_from": "2023-06-01", "reason": None,
               "changes": {"report_weekday": "thursday", "report_deadline": "18:00"}}
    facts = facts_of([*county_events(), StoredEvent(20_000, str(uuid.uuid4()), "rulebook", "supervision", 2,
                                                    "rules_changed", 1, changed)])
    assert weekly_bulletin(facts, "2023-W24")["due"] == "2023-06-15T18:00"
    assert weekly_bulletin(facts, "2023-W21")["due"] == "2023-05-26T12:00"  # the week before the change
    bare = Facts()
    for event in county_events():
        bare.apply(event)
    assert weekly_bulletin(bare, "2023-W24")["due"] is None


def test_a_village_assigned_to_a_unit_twice_counts_in_either_arrival_order():
    """U1 held V2 in the first half of 2022 and again from March 2023: a live consumer may get the
    2023 assignment first and a rebuild the 2022 one first; both must score 2023 the same, with V2."""
    base = county_events()

    def assigned(start, until, position):
        return StoredEvent(position, str(uuid.uuid4()), "", "", 1, "village_assigned", 1,
                           {"unit_id": "U1", "village_id": "V2", "from": start, "until": until})

    earlier, later = assigned("2022-01-01", "2022-06-30", 901), assigned("2023-03-01", None, 902)
    visit = StoredEvent(903, str(uuid.uuid4()), "", "", 1, "village_visit_recorded", 1,
                        {"visit_id": "vv3", "cadre_id": "C1", "unit_id": "U1", "village_id": "V2",
                         "visited_on": "2023-04-05", "purpose": ""})
    cards = [scoring.score("unit", "U1", facts_of(base + order + [visit]), PERIOD, AS_OF)
             for order in ([earlier, later], [later, earlier])]
    assert cards[0] == cards[1]
    leaders = indicator(cards[0], "leader_village_visits")
    assert leaders["denominator"] == 4  # C1 and C4, each for V1 and V2 (held again in 2023)


def test_one_unreadable_stored_event_is_left_out_and_listed_not_fatal_to_every_score():
    events = county_events()
    broken = StoredEvent(999, str(uuid.uuid4()), "", "", 1, "household_paired", 1, {"pairing_id": "PX"})  # no cadre
    facts = facts_of(events + [broken])
    assert scoring.score("unit", "U1", facts, PERIOD, AS_OF) == scoring.score("unit", "U1", facts_of(events), PERIOD, AS_OF)
    assert list(facts.unusable) == [broken.event_id] and "KeyError" in facts.unusable[broken.event_id]


def test_a_visits_day_and_ids_are_one_object_each_however_many_visits_name_them():
    """What keeps the persisted facts small and quick to restore (issue 17: the first ranking after
    a restart unpickled ~1 M dates and id strings one by one): every visit naming the same day,
    cadre, unit and household refers to the same objects, so the pickle holds each once."""
    facts = Facts()
    for n in range(200):  # payloads as they arrive: each decoded from JSON, its strings new objects
        payload = json.loads(json.dumps({"visit_id": f"v{n}", "pairing_id": "P-" + "1", "cadre_id": "C-" + "1",
                                         "unit_id": "U-" + "1", "household_id": "H-" + "1",
                                         "visited_on": "2023-04-03"}))
        facts.apply(StoredEvent(n + 1, str(uuid.uuid4()), "", "", 1, "visit_recorded", 1, payload))
    first, last = facts.visit_log[0], facts.visit_log[-1]
    assert first == last and all(a is b for a, b in zip(first, last))
    assert next(iter(facts.visits)) is facts._pairing("P-1").pairing_id
    one = len(pickle.dumps(facts.visit_log[:1], protocol=pickle.HIGHEST_PROTOCOL))
    assert len(pickle.dumps(facts.visit_log, protocol=pickle.HIGHEST_PROTOCOL)) < one + 200 * 16
