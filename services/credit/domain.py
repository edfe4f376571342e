"""Credit: subsidised household poverty loans (扶贫到户贷款, seed 003 第一条–第十七条). Pure: no I/O, no clock.

Streams: one per loan (stream type "loan", id = loan id) and one per township quota year
(stream type "quota", id "<township_id>:<year>"). Each `decide_*` takes the folded state (None
when the loan does not exist), a command dict whose field types marshmallow already checked
(dates are `date`, money `Decimal`), the county's `Rules`, and whatever facts from outside the
stream the rule needs (the registry's household, the remaining quota), and returns new events
or raises a domain error.
"""
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

import chinese_calendar

from services.common.errors import NotFound, RuleRefused, ValidationFailed
from services.common.events import NewEvent
from services.common.values import CENT, add_months, money, day as _day, iso as _iso

OPEN_STATUSES = ("applied", "village_reviewed", "recommended", "county_approved", "approved", "disbursed", "overdue")
LABOUR = ("full", "weak")
RATE_PLACES = Decimal("0.0001")
CALENDAR_YEARS = (min(chinese_calendar.holidays).year, max(chinese_calendar.holidays).year)


@dataclass(frozen=True)
class Rules:
    """The county rulebook's numbers for household loans (DOMAIN.md defaults; seed 003)."""

    max_term_months: int = 12  # 第三条4: 原则上不得超过一年
    household_amount_limit: Decimal = Decimal("20000")  # 第七条1: above it the county must approve too
    subsidy_rate: Decimal = Decimal("0.0258")  # 第三条5: 贴息 2.58 % a year
    day_count_basis: int = 360  # actual/360
    no_subsidy_industries: tuple = ("non_production",)  # 第三条3: 非生产性项目不予贴息
    recommendation_working_days: int = 5  # 第十二条1: the township station, after the village review
    decision_working_days: int = 10  # 第十二条2: the credit union, after the recommendation
    recovery_reward_rate: Decimal = Decimal("0.95")  # 第九条: ≥ 95 % raise quota + reward
    recovery_cut_rate: Decimal = Decimal("0.90")  # 第九条: < 90 % cut quota, no working funds
    # Years beyond the chinesecalendar release: {year: {holidays: [dates], workdays: [dates]}}
    calendar_supplement: dict = field(default_factory=dict)

    def __post_init__(self):
        for name in ("household_amount_limit", "subsidy_rate", "recovery_reward_rate", "recovery_cut_rate"):
            object.__setattr__(self, name, Decimal(str(getattr(self, name))))
        for name in ("max_term_months", "day_count_basis", "recommendation_working_days", "decision_working_days"):
            object.__setattr__(self, name, int(getattr(self, name)))
        object.__setattr__(self, "no_subsidy_industries", tuple(self.no_subsidy_industries))
        try:
            supplement = {int(year): {kind: frozenset(_day(str(d)) for d in (days or {}).get(kind, ()))
                                      for kind in ("holidays", "workdays")}
                          for year, days in (self.calendar_supplement or {}).items()}
        except (AttributeError, TypeError, ValueError) as exc:
            raise ValueError("RULES calendar_supplement must look like {2027: {holidays: [\"2027-01-01\", ...], "
                             f"workdays: [\"2027-02-07\", ...]}}: {exc}") from None
        object.__setattr__(self, "calendar_supplement", supplement)


# --- formatting -----------------------------------------------------------------------------------

def rate_text(rate):
    return format(Decimal(rate).normalize(), "f")


# --- calendar: the Chinese official working days (weekends, public holidays, 调休) ------------------

def is_working_day(day, field_name="on", supplement=None):
    """Per the official calendar. `supplement` ({year: {"holidays": {date}, "workdays": {date}}},
    Rules.calendar_supplement) covers the years the library does not know yet: the State Council
    publishes each year's holidays in the autumn before, often ahead of a library release."""
    if supplement and day.year in supplement:
        year = supplement[day.year]
        if day in year["holidays"]:
            return False
        return day in year["workdays"] or day.weekday() < 5
    try:
        return chinese_calendar.is_workday(day)
    except NotImplementedError:
        known = f"{CALENDAR_YEARS[0]}–{CALENDAR_YEARS[1]}"
        extra = f" and {', '.join(str(y) for y in sorted(supplement))}" if supplement else ""
        raise ValidationFailed(
            f"working days are known only for {known}{extra} (official calendar); {day.isoformat()} is outside it; "
            f"add that year's official holidays and make-up working days under RULES calendar_supplement",
            {field_name: [f"working days are known only for {known}{extra}"]}) from None


def add_working_days(start, count, field_name="on", supplement=None):
    """The `count`-th working day after `start` (start itself not counted)."""
    day, found = start, 0
    while found < count:
        day += timedelta(days=1)
        if is_working_day(day, field_name, supplement):
            found += 1
    return day


def working_days_between(start, end, field_name="on", supplement=None):
    """Working days after `start` up to and including `end`."""
    count, day = 0, start
    while day < end:
        day += timedelta(days=1)
        if is_working_day(day, field_name, supplement):
            count += 1
    return count


def time_limit(start, on, limit, supplement=None):
    """{due_by, working_days, within_limit} of a step taken `on` that was due `limit` working days after `start`."""
    due_by = add_working_days(start, limit, supplement=supplement)
    taken = working_days_between(start, on, supplement=supplement)
    return {"due_by": due_by.isoformat(), "working_days": taken, "within_limit": on <= due_by}


def next_review_due(on, limit, supplement=None):
    """When the review that a step starts the clock for falls due (ISO date), so the assessment
    can count a review that is late and still not done. None beyond the known calendar: the
    review itself then gets the calendar's clear 400 when it is recorded."""
    try:
        return add_working_days(on, limit, supplement=supplement).isoformat()
    except ValidationFailed:
        return None


def quarter_bounds(quarter):
    year, number = int(quarter[:4]), int(quarter[-1])
    first = date(year, 3 * number - 2, 1)
    return first, add_months(first, 3) - timedelta(days=1)


def quarter_of(day):
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


# --- state ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Loan:
    loan_id: str
    household_id: str | None
    enterprise_name: str | None
    township_id: str
    amount: Decimal
    industry: str
    term_months: int
    applied_on: date
    status: str = "applied"
    steps: dict = field(default_factory=dict)  # step name -> its event payload (without ids)
    last_step_on: date | None = None
    disbursed_on: date | None = None
    principal: Decimal | None = None
    annual_rate: Decimal | None = None
    maturity_date: date | None = None
    repayments: tuple = ()  # ((on, principal, interest), ...)
    settled_on: date | None = None
    on_time: bool | None = None
    overdue_on: date | None = None
    subsidy: dict | None = None  # the subsidy_paid payload

    @property
    def enterprise(self):
        return self.household_id is None

    @property
    def principal_repaid(self):
        return sum((principal for _, principal, _ in self.repayments), Decimal(0))

    @property
    def interest_paid(self):
        return sum((interest for _, _, interest in self.repayments), Decimal(0))

    @property
    def outstanding(self):
        return None if self.principal is None else self.principal - self.principal_repaid


STEP_OF_EVENT = {"village_reviewed": ("village_review", "passed", "village_reviewed"),
                 "township_recommended": ("township_recommendation", "recommended", "recommended"),
                 "county_approved": ("county_approval", "approved", "county_approved"),
                 "loan_decided": ("decision", "approved", "approved")}


def evolve(state, event):
    """Fold one loan event (stored or new) into the loan state."""
    p, kind = event.payload, event.type
    if kind == "loan_applied":
        return Loan(loan_id=p["loan_id"], household_id=p["household_id"], enterprise_name=p["enterprise_name"],
                    township_id=p["township_id"], amount=Decimal(p["amount"]), industry=p["industry"],
                    term_months=int(p["term_months"]), applied_on=_day(p["applied_on"]),
                    last_step_on=_day(p["applied_on"]))
    if kind in STEP_OF_EVENT:
        step, flag, status = STEP_OF_EVENT[kind]
        details = {k: v for k, v in p.items() if k not in ("loan_id", "township_id")}
        return replace(state, steps={**state.steps, step: details}, last_step_on=_day(p["on"]),
                       status=status if p[flag] else "rejected")
    if kind == "loan_disbursed":
        return replace(state, status="disbursed", disbursed_on=_day(p["on"]), last_step_on=_day(p["on"]),
                       principal=Decimal(p["principal"]), annual_rate=Decimal(p["annual_rate"]),
                       maturity_date=_day(p["maturity_date"]))
    if kind == "loan_repaid":
        return replace(state, last_step_on=_day(p["on"]), repayments=state.repayments + (
            (_day(p["on"]), Decimal(p["principal"]), Decimal(p["interest"])),))
    if kind == "loan_settled":
        return replace(state, status="settled", settled_on=_day(p["on"]), on_time=bool(p["on_time"]))
    if kind == "loan_overdue":
        return replace(state, status="overdue", overdue_on=_day(p["detected_on"]))
    if kind == "subsidy_paid":
        return replace(state, subsidy=dict(p))
    return state


def evolve_quota(state, event):
    """A township-year quota stream folds to the total allocated (quota_allocated adds a tranche)."""
    if event.type == "quota_allocated":
        return (state or Decimal(0)) + Decimal(event.payload["amount"])
    return state


def needs_county_approval(loan, rules):
    """Enterprise loans (第十三条) and household loans above the limit (第七条1) need the county's approval."""
    return loan.enterprise or loan.amount > rules.household_amount_limit


# --- subsidy (贴息) -------------------------------------------------------------------------------

def subsidy_amount(disbursed_on, principal_repayments, rules):
    """Σ principal × rate × days outstanding / basis: each repaid principal accrues from the
    disbursement to the day it was repaid. Rounded to the fen once, at the end."""
    total = sum((Decimal(principal) * rules.subsidy_rate * Decimal((on - disbursed_on).days) / rules.day_count_basis
                 for on, principal in principal_repayments), Decimal(0))
    return total.quantize(CENT, rounding=ROUND_HALF_UP)


def subsidy_view(loan, rules):
    """Whether the loan earns a subsidy, how much, and whether it was paid."""
    if loan.subsidy is not None:
        return {"eligible": True, "reason": "paid", "amount": loan.subsidy["amount"], "paid": True,
                "quarter": loan.subsidy["quarter"], "paid_on": loan.subsidy["paid_on"]}
    view = {"eligible": False, "amount": None, "paid": False, "quarter": None, "paid_on": None}
    if loan.industry in rules.no_subsidy_industries:
        return {**view, "reason": "non_production"}
    if loan.overdue_on is not None or loan.on_time is False:
        return {**view, "reason": "repaid_late"}
    if loan.status == "rejected":
        return {**view, "reason": "not_lent"}
    if loan.status != "settled":
        return {**view, "eligible": None, "reason": "not_settled"}
    amount = subsidy_amount(loan.disbursed_on, [(on, p) for on, p, _ in loan.repayments], rules)
    return {**view, "eligible": True, "reason": "due", "amount": money(amount), "quarter": quarter_of(loan.settled_on)}


def loan_view(loan, rules):
    return {
        "loan_id": loan.loan_id, "household_id": loan.household_id, "enterprise_name": loan.enterprise_name,
        "township_id": loan.township_id, "amount": money(loan.amount), "industry": loan.industry,
        "term_months": loan.term_months, "applied_on": _iso(loan.applied_on), "status": loan.status,
        "needs_county_approval": needs_county_approval(loan, rules),
        "village_review": loan.steps.get("village_review"),
        "township_recommendation": loan.steps.get("township_recommendation"),
        "county_approval": loan.steps.get("county_approval"),
        "decision": loan.steps.get("decision"),
        "disbursed_on": _iso(loan.disbursed_on),
        "principal": money(loan.principal) if loan.principal is not None else None,
        "annual_rate": rate_text(loan.annual_rate) if loan.annual_rate is not None else None,
        "maturity_date": _iso(loan.maturity_date),
        "repayments": [{"on": on.isoformat(), "principal": money(p), "interest": money(i)}
                       for on, p, i in loan.repayments],
        "principal_repaid": money(loan.principal_repaid), "interest_paid": money(loan.interest_paid),
        "outstanding": money(loan.outstanding) if loan.outstanding is not None else None,
        "settled_on": _iso(loan.settled_on), "on_time": loan.on_time, "overdue_on": _iso(loan.overdue_on),
        "subsidy": subsidy_view(loan, rules),
    }


# --- quota ----------------------------------------------------------------------------------------

def quota_stream_id(township_id, year):
    return f"{township_id}:{year}"


def decide_allocate_quota(state, command):
    """A tranche of the township's yearly loan plan (贷款计划, 第六条); tranches add up."""
    if command["amount"] <= 0:
        raise RuleRefused("a quota allocation must be more than 0", {"rule": "amount_positive"})
    return [NewEvent("quota_allocated", {"township_id": command["township_id"], "year": command["year"],
                                         "amount": money(command["amount"])})]


# --- application and borrowers --------------------------------------------------------------------

def check_borrower_standing(household, on):
    """A household borrows only while poor or under monitoring on the business date `on`: an
    exited, unmonitored household is refused (checked at application and again at the decision).
    An exit dated after `on` (a loan step recorded late) does not count yet. A monitoring-only
    household (status `monitored`, 边缘易致贫户) borrows only while its risk is open."""
    status = household.get("status")
    exited_on = _day(household.get("exited_on"))
    poor_then = status == "poor" or (status == "exited" and exited_on is not None and exited_on > on)
    if poor_then or household.get("monitored"):
        return
    raise RuleRefused(f"household {household['household_id']} is {household.get('status')} and not under "
                      "monitoring: only poor or monitored households borrow",
                      {"rule": "borrower_poor_or_monitored", "household_id": household["household_id"],
                       "status": household.get("status"), "monitored": bool(household.get("monitored"))})


def check_borrower(household, township_id, other_loans, on):
    """第五条: no loan for a household without production capacity, with an unpaid earlier loan, or a
    五保 household without labour. `household` is the registry's view; `other_loans` the household's
    other loans as [{loan_id, status}]."""
    if household.get("township_id") not in (None, township_id):
        raise RuleRefused(f"household {household['household_id']} is registered in township "
                          f"{household['township_id']}, not {township_id}",
                          {"rule": "household_in_township", "household_township_id": household["township_id"]})
    check_borrower_standing(household, on)
    members = [m for m in household.get("members") or [] if not m.get("removed_on") and not m.get("removed")]
    working = [m for m in members if m.get("labor_capacity") in LABOUR]
    if not working and household.get("five_guarantees"):
        raise RuleRefused("a 五保 household without labour capacity gets no loan",
                          {"rule": "five_guarantees_without_labour", "household_id": household["household_id"]})
    if not working:
        raise RuleRefused("no member of the household has full or weak labour capacity",
                          {"rule": "no_labour_capacity", "household_id": household["household_id"]})
    unpaid = [{"loan_id": loan["loan_id"], "status": loan["status"]} for loan in other_loans
              if loan["status"] in OPEN_STATUSES]
    if unpaid:
        raise RuleRefused("the household has an earlier loan that is not paid back (or still in progress)",
                          {"rule": "unpaid_earlier_loan", "loans": unpaid})


def decide_apply(state, command, rules, household=None, other_loans=()):
    if state is not None:
        raise RuleRefused(f"loan {command['loan_id']} already exists", {"rule": "apply_once"})
    if command["amount"] <= 0:
        raise RuleRefused("the amount must be more than 0", {"rule": "amount_positive"})
    if command["term_months"] > rules.max_term_months:
        raise RuleRefused(f"the term is {command['term_months']} months; at most {rules.max_term_months}",
                          {"rule": "term_within_limit", "max_term_months": rules.max_term_months})
    if command.get("household_id"):
        if household is None:
            raise NotFound(f"no household {command['household_id']}", {"household_id": command["household_id"]})
        check_borrower(household, command["township_id"], other_loans, command["applied_on"])
    on = command["applied_on"].isoformat()
    return [NewEvent("loan_applied", {
        "loan_id": command["loan_id"], "household_id": command.get("household_id") or None,
        "enterprise_name": command.get("enterprise_name") or None, "township_id": command["township_id"],
        "amount": money(command["amount"]), "industry": command["industry"],
        "term_months": command["term_months"], "applied_on": on}, on)]


# --- the steps, in order --------------------------------------------------------------------------

def _existing(state, command):
    if state is None:
        raise NotFound(f"no loan {command['loan_id']}", {"loan_id": command["loan_id"]})
    return state


def _expect(loan, statuses, step):
    if loan.status not in statuses:
        raise RuleRefused(f"{step} is not possible for loan {loan.loan_id} in status {loan.status}",
                          {"rule": "steps_in_order", "step": step, "status": loan.status,
                           "expected_status": list(statuses)})


def _not_before(loan, on, step):
    if loan.last_step_on is not None and on < loan.last_step_on:
        raise RuleRefused(f"{step} on {on} is before the loan's previous step on {loan.last_step_on}",
                          {"rule": "dates_in_order", "step": step, "previous_on": loan.last_step_on.isoformat()})


def _households_only(loan, step):
    if loan.enterprise:
        raise RuleRefused(f"{step} is for household loans; an enterprise loan goes to the county (第十三条)",
                          {"rule": "household_loans_only", "step": step})


def _step_event(kind, loan, command, **extra):
    on = command["on"].isoformat()
    return NewEvent(kind, {"loan_id": loan.loan_id, "township_id": loan.township_id, "on": on, **extra}, on)


def decide_village_review(state, command, rules):
    loan = _existing(state, command)
    _households_only(loan, "village_review")
    _expect(loan, ("applied",), "village_review")
    _not_before(loan, command["on"], "village_review")
    due = (next_review_due(command["on"], rules.recommendation_working_days, rules.calendar_supplement)
           if command["passed"] else None)
    return [_step_event("village_reviewed", loan, command, passed=command["passed"], note=command["note"],
                        recommendation_due_by=due)]


def decide_township_recommendation(state, command, rules):
    loan = _existing(state, command)
    _households_only(loan, "township_recommendation")
    _expect(loan, ("village_reviewed",), "township_recommendation")
    _not_before(loan, command["on"], "township_recommendation")
    reviewed_on = _day(loan.steps["village_review"]["on"])
    limit = time_limit(reviewed_on, command["on"], rules.recommendation_working_days, rules.calendar_supplement)
    # Above the limit the credit union's clock starts only once the county has approved too.
    due = (next_review_due(command["on"], rules.decision_working_days, rules.calendar_supplement)
           if command["recommended"] and not needs_county_approval(loan, rules) else None)
    return [_step_event("township_recommended", loan, command, recommended=command["recommended"],
                        note=command["note"], decision_due_by=due, **limit)]


def decide_county_approval(state, command, rules):
    loan = _existing(state, command)
    if not needs_county_approval(loan, rules):
        raise RuleRefused(f"loan {loan.loan_id} of {money(loan.amount)} yuan needs no county approval "
                          f"(only above {money(rules.household_amount_limit)} or for an enterprise)",
                          {"rule": "county_approval_not_needed", "amount": money(loan.amount),
                           "limit": money(rules.household_amount_limit)})
    _expect(loan, ("applied",) if loan.enterprise else ("recommended",), "county_approval")
    _not_before(loan, command["on"], "county_approval")
    # The credit union's 10 working days run from the later of the recommendation and this
    # approval (it always comes after the recommendation): the county's days are not its delay.
    due = (next_review_due(command["on"], rules.decision_working_days, rules.calendar_supplement)
           if command["approved"] else None)
    return [_step_event("county_approved", loan, command, approved=command["approved"], decision_due_by=due)]


def decision_clock_start(loan):
    """When the credit union's time limit starts: the later of the township recommendation and
    the county approval, whichever of them the loan went through."""
    days = [_day(loan.steps[step]["on"]) for step in ("township_recommendation", "county_approval")
            if step in loan.steps]
    return max(days)


def decide_decision(state, command, rules, remaining_quota, household=None):
    """The credit union's decision within 10 working days of the later of the recommendation and
    the county's approval (an enterprise has only the latter). An approval needs the county's
    approval first above the limit; a household loan's approval must fit in the township's
    remaining quota for the year of the decision (enterprise loans are outside the quotas,
    第十三条: `remaining_quota` is not consulted for them)."""
    loan = _existing(state, command)
    if needs_county_approval(loan, rules) and loan.status in ("recommended", "applied"):
        raise RuleRefused(f"loan {loan.loan_id} of {money(loan.amount)} yuan needs the county's approval first",
                          {"rule": "county_approval_required", "amount": money(loan.amount),
                           "limit": money(rules.household_amount_limit)})
    _expect(loan, ("county_approved",) if needs_county_approval(loan, rules) else ("recommended",), "decision")
    _not_before(loan, command["on"], "decision")
    limit = time_limit(decision_clock_start(loan), command["on"], rules.decision_working_days,
                       rules.calendar_supplement)
    if command["approved"] and household is not None:
        check_borrower_standing(household, command["on"])
    if command["approved"] and not loan.enterprise and loan.amount > remaining_quota:
        raise RuleRefused(f"the township's remaining quota for {command['on'].year} is {money(remaining_quota)} "
                          f"yuan; the loan is {money(loan.amount)}",
                          {"rule": "within_quota", "year": command["on"].year,
                           "remaining": money(remaining_quota), "amount": money(loan.amount)})
    return [_step_event("loan_decided", loan, command, approved=command["approved"], reason=command["reason"],
                        **limit)]


def decide_disbursement(state, command, rules):
    loan = _existing(state, command)
    _expect(loan, ("approved",), "disbursement")
    _not_before(loan, command["on"], "disbursement")
    maturity = add_months(command["on"], loan.term_months)
    return [_step_event("loan_disbursed", loan, command, principal=money(loan.amount),
                        annual_rate=rate_text(command["annual_rate"]), maturity_date=maturity.isoformat())]


def decide_repayment(state, command, rules):
    loan = _existing(state, command)
    _expect(loan, ("disbursed", "overdue"), "repayment")
    _not_before(loan, command["on"], "repayment")
    if command["principal"] > loan.outstanding:
        raise RuleRefused(f"{money(command['principal'])} yuan is more than the {money(loan.outstanding)} outstanding",
                          {"rule": "repayment_within_outstanding", "outstanding": money(loan.outstanding)})
    after = loan.outstanding - command["principal"]
    events = [_step_event("loan_repaid", loan, command, principal=money(command["principal"]),
                          interest=money(command["interest"]), outstanding_after=money(after))]
    if after == 0:
        events.append(_step_event("loan_settled", loan, command, maturity_date=loan.maturity_date.isoformat(),
                                  on_time=command["on"] <= loan.maturity_date))
    return events


def decide_overdue(state, as_of):
    """Once maturity has passed without full repayment, the loan is overdue (recorded once)."""
    if state is None or state.status != "disbursed" or not as_of > state.maturity_date:
        return []
    return [NewEvent("loan_overdue", {"loan_id": state.loan_id, "township_id": state.township_id,
                                      "detected_on": as_of.isoformat(),
                                      "maturity_date": state.maturity_date.isoformat(),
                                      "outstanding": money(state.outstanding)}, as_of.isoformat())]


def decide_subsidy(state, quarter, settled_on, rules):
    """The quarterly subsidy payment: a production loan settled on time in the quarter (on or
    before the settlement day) is paid once; anything else gets nothing."""
    if state is None or state.subsidy is not None or state.status != "settled" or not state.on_time:
        return []
    if state.overdue_on is not None or state.industry in rules.no_subsidy_industries:
        return []
    first, last = quarter_bounds(quarter)
    if not first <= state.settled_on <= min(last, settled_on):
        return []
    amount = subsidy_amount(state.disbursed_on, [(on, p) for on, p, _ in state.repayments], rules)
    if amount <= 0:
        return []
    return [NewEvent("subsidy_paid", {"loan_id": state.loan_id, "township_id": state.township_id,
                                      "quarter": quarter, "amount": money(amount),
                                      "paid_on": settled_on.isoformat()}, settled_on.isoformat())]


def check_settlement_date(quarter, settled_on):
    first, _ = quarter_bounds(quarter)
    if settled_on < first:
        raise RuleRefused(f"a settlement for {quarter} cannot be made on {settled_on}, before the quarter began",
                          {"rule": "settle_after_quarter_start", "quarter_starts": first.isoformat()})


# --- recovery (回收率, 第九条) ----------------------------------------------------------------------

def recovery(township_id, year, maturing, rules):
    """`maturing` = [(principal, principal repaid on or before maturity)] of the loans maturing in the year."""
    due = sum((Decimal(principal) for principal, _ in maturing), Decimal(0))
    on_time = sum((min(Decimal(repaid), Decimal(principal)) for principal, repaid in maturing), Decimal(0))
    rate = on_time / due if due else None  # compared unrounded: 89.995 % is below 90 %
    shown = None if rate is None else f"{rate.quantize(RATE_PLACES, rounding=ROUND_HALF_UP):.4f}"
    if rate is None:
        recommendation = None
    elif rate >= rules.recovery_reward_rate:
        recommendation = "raise_quota_and_reward"
    elif rate < rules.recovery_cut_rate:
        recommendation = "cut_quota_no_working_funds"
    else:
        recommendation = "keep_quota"
    return {"township_id": township_id, "year": year, "loans_due": len(maturing), "principal_due": money(due),
            "principal_repaid_on_time": money(on_time), "rate": shown,
            "recommendation": recommendation}
