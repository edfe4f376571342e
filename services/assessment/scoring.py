"""Scores (考核) as a pure function of the facts: no I/O, no clock.

`score` computes one subject's indicators for a period as of a date under a rulebook (read from
the facts, facts.py); `rank` orders subjects. Every number a county may change lives in the
rulebook, which is itself versioned and effective-dated by events (`rulebook_published`): a score
uses the version in force on its scoring date, min(period end, as-of).
"""
import bisect
import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from services.common.errors import ValidationFailed

from . import supervision
from .facts import RulesInForce
from .schemas import EXTERNAL_SOURCES, SUBJECT_TYPES


# --- periods ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Period:
    label: str
    start: date
    end: date

    @property
    def is_month(self):
        return (self.start.year, self.start.month) == (self.end.year, self.end.month)

    def months(self):
        current = date(self.start.year, self.start.month, 1)
        while current <= self.end:
            yield current
            current = _next_month(current)


def parse_period(label):
    try:
        if len(label) == 4:
            year = int(label)
            return Period(label, date(year, 1, 1), date(year, 12, 31))
        if "-Q" in label:
            year, quarter = int(label[:4]), int(label[-1])
            if not 1 <= quarter <= 4:
                raise ValueError
            first = date(year, quarter * 3 - 2, 1)
            return Period(label, first, _month_end(date(year, quarter * 3, 1)))
        year, month = int(label[:4]), int(label[5:7])
        return Period(label, date(year, month, 1), _month_end(date(year, month, 1)))
    except (ValueError, IndexError):
        raise ValidationFailed("period must look like 2023, 2023-Q3 or 2023-05", {"period": ["invalid"]}) from None


def _month_end(day):
    return date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])


def _next_month(day):
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def complete_months(period, as_of):
    """Months of the period whose last day has passed on the as-of date (a month counts only
    once it is complete)."""
    return [m for m in period.months() if _month_end(m) <= as_of]


def month_label(day):
    return f"{day.year}-{day.month:02d}"


def iso_week(label):
    try:
        year, week = int(label[:4]), int(label[6:])
        monday = date.fromisocalendar(year, week, 1)
    except (ValueError, IndexError):
        raise ValidationFailed("week must look like 2023-W18", {"week": ["invalid"]}) from None
    return monday, monday + timedelta(days=6)


# --- indicators ------------------------------------------------------------------------------
@dataclass
class Indicator:
    name: str
    weight: int
    numerator: Decimal
    denominator: Decimal
    ratio: Decimal  # 0..1, what the points are made of
    evidence: list

    @property
    def points(self):
        return Decimal(self.weight) * self.ratio

    def as_dict(self):
        return {"name": self.name, "weight": self.weight, "numerator": _num(self.numerator),
                "denominator": _num(self.denominator), "points": float(round(self.points, 4)),
                "evidence": self.evidence}


def _num(value):
    value = Decimal(value)
    return int(value) if value == value.to_integral() else float(round(value, 4))


def _ratio(numerator, denominator):
    return Decimal(numerator) / Decimal(denominator)


def _visit_compliance(pairings, facts, period, as_of, rules):
    """(pairing, complete month) pairs active the whole month; visited = at least the assistance
    section's `visits_per_month` visits on distinct days that month (two records of one day are
    one visit). The value is read only when a pairing is due (rules.RulesInForce)."""
    months = [(month, _month_end(month), month_label(month)) for month in complete_months(period, as_of)]
    due = visited = 0
    required = None
    evidence = []
    for pairing in pairings:
        days = facts.visits.get(pairing.pairing_id, ())
        visits_by_month = {}
        for d in days:
            visits_by_month[(d.year, d.month)] = visits_by_month.get((d.year, d.month), 0) + 1
        for month, month_end, label in months:
            if not pairing.active_whole(month, month_end):
                continue
            due += 1
            if required is None:
                required = int(rules["visits_per_month"])
            made = visits_by_month.get((month.year, month.month), 0)
            if made >= required:
                visited += 1
            else:
                evidence.append({"household_id": pairing.household_id, "month": label,
                                 "cadre_id": pairing.cadre_id, "pairing_id": pairing.pairing_id,
                                 "visits": made, "required": required})
    evidence.sort(key=lambda item: (item["month"], item["household_id"] or ""))
    return due, visited, evidence


def _pairing_cadres(pairings, period, as_of):
    last = min(period.end, as_of)
    return sorted({p.cadre_id for p in pairings if p.active_any(period.start, last)})


def exam_held(index, period, as_of):
    """An exam was held in the period (up to as-of): some cadre has a score for an exam taken then."""
    last = min(period.end, as_of)
    days = index["exam_days"]
    at = bisect.bisect_left(days, period.start)
    return at < len(days) and days[at] <= last


def _exam(cadre_ids, facts, index, period, as_of):
    """Mean of each pairing cadre's best score / that exam's maximum; applies only to a period
    in which an exam was held (a month without one neither rewards nor punishes)."""
    if not exam_held(index, period, as_of):
        return Decimal(0), Decimal(0), []
    last = min(period.end, as_of)
    total, evidence = Decimal(0), []
    for cadre_id in cadre_ids:
        scores = [(score / maximum, score, maximum) for day, score, maximum in facts.exams.get(cadre_id, {}).values()
                  if period.start <= day <= last and maximum > 0]
        ratio, best, maximum = max(scores) if scores else (Decimal(0), None, None)
        total += min(Decimal(1), ratio)
        if ratio < 1:
            evidence.append({"cadre_id": cadre_id, "best_score": None if best is None else _num(best),
                             "max_score": None if maximum is None else _num(maximum)})
    return total, Decimal(len(cadre_ids)), evidence


def _checks(checks, period, as_of):
    last = min(period.end, as_of)
    in_period = [c for c in checks if period.start <= c[0] <= last]
    failed = [{"household_id": c[4], "checked_on": c[0].isoformat(), "cadre_id": c[1]} for c in in_period if not c[3]]
    return sum(1 for c in in_period if c[3]), len(in_period), sorted(failed, key=lambda f: f["checked_on"])


def _ratings(ratings, period, as_of, rules):
    last = min(period.end, as_of)
    values = {k: Decimal(str(v)) for k, v in rules["rating_values"].items()}
    in_period = [r for r in ratings if period.start <= r["rated_on"] <= last]
    evidence = [{"rating": r["rating"], "source": r["source"], "rated_on": r["rated_on"].isoformat()}
                for r in sorted(in_period, key=lambda r: r["rated_on"]) if r["rating"] != "good"]
    return sum((values[r["rating"]] for r in in_period), Decimal(0)), len(in_period), evidence


def _leader_visits(unit_id, facts, index, period, as_of, rules):
    months = len(complete_months(period, as_of))
    last = min(period.end, as_of)
    total, pairs, evidence = Decimal(0), 0, []
    villages = facts.assignments.get(unit_id, {})
    cadres = index["cadres_by_unit"].get(unit_id, [])
    if not cadres:
        return total, pairs, evidence
    required_per_year = rules["leader_village_visits_per_year"]
    for cadre_id in cadres:
        rank = facts.cadres[cadre_id]["rank"]
        if rank not in required_per_year:
            continue
        required = int(required_per_year[rank]) * months // 12
        if required == 0:
            continue
        for village_id, periods in sorted(villages.items()):
            if not any(not ((start and start > last) or (until and until < period.start))
                       for start, until in periods.values()):
                continue
            visits = sum(1 for d in facts.village_visits.get((cadre_id, village_id), {}).values()
                         if period.start <= d <= last)
            pairs += 1
            total += min(Decimal(1), _ratio(visits, required))
            if visits < required:
                evidence.append({"cadre_id": cadre_id, "village_id": village_id, "visits": visits, "required": required})
    return total, pairs, evidence


def _counts_as_cancelled(project, as_of):
    """A cancellation drops a project out only when dated on or before its deadline, and only
    once it has happened on the as-of date: cancelling a late project lifts no score, past or present."""
    return project.cancelled_on is not None and project.cancelled_on <= as_of and (
        project.deadline is None or project.cancelled_on <= project.deadline)


def _project_delivery(projects, period, as_of):
    last = min(period.end, as_of)
    due = [p for p in projects if p.deadline and period.start <= p.deadline <= last
           and not _counts_as_cancelled(p, as_of)]
    on_time = {p.project_id for p in due if p.completed_on and p.completed_on <= p.deadline}
    evidence = [{"project_id": p.project_id, "title": p.title, "deadline": p.deadline.isoformat(),
                 "completed_on": p.completed_on.isoformat() if p.completed_on else None,
                 "cancelled_on": p.cancelled_on.isoformat() if p.cancelled_on and p.cancelled_on <= as_of else None,
                 "late": True} for p in sorted(due, key=lambda p: p.project_id) if p.project_id not in on_time]
    return len(on_time), len(due), evidence


def _disbursement(projects, facts, period, as_of, rules):
    if not projects:
        return Decimal(0), Decimal(0), None
    year = period.start.year
    month, day = (int(x) for x in rules["disbursement_by"].split("-"))
    # Measured at the end of the period (or as-of, if earlier), never past the target date: a
    # month's score shows the progress at that month's end.
    cutoff = min(period.end, as_of, date(year, month, day))
    # A project cancelled by the cutoff leaves its funds out; one cancelled later still had to pay out.
    ids = {p.project_id for p in projects if p.plan_year == year and not (p.cancelled_on and p.cancelled_on <= cutoff)}
    allocated = sum((a for pid, d, a in facts.allocations.values() if pid in ids and d <= cutoff), Decimal(0))
    disbursed = sum((a for pid, d, a in facts.disbursements.values() if pid in ids and d <= cutoff), Decimal(0))
    return disbursed, allocated, cutoff


def _residency(cadre_id, facts, index, period, as_of, rules):
    stationed = due = 0
    evidence = []
    for month in complete_months(period, as_of):
        last = _month_end(month)
        if not any(s <= month and (u is None or u >= last)
                   for _, s, u in index["stationings_by_cadre"].get(cadre_id, [])):
            continue
        stationed += 1
        days = facts.residency.get((cadre_id, month_label(month)), (0, 0))[1]
        if days >= int(rules["residency_min_days"]):
            due += 1
        else:
            evidence.append({"month": month_label(month), "days": days})
    return due, stationed, evidence


def _recovery(loans, period, as_of):
    last = min(period.end, as_of)
    maturing = [loan for loan in loans if loan.maturity and period.start <= loan.maturity <= last]
    due = sum((loan.principal for loan in maturing), Decimal(0))
    repaid = Decimal(0)
    evidence = []
    for loan in sorted(maturing, key=lambda loan: loan.loan_id):
        on_time = sum((amount for day, amount in loan.repayments.values() if day <= loan.maturity), Decimal(0))
        on_time = min(on_time, loan.principal)
        repaid += on_time
        if on_time < loan.principal:
            evidence.append({"loan_id": loan.loan_id, "maturity_date": loan.maturity.isoformat(),
                             "principal": f"{loan.principal:.2f}", "repaid_on_time": f"{on_time:.2f}"})
    return repaid, due, evidence


def _reviews(loans, period, as_of):
    """Reviews due in the period up to as-of: done ones by their own due date; one still not
    done counts as late once its due date has passed."""
    last = min(period.end, as_of)
    done = due = 0
    evidence = []
    for loan in sorted(loans, key=lambda loan: loan.loan_id):
        for kind in ("recommendation", "decision"):
            pending_due = loan.reviews_due.get(kind)
            if kind in loan.reviews:
                on, due_by, within = loan.reviews[kind]
                when = due_by or on
            elif pending_due and pending_due < as_of and not (kind == "decision" and loan.county_refused):
                on, due_by, within = None, pending_due, False  # late and still not done
                when = due_by
            else:
                continue
            if not (period.start <= when <= last):
                continue
            due += 1
            if within:
                done += 1
            else:
                evidence.append({"loan_id": loan.loan_id, "review": kind,
                                 "done_on": on.isoformat() if on else None,
                                 "due_by": due_by.isoformat() if due_by else None})
    return done, due, evidence


def indicators(subject_type, subject_id, facts, period, as_of, rules):
    index = facts.index()
    weights = rules["weights"][subject_type]
    found = []

    def add(name, numerator, denominator, evidence, ratio=None):
        if name not in weights or not denominator:
            return
        ratio = _ratio(numerator, denominator) if ratio is None else ratio
        found.append(Indicator(name, int(weights[name]), Decimal(numerator), Decimal(denominator),
                               min(Decimal(1), max(Decimal(0), ratio)), evidence))

    key = (subject_type, subject_id)
    if subject_type in ("unit", "cadre"):
        pairings = index["pairings_by_unit" if subject_type == "unit" else "pairings_by_cadre"].get(subject_id, [])
        due, visited, evidence = _visit_compliance(pairings, facts, period, as_of, rules)
        add("visit_compliance", visited, due, evidence)
        total, count, evidence = _exam(_pairing_cadres(pairings, period, as_of), facts, index, period, as_of)
        add("policy_exam", total, count, evidence)
        checks = index["checks_by_unit" if subject_type == "unit" else "checks_by_cadre"].get(subject_id, [])
        passed, count, evidence = _checks(checks, period, as_of)
        add("awareness_checks", passed, count, evidence)
        total, count, evidence = _ratings(index["ratings"].get(key, []), period, as_of, rules)
        add("supervision_rating", total, count, evidence)
    if subject_type == "unit":
        total, count, evidence = _leader_visits(subject_id, facts, index, period, as_of, rules)
        add("leader_village_visits", total, count, evidence)
        projects = index["projects_by_department"].get(facts.units.get(subject_id, {}).get("department"), [])
        on_time, due, evidence = _project_delivery(projects, period, as_of)
        add("project_delivery", on_time, due, evidence)
        disbursed, allocated, cutoff = _disbursement(projects, facts, period, as_of, rules)
        if allocated:
            target = Decimal(str(rules["disbursement_target"]))
            rate = disbursed / allocated
            add("fund_disbursement", disbursed, allocated,
                [] if rate >= target else [{"disbursed": f"{disbursed:.2f}", "allocated": f"{allocated:.2f}",
                                            "rate": float(round(rate, 4)), "target": float(target),
                                            "measured_on": cutoff.isoformat()}],
                ratio=rate / target)
    if subject_type == "unit":  # supervision (services/assessment/supervision.py)
        department = facts.units.get(subject_id, {}).get("department")
        on_time, due, evidence = supervision.report_timeliness(facts, index, subject_id, department, period, as_of)
        add("report_timeliness", on_time, due, evidence)
        closed, due, evidence = supervision.rectification(facts, subject_id, department, period, as_of)
        add("rectification", closed, due, evidence)
    if subject_type == "cadre":
        done, stationed, evidence = _residency(subject_id, facts, index, period, as_of, rules)
        add("residency", done, stationed, evidence)
    if subject_type == "township":
        loans = [loan for loan in index["loans_by_township"].get(subject_id, []) if not loan.enterprise]
        repaid, due, evidence = _recovery(loans, period, as_of)
        if due:
            add("loan_recovery", repaid, due, evidence,
                ratio=(repaid / due) / Decimal(str(rules["loan_recovery_target"])))
        done, due, evidence = _reviews(loans, period, as_of)
        add("review_timeliness", done, due, evidence)
    return found


def grade_of(score, rules):
    bands = rules["grade_bands"]
    if score >= Decimal(str(bands["excellent"])):
        return "excellent"
    if score >= Decimal(str(bands["good"])):
        return "good"
    return "poor"


def score(subject_type, subject_id, facts, period, as_of, version=None):
    """One subject's full score card as a JSON-ready dict."""
    if subject_type not in SUBJECT_TYPES:
        raise ValidationFailed("unknown subject type", {"subject_type": [f"one of {', '.join(SUBJECT_TYPES)}"]})
    day = min(period.end, as_of)
    # the scoring rulebook in force on the scoring date (or the version asked for), over the
    # values of other services' sections in force that day (a version from before they moved
    # keeps its own: Facts.rulebook)
    version, rules = facts.rulebook(version, None if version is not None else day)
    moved, section_versions = facts.moved_rules(day)
    rules = RulesInForce({**moved, **rules})
    found = indicators(subject_type, subject_id, facts, period, as_of, rules)
    weights = sum(i.weight for i in found)
    value = None
    if weights:
        value = (Decimal(100) * sum((i.points for i in found), Decimal(0)) / weights).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP)
    last = min(period.end, as_of)
    key = (subject_type, subject_id)
    index = facts.index()
    reasons = [f"{v['on'].isoformat()} {v['reason']}" for v in sorted(index["vetoes"].get(key, []), key=lambda v: v["on"])
               if period.start <= v["on"] <= last]
    external_poor = [r for r in index["ratings"].get(key, []) if r["rating"] == "poor"
                     and r["source"] in EXTERNAL_SOURCES and period.start <= r["rated_on"] <= last]
    reasons += [f"{r['rated_on'].isoformat()} 差 rating from {r['source']}" for r in
                sorted(external_poor, key=lambda r: r["rated_on"])]
    vetoed = bool(reasons)
    grade = None if value is None else ("poor" if vetoed else grade_of(value, rules))
    card = {"subject_type": subject_type, "subject_id": subject_id, "name": facts.name_of(subject_type, subject_id),
            "score": None if value is None else float(value), "grade": grade, "vetoed": vetoed,
            "veto_reasons": reasons, "rulebook_version": version, "rulebook_sections": section_versions, "period": period.label, "as_of": as_of.isoformat(),
            "indicators": [i.as_dict() for i in found]}
    if subject_type == "cadre":
        card["pay"] = cadre_pay(subject_id, grade if grade else ("poor" if vetoed else None), index, period, as_of, rules)
    return card


def cadre_pay(cadre_id, grade, index, period, as_of, rules):
    """000 §三: the monthly performance pay by grade (850 / 800 / 750); each external 好 earns a
    reward in the month it is dated; an external 差 withholds that month's performance pay
    entirely, puts the cadre last at the year's end and blocks awards, transfers and promotion
    for a year from its date. A quarter or year shows the months withheld and the rewards summed;
    the pay itself is the month's."""
    last = min(period.end, as_of)
    external = [r for r in index["ratings"].get(("cadre", cadre_id), [])
                if r["source"] in EXTERNAL_SOURCES and r["rated_on"] <= last]
    in_period = [r for r in external if period.start <= r["rated_on"]]
    reward = Decimal(str(rules["reward_per_external_good"]))
    rewards_by_month = {}
    for r in in_period:
        if r["rating"] == "good":
            label = month_label(r["rated_on"])
            rewards_by_month[label] = rewards_by_month.get(label, Decimal(0)) + reward
    months_withheld = sorted({month_label(r["rated_on"]) for r in in_period if r["rating"] == "poor"})
    # Restrictions run a year from the latest external 差 on or before the period's end, so a
    # 差 in April still shows on May's card; one that has expired before the period does not.
    poors = sorted(r["rated_on"] for r in external if r["rating"] == "poor")
    until = None
    if poors:
        latest = poors[-1]
        years = int(rules["restriction_years"])
        try:
            until = latest.replace(year=latest.year + years)
        except ValueError:  # 29 February
            until = latest.replace(year=latest.year + years, day=28)
        if until < period.start:
            until = None
    rate = rules["monthly_performance_pay"].get(grade) if grade else None
    pay = rate
    if period.is_month and months_withheld and rate is not None:
        pay = "0.00"
    goods = sum(1 for r in in_period if r["rating"] == "good")
    return {"monthly_performance_pay": pay, "pay_by_grade": rate, "withheld": bool(months_withheld),
            "months_withheld": months_withheld,
            "withheld_amount": f"{Decimal(str(rate)):.2f}" if period.is_month and months_withheld and rate else "0.00",
            "rewards": f"{sum(rewards_by_month.values(), Decimal(0)):.2f}",
            "rewards_by_month": {k: f"{v:.2f}" for k, v in sorted(rewards_by_month.items())},
            "external_good_ratings": goods, "restrictions_until": until.isoformat() if until else None,
            "restrictions": ["不评优", "不调动", "不提拔", "年终末位"] if until else []}


def rank_key(card):
    """Best score first; vetoed subjects after every one not vetoed; no score after all."""
    if card["score"] is None:
        return (2, 0, card["subject_id"])
    return (1 if card["vetoed"] else 0, -card["score"], card["subject_id"])


def rank(cards):
    """Best score first; vetoed subjects after every one not vetoed; no score after all."""
    ordered = sorted(cards, key=rank_key)
    for position, card in enumerate(ordered, start=1):
        card["rank"] = position
    return ordered


def rank_all(subject_type, facts, period, as_of, version=None):
    return rank([score(subject_type, s, facts, period, as_of, version) for s in facts.subject_ids(subject_type)])
