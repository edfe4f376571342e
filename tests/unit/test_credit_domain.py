"""Credit domain rules (DOMAIN.md "Credit service", seed 003, issue 6): pure, no infrastructure."""
from datetime import date
from decimal import Decimal

import pytest

from services.common.errors import NotFound, RuleRefused, ValidationFailed
from services.credit import domain, schemas
from services.credit.domain import Rules
from services.common.validation import validate

RULES = Rules()
PLENTY = Decimal("1000000")


def fold(state, events):
    for event in events:
        state = domain.evolve(state, event)
    return state


def household(**changes):
    data = {"household_id": "H1", "township_id": "T1", "status": "poor", "monitored": False,
            "five_guarantees": False,
            "members": [{"person_id": "P1", "labor_capacity": "full"}, {"person_id": "P2", "labor_capacity": "none"}]}
    data.update(changes)
    return data


def apply_command(**changes):
    command = {"loan_id": "L1", "household_id": "H1", "enterprise_name": None, "township_id": "T1",
               "amount": Decimal("10000.00"), "industry": "livestock", "term_months": 12,
               "applied_on": date(2023, 3, 1)}
    command.update(changes)
    return command


def applied(**changes):
    command = apply_command(**changes)
    return fold(None, domain.decide_apply(None, command, RULES, household() if command["household_id"] else None, []))


def step(state, decide, **command):
    return fold(state, decide(state, {"loan_id": state.loan_id, **command}, RULES))


def recommended(loan=None, reviewed=date(2023, 3, 2), on=date(2023, 3, 3)):
    loan = loan or applied()
    loan = step(loan, domain.decide_village_review, on=reviewed, passed=True, note="")
    return step(loan, domain.decide_township_recommendation, on=on, recommended=True, note="")


def approved(loan=None, on=date(2023, 3, 6)):
    loan = loan or recommended()
    command = {"loan_id": loan.loan_id, "on": on, "approved": True, "reason": ""}
    return fold(loan, domain.decide_decision(loan, command, RULES, PLENTY))


def disbursed(loan=None, on=date(2023, 3, 10)):
    return step(loan or approved(), domain.decide_disbursement, on=on, annual_rate=Decimal("0.0435"))


# --- term and amount ------------------------------------------------------------------------------

def test_the_term_is_at_most_12_months():
    assert applied(term_months=12).term_months == 12
    with pytest.raises(RuleRefused) as refused:
        applied(term_months=13)
    assert refused.value.details["rule"] == "term_within_limit"
    assert fold(None, domain.decide_apply(None, apply_command(term_months=18), Rules(max_term_months=24),
                                          household(), [])).term_months == 18


def test_the_amount_must_be_more_than_zero():
    with pytest.raises(RuleRefused) as refused:
        applied(amount=Decimal("0"))
    assert refused.value.details["rule"] == "amount_positive"
    with pytest.raises(ValidationFailed) as invalid:
        validate(schemas.ApplyLoan(), {"household_id": "H1", "township_id": "T1", "amount": "-5",
                                       "industry": "livestock", "term_months": 6, "applied_on": "2023-03-01"})
    assert "amount" in invalid.value.details


def test_above_20000_a_decision_needs_the_county_approval_first():
    loan = recommended(applied(amount=Decimal("30000.00")))
    command = {"loan_id": "L1", "on": date(2023, 3, 6), "approved": True, "reason": ""}
    with pytest.raises(RuleRefused) as refused:
        domain.decide_decision(loan, command, RULES, PLENTY)
    assert refused.value.details["rule"] == "county_approval_required"
    loan = step(loan, domain.decide_county_approval, on=date(2023, 3, 5), approved=True)
    assert fold(loan, domain.decide_decision(loan, command, RULES, PLENTY)).status == "approved"
    # 20,000 exactly needs no county approval, and the county is not asked for it
    small = recommended(applied(amount=Decimal("20000.00")))
    with pytest.raises(RuleRefused) as refused:
        step(small, domain.decide_county_approval, on=date(2023, 3, 5), approved=True)
    assert refused.value.details["rule"] == "county_approval_not_needed"
    assert approved(small).status == "approved"


def test_the_county_can_refuse_a_large_loan():
    loan = recommended(applied(amount=Decimal("30000.00")))
    loan = step(loan, domain.decide_county_approval, on=date(2023, 3, 5), approved=False)
    assert loan.status == "rejected"


# --- borrowers (第五条) -----------------------------------------------------------------------------

def test_a_household_without_full_or_weak_labour_is_refused():
    members = [{"person_id": "P1", "labor_capacity": "none"}]
    with pytest.raises(RuleRefused) as refused:
        domain.decide_apply(None, apply_command(), RULES, household(members=members), [])
    assert refused.value.details["rule"] == "no_labour_capacity"
    weak = [{"person_id": "P1", "labor_capacity": "weak"}]
    assert domain.decide_apply(None, apply_command(), RULES, household(members=weak), [])


def test_a_five_guarantees_household_without_labour_is_refused():
    members = [{"person_id": "P1", "labor_capacity": "none"}]
    with pytest.raises(RuleRefused) as refused:
        domain.decide_apply(None, apply_command(), RULES, household(members=members, five_guarantees=True), [])
    assert refused.value.details["rule"] == "five_guarantees_without_labour"


def test_a_household_with_an_unpaid_earlier_loan_is_refused():
    for status in ("disbursed", "overdue", "approved"):
        with pytest.raises(RuleRefused) as refused:
            domain.decide_apply(None, apply_command(), RULES, household(), [{"loan_id": "L0", "status": status}])
        assert refused.value.details["rule"] == "unpaid_earlier_loan"
    others = [{"loan_id": "L0", "status": "settled"}, {"loan_id": "L00", "status": "rejected"}]
    assert domain.decide_apply(None, apply_command(), RULES, household(), others)


def test_a_household_of_another_township_or_unknown_is_refused():
    with pytest.raises(RuleRefused) as refused:
        domain.decide_apply(None, apply_command(), RULES, household(township_id="T2"), [])
    assert refused.value.details["rule"] == "household_in_township"
    with pytest.raises(NotFound):
        domain.decide_apply(None, apply_command(), RULES, None, [])


def test_an_enterprise_needs_no_household_but_goes_to_the_county():
    loan = applied(household_id=None, enterprise_name="县桑蚕合作社", amount=Decimal("80000.00"))
    with pytest.raises(RuleRefused) as refused:
        step(loan, domain.decide_village_review, on=date(2023, 3, 2), passed=True, note="")
    assert refused.value.details["rule"] == "household_loans_only"
    loan = step(loan, domain.decide_county_approval, on=date(2023, 3, 2), approved=True)
    assert approved(loan, on=date(2023, 3, 6)).status == "approved"


def test_an_enterprise_loan_skips_village_and_township_and_is_outside_the_quota():
    loan = applied(household_id=None, enterprise_name="县桑蚕合作社", amount=Decimal("80000.00"))
    with pytest.raises(RuleRefused) as refused:
        step(loan, domain.decide_township_recommendation, on=date(2023, 3, 2), recommended=True, note="")
    assert refused.value.details["rule"] == "household_loans_only"
    with pytest.raises(RuleRefused) as refused:  # the credit union decides only after the county
        fold(loan, domain.decide_decision(loan, {"loan_id": loan.loan_id, "on": date(2023, 3, 6), "approved": True,
                                                 "reason": ""}, RULES, PLENTY))
    assert refused.value.details["rule"] == "county_approval_required"
    loan = step(loan, domain.decide_county_approval, on=date(2023, 3, 2), approved=True)
    decision = {"loan_id": loan.loan_id, "on": date(2023, 3, 6), "approved": True, "reason": ""}
    # no township quota left at all: the enterprise is approved anyway (第十三条)
    assert fold(loan, domain.decide_decision(loan, decision, RULES, Decimal(0))).status == "approved"
    with pytest.raises(RuleRefused) as refused:  # a household loan is still bound by the quota
        fold(recommended(), domain.decide_decision(recommended(), decision, RULES, Decimal(0)))
    assert refused.value.details["rule"] == "within_quota"


def test_above_the_limit_the_credit_unions_days_run_from_the_county_approval():
    # recommended Mon 2023-03-06, the county approves Mon 2023-03-20, the credit union decides on
    # Fri 2023-03-31: 9 working days after the county, 19 after the recommendation: on time
    loan = recommended(applied(amount=Decimal("30000.00")), reviewed=date(2023, 3, 3), on=date(2023, 3, 6))
    assert loan.steps["township_recommendation"]["decision_due_by"] is None  # the clock has not started
    [event] = domain.decide_county_approval(loan, {"loan_id": loan.loan_id, "on": date(2023, 3, 20),
                                                   "approved": True}, RULES)
    assert event.payload["decision_due_by"] == "2023-04-03"
    loan = fold(loan, [event])
    decided = approved(loan, on=date(2023, 3, 31))
    assert {k: decided.steps["decision"][k] for k in ("due_by", "working_days", "within_limit")} == \
        {"due_by": "2023-04-03", "working_days": 9, "within_limit": True}
    late = approved(loan, on=date(2023, 4, 4))
    assert late.steps["decision"]["within_limit"] is False
    # at or below the limit the clock still starts at the recommendation
    assert recommended(on=date(2023, 3, 6)).steps["township_recommendation"]["decision_due_by"] == "2023-03-20"


# --- steps in order ---------------------------------------------------------------------------------

def test_steps_come_in_order_and_dates_do_not_go_back():
    loan = applied()
    with pytest.raises(RuleRefused) as refused:
        step(loan, domain.decide_township_recommendation, on=date(2023, 3, 3), recommended=True, note="")
    assert refused.value.details["rule"] == "steps_in_order"
    with pytest.raises(RuleRefused) as refused:
        step(loan, domain.decide_village_review, on=date(2023, 2, 28), passed=True, note="")
    assert refused.value.details["rule"] == "dates_in_order"
    with pytest.raises(RuleRefused) as refused:
        step(recommended(), domain.decide_disbursement, on=date(2023, 3, 10), annual_rate=Decimal("0.04"))
    assert refused.value.details["rule"] == "steps_in_order"
    failed = step(loan, domain.decide_village_review, on=date(2023, 3, 2), passed=False, note="诚信不足")
    assert failed.status == "rejected"
    with pytest.raises(RuleRefused):
        step(failed, domain.decide_township_recommendation, on=date(2023, 3, 3), recommended=True, note="")
    with pytest.raises(NotFound):
        domain.decide_village_review(None, {"loan_id": "nope", "on": date(2023, 3, 1), "passed": True, "note": ""},
                                     RULES)


def test_disbursement_sets_maturity_to_the_date_plus_the_term():
    loan = disbursed(approved(recommended(applied(term_months=12))), on=date(2023, 3, 10))
    assert (loan.maturity_date, loan.principal, loan.status) == (date(2024, 3, 10), Decimal("10000.00"), "disbursed")
    short = disbursed(approved(recommended(applied(term_months=1))), on=date(2023, 3, 31))
    assert short.maturity_date == date(2023, 4, 30)


# --- working days (Chinese official calendar) -------------------------------------------------------

def test_working_days_skip_national_day_and_count_the_make_up_saturday():
    # 2023: 29 Sep – 6 Oct holiday; Saturday 7 and Sunday 8 October are make-up working days.
    assert domain.add_working_days(date(2023, 9, 28), 1) == date(2023, 10, 7)
    assert domain.add_working_days(date(2023, 9, 28), 5) == date(2023, 10, 11)
    assert domain.working_days_between(date(2023, 9, 28), date(2023, 10, 8)) == 2
    limit = domain.time_limit(date(2023, 9, 28), date(2023, 10, 11), 5)
    assert limit == {"due_by": "2023-10-11", "working_days": 5, "within_limit": True}
    assert domain.time_limit(date(2023, 9, 28), date(2023, 10, 12), 5)["within_limit"] is False
    # an ordinary week: Friday review, due the next Friday
    assert domain.add_working_days(date(2023, 3, 3), 5) == date(2023, 3, 10)


def test_the_recommendation_and_decision_record_their_working_day_limits():
    loan = recommended(reviewed=date(2023, 9, 28), on=date(2023, 10, 12))
    assert {k: loan.steps["township_recommendation"][k] for k in ("due_by", "working_days", "within_limit")} == \
        {"due_by": "2023-10-11", "working_days": 6, "within_limit": False}
    loan = approved(loan, on=date(2023, 10, 26))
    assert {k: loan.steps["decision"][k] for k in ("due_by", "working_days", "within_limit")} == \
        {"due_by": "2023-10-26", "working_days": 10, "within_limit": True}


def test_a_year_the_library_does_not_know_yet_comes_from_the_rulebook_supplement():
    # chinesecalendar 1.11 stops at 2026; a county adds the State Council's notice for 2027.
    with pytest.raises(ValidationFailed) as invalid:
        domain.add_working_days(date(2026, 12, 30), 5)
    assert "calendar_supplement" in invalid.value.message
    rules = Rules(calendar_supplement={2027: {"holidays": ["2027-01-01"], "workdays": ["2027-01-10"]}})
    # Thu 31 Dec (1), Fri 1 Jan holiday, weekend, Mon 4 – Thu 7 Jan (2–5)
    assert domain.add_working_days(date(2026, 12, 30), 5, supplement=rules.calendar_supplement) == date(2027, 1, 7)
    # Sunday 10 January is a make-up working day (调休)
    assert domain.working_days_between(date(2027, 1, 8), date(2027, 1, 11), supplement=rules.calendar_supplement) == 2
    loan = applied()
    loan = fold(loan, domain.decide_village_review(loan, {"loan_id": loan.loan_id, "on": date(2026, 12, 30),
                                                          "passed": True, "note": ""}, rules))
    events = domain.decide_township_recommendation(loan, {"loan_id": loan.loan_id, "on": date(2027, 1, 8),
                                                          "recommended": True, "note": ""}, rules)
    assert (events[0].payload["due_by"], events[0].payload["within_limit"]) == ("2027-01-07", False)


def test_each_step_names_when_the_next_review_falls_due():
    # So the assessment can count a review that is late and still not done.
    loan = applied()
    events = domain.decide_village_review(loan, {"loan_id": loan.loan_id, "on": date(2023, 9, 28), "passed": True,
                                                 "note": ""}, RULES)
    assert events[0].payload["recommendation_due_by"] == "2023-10-11"  # 5 working days across National Day
    loan = fold(applied(), events)
    events = domain.decide_township_recommendation(loan, {"loan_id": loan.loan_id, "on": date(2023, 10, 9),
                                                          "recommended": True, "note": ""}, RULES)
    assert events[0].payload["decision_due_by"] == "2023-10-23"  # 10 working days
    refused = domain.decide_village_review(applied(), {"loan_id": loan.loan_id, "on": date(2023, 9, 28),
                                                       "passed": False, "note": ""}, RULES)
    assert refused[0].payload["recommendation_due_by"] is None  # a refused loan has nothing more due
    # beyond the known calendar the due date is left out rather than refusing the step
    assert domain.next_review_due(date(2035, 1, 1), 5) is None


def test_a_date_outside_the_official_calendar_is_a_clear_error():
    with pytest.raises(ValidationFailed) as invalid:
        domain.add_working_days(date(2035, 1, 1), 5)
    assert "working days are known only" in invalid.value.message


# --- quota ------------------------------------------------------------------------------------------

def test_an_approval_beyond_the_remaining_quota_is_refused():
    loan = recommended()
    command = {"loan_id": "L1", "on": date(2023, 3, 6), "approved": True, "reason": ""}
    with pytest.raises(RuleRefused) as refused:
        domain.decide_decision(loan, command, RULES, Decimal("9999.99"))
    assert refused.value.details == {"rule": "within_quota", "year": 2023, "remaining": "9999.99",
                                     "amount": "10000.00"}
    assert domain.decide_decision(loan, command, RULES, Decimal("10000.00"))
    refusal = {**command, "approved": False, "reason": "资信不足"}
    assert fold(loan, domain.decide_decision(loan, refusal, RULES, Decimal(0))).status == "rejected"


def test_quota_tranches_add_up():
    events = domain.decide_allocate_quota(None, {"township_id": "T1", "year": 2023, "amount": Decimal("300000")})
    assert events[0].payload == {"township_id": "T1", "year": 2023, "amount": "300000.00"}
    total = None
    for event in events * 2:
        total = domain.evolve_quota(total, event)
    assert total == Decimal("600000.00")


# --- repayment, settlement, overdue ---------------------------------------------------------------

def repay(loan, on, principal, interest="0"):
    return step(loan, domain.decide_repayment, on=on, principal=Decimal(principal), interest=Decimal(interest))


def test_full_repayment_settles_on_time_or_late_and_overpaying_is_refused():
    loan = disbursed()  # maturity 2024-03-10
    loan = repay(loan, date(2023, 9, 10), "4000.00", "100.00")
    assert (loan.status, loan.outstanding) == ("disbursed", Decimal("6000.00"))
    with pytest.raises(RuleRefused) as refused:
        repay(loan, date(2023, 9, 11), "6000.01")
    assert refused.value.details["rule"] == "repayment_within_outstanding"
    settled = repay(loan, date(2024, 3, 10), "6000.00")
    assert (settled.status, settled.on_time) == ("settled", True)
    late = repay(loan, date(2024, 3, 11), "6000.00")
    assert (late.status, late.on_time) == ("settled", False)


def test_overdue_is_detected_once_after_maturity():
    loan = disbursed()  # maturity 2024-03-10
    assert domain.decide_overdue(loan, date(2024, 3, 10)) == []
    events = domain.decide_overdue(loan, date(2024, 3, 11))
    assert events[0].payload == {"loan_id": "L1", "township_id": "T1", "detected_on": "2024-03-11",
                                 "maturity_date": "2024-03-10", "outstanding": "10000.00"}
    loan = fold(loan, events)
    assert domain.decide_overdue(loan, date(2024, 4, 1)) == []
    assert repay(loan, date(2024, 4, 1), "10000.00").on_time is False


# --- subsidy (贴息) ----------------------------------------------------------------------------------

def test_subsidy_on_a_partial_repayment_example():
    # 10,000 disbursed 2023-03-10; 4,000 repaid 2023-09-10 (184 days), 6,000 on 2024-03-10 (366 days):
    # 4000 × 0.0258 × 184/360 + 6000 × 0.0258 × 366/360 = 52.7467 + 157.38 = 210.13
    amount = domain.subsidy_amount(date(2023, 3, 10), [(date(2023, 9, 10), Decimal("4000")),
                                                       (date(2024, 3, 10), Decimal("6000"))], RULES)
    assert amount == Decimal("210.13")
    loan = repay(repay(disbursed(), date(2023, 9, 10), "4000.00"), date(2024, 3, 10), "6000.00")
    events = domain.decide_subsidy(loan, "2024-Q1", date(2024, 4, 3), RULES)
    assert events[0].payload == {"loan_id": "L1", "township_id": "T1", "quarter": "2024-Q1", "amount": "210.13",
                                 "paid_on": "2024-04-03"}
    assert domain.subsidy_amount(date(2023, 3, 10), [(date(2023, 9, 10), Decimal("4000"))],
                                 Rules(subsidy_rate="0.03", day_count_basis=365)) == Decimal("60.49")


def test_the_subsidy_is_paid_once_and_only_in_the_quarter_of_settlement():
    loan = repay(disbursed(), date(2023, 9, 10), "10000.00")
    assert domain.decide_subsidy(loan, "2023-Q2", date(2023, 10, 5), RULES) == []
    assert domain.decide_subsidy(loan, "2023-Q3", date(2023, 9, 1), RULES) == []  # not settled yet that day
    paid = fold(loan, domain.decide_subsidy(loan, "2023-Q3", date(2023, 10, 5), RULES))
    assert paid.subsidy["amount"] == "131.87"  # 10000 × 0.0258 × 184 / 360
    assert domain.decide_subsidy(paid, "2023-Q3", date(2023, 10, 6), RULES) == []


def test_late_and_non_production_loans_get_no_subsidy():
    late = repay(disbursed(), date(2024, 3, 11), "10000.00")
    assert domain.decide_subsidy(late, "2024-Q1", date(2024, 4, 3), RULES) == []
    assert domain.subsidy_view(late, RULES)["reason"] == "repaid_late"
    flagged = repay(fold(disbursed(), domain.decide_overdue(disbursed(), date(2024, 3, 11))), date(2024, 3, 20),
                    "10000.00")
    assert domain.decide_subsidy(flagged, "2024-Q1", date(2024, 4, 3), RULES) == []
    loan = disbursed(approved(recommended(applied(industry="non_production"))))
    loan = repay(loan, date(2023, 9, 10), "10000.00")
    assert domain.decide_subsidy(loan, "2023-Q3", date(2023, 10, 5), RULES) == []
    assert domain.subsidy_view(loan, RULES)["reason"] == "non_production"


def test_a_settlement_before_the_quarter_is_refused():
    with pytest.raises(RuleRefused):
        domain.check_settlement_date("2023-Q3", date(2023, 6, 30))
    assert domain.quarter_bounds("2023-Q4") == (date(2023, 10, 1), date(2023, 12, 31))


# --- recovery (第九条) -------------------------------------------------------------------------------

def test_recovery_rate_recommends_raise_keep_or_cut():
    def rec(repaid):
        return domain.recovery("T1", 2023, [(Decimal("10000"), Decimal(repaid)), (Decimal("10000"), Decimal("10000"))],
                               RULES)
    high = rec("9000")  # 19000 / 20000 = 0.95
    assert (high["principal_due"], high["principal_repaid_on_time"], high["rate"], high["recommendation"]) == \
        ("20000.00", "19000.00", "0.9500", "raise_quota_and_reward")
    assert rec("8000")["recommendation"] == "keep_quota"  # 0.90
    assert rec("7999")["recommendation"] == "cut_quota_no_working_funds"
    assert domain.recovery("T1", 2023, [], RULES)["rate"] is None
    assert domain.recovery("T1", 2023, [(Decimal("100"), Decimal("90"))],
                           Rules(recovery_reward_rate="0.9"))["recommendation"] == "raise_quota_and_reward"


def test_an_exited_unmonitored_household_is_refused_at_application_and_at_decision():
    exited = household(status="exited", monitored=False, exited_on="2023-01-15")
    with pytest.raises(RuleRefused) as refused:
        domain.decide_apply(None, apply_command(), RULES, exited, [])
    assert refused.value.details["rule"] == "borrower_poor_or_monitored"
    assert domain.decide_apply(None, apply_command(), RULES, household(status="exited", monitored=True), [])
    later_exit = household(status="exited", monitored=False, exited_on="2023-12-15")  # after the application
    assert domain.decide_apply(None, apply_command(), RULES, later_exit, [])
    loan = fold(None, domain.decide_apply(None, apply_command(), RULES, household(), []))
    loan = fold(loan, domain.decide_village_review(loan, {"loan_id": loan.loan_id, "on": date(2023, 3, 1),
                                                          "passed": True, "note": ""}, RULES))
    loan = fold(loan, domain.decide_township_recommendation(
        loan, {"loan_id": loan.loan_id, "on": date(2023, 3, 2), "recommended": True, "note": ""}, RULES))
    decision = {"loan_id": loan.loan_id, "on": date(2023, 3, 3), "approved": True, "reason": ""}
    with pytest.raises(RuleRefused) as refused:
        domain.decide_decision(loan, decision, RULES, PLENTY, exited)
    assert refused.value.details["rule"] == "borrower_poor_or_monitored"
    assert domain.decide_decision(loan, decision, RULES, PLENTY, household())


def test_a_monitoring_only_household_borrows_only_while_its_risk_is_open():
    marginal = household(status="monitored", monitored=True)
    assert domain.decide_apply(None, apply_command(), RULES, marginal, [])
    cleared = household(status="monitored", monitored=False)
    with pytest.raises(RuleRefused) as refused:
        domain.decide_apply(None, apply_command(), RULES, cleared, [])
    assert refused.value.details["rule"] == "borrower_poor_or_monitored"
