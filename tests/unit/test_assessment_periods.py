"""Closing a month, pure parts: which month an event corrects, the refusals, the pay sheet."""
from datetime import date

import pytest

from services.assessment import periods
from services.common.errors import Conflict, RuleRefused, ValidationFailed
from services.common.events import StoredEvent


def test_the_month_an_event_is_about():
    assert periods.business_date("visit_recorded", {"visited_on": "2023-05-31"}) == date(2023, 5, 31)
    assert periods.business_date("residency_reported", {"month": "2023-05", "days": 20}) == date(2023, 5, 1)
    # a project counts in its deadline's month, a loan in its maturity's month
    assert periods.business_date("project_planned", {"deadline": "2023-08-31", "plan_year": 2023}) == date(2023, 8, 31)
    assert periods.business_date("loan_disbursed", {"on": "2023-03-10", "maturity_date": "2024-03-09"}) == \
        date(2024, 3, 9)
    assert periods.business_date("rating_recorded", {"rated_on": "2023-01-02"}, "2023-01-02") == date(2023, 1, 2)
    assert periods.business_date("weekly_report_submitted", {"due_at": "2023-06-09T12:00:00+08:00",
                                                              "reported_at": "2023-06-12T09:00:00+08:00"}) == \
        date(2023, 6, 9)
    assert periods.business_date("unit_registered", {"name": "x"}) is None


def closed_state(on="2023-06-05"):
    state = periods.evolve_month(None, StoredEvent(7, "e1", "period", "2023-05", 1, "month_closed", 1, {
        "month": "2023-05", "on": on, "as_of": on, "rulebook_version": 1, "watermark": {}, "summary": {},
        "results": {"cadre": []}}))
    return state


def test_a_month_closes_once_complete_never_twice_never_ahead_of_today():
    command = {"on": date(2023, 5, 31), "note": ""}
    with pytest.raises(RuleRefused):  # its last day has not passed
        periods.decide_close(None, "2023-05", command, date(2024, 1, 1), {}, {}, 1)
    with pytest.raises(RuleRefused):  # the closing date is still to come
        periods.decide_close(None, "2023-05", {"on": date(2023, 6, 2)}, date(2023, 6, 1), {}, {}, 1)
    with pytest.raises(Conflict):
        periods.decide_close(closed_state(), "2023-05", {"on": date(2023, 6, 9)}, date(2024, 1, 1), {}, {}, 1)
    with pytest.raises(ValidationFailed):
        periods.decide_close(None, "2023-5", {"on": date(2023, 6, 9)}, date(2024, 1, 1), {}, {}, 1)
    [event] = periods.decide_close(None, "2023-05", {"on": date(2023, 6, 1)}, date(2024, 1, 1),
                                   {"cadre": []}, {"assistance": 9}, 3)
    assert event.type == "month_closed" and event.payload["watermark"] == {"assistance": 9}
    assert event.payload["rulebook_version"] == 3 and event.occurred_on == "2023-06-01"


def test_reopening_needs_a_closed_month_and_a_reason():
    with pytest.raises(Conflict):
        periods.decide_reopen(None, "2023-05", {"on": date(2023, 7, 1), "reason": "x"}, date(2024, 1, 1))
    with pytest.raises(RuleRefused):
        periods.decide_reopen(closed_state(), "2023-05", {"on": date(2023, 7, 1), "reason": " "}, date(2024, 1, 1))
    with pytest.raises(RuleRefused):  # before it was closed
        periods.decide_reopen(closed_state(), "2023-05", {"on": date(2023, 6, 1), "reason": "x"}, date(2024, 1, 1))
    [event] = periods.decide_reopen(closed_state(), "2023-05", {"on": date(2023, 7, 1), "reason": " 补录 "},
                                    date(2024, 1, 1))
    assert event.payload["reason"] == "补录" and event.payload["closed_on"] == "2023-06-05"


def test_pay_sheet_rows_pay_zero_when_withheld_and_add_rewards():
    cards = [
        {"subject_id": "C2", "name": "乙", "unit_id": "U1", "unit_name": "交通局", "score": 83.33, "grade": "poor",
         "vetoed": True, "veto_reasons": ["2023-04-20 差 rating from province"],
         "pay": {"monthly_performance_pay": "0.00", "rewards": "0.00", "withheld_amount": "750.00",
                 "restrictions": ["不评优", "不调动", "不提拔", "年终末位"], "restrictions_until": "2024-04-20"}},
        {"subject_id": "C1", "name": "甲", "unit_id": "U1", "unit_name": "交通局", "score": 100.0, "grade": "excellent",
         "vetoed": False, "pay": {"monthly_performance_pay": "850.00", "rewards": "1000.00", "withheld_amount": "0.00",
                                  "restrictions": [], "restrictions_until": None}},
    ]
    rows = periods.pay_sheet_rows(cards)
    assert [(r["cadre"], r["performance_pay"], r["rewards"], r["withheld"], r["total"]) for r in rows] == [
        ("乙", "0.00", "0.00", "750.00", "0.00"), ("甲", "850.00", "1000.00", "0.00", "1850.00")]
    assert periods.totals(rows) == {"cadres": 2, "performance_pay": "850.00", "rewards": "1000.00",
                                    "withheld": "750.00", "total": "1850.00"}
