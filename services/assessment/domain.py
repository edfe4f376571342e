"""Scores (考核) as a pure function of the set of events: no I/O, no clock.

`Facts` folds source events (in any order, any number of times) into indexed facts;
`score` computes one subject's indicators for a period as of a date under a rulebook;
`rank` orders subjects. Every number a county may change lives in the rulebook, which is
itself versioned by events (`rulebook_published`).
"""
import bisect
import calendar
import copy
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from services.common.errors import NotFound, RuleRefused, ValidationFailed
from services.common.events import NewEvent

from . import supervision

SUBJECT_TYPES = ("unit", "cadre", "township")
EXTERNAL_SOURCES = ("county", "city", "province", "third_party")
RATINGS = ("good", "fair", "poor")

DEFAULT_RULES = {
    "weights": {
        "unit": {"visit_compliance": 30, "leader_village_visits": 10, "policy_exam": 10, "awareness_checks": 10,
                 "project_delivery": 20, "fund_disbursement": 10, "supervision_rating": 10,
                 "report_timeliness": 5, "rectification": 5},
        "cadre": {"visit_compliance": 50, "policy_exam": 20, "awareness_checks": 20, "supervision_rating": 10,
                  "residency": 10},
        "township": {"loan_recovery": 60, "review_timeliness": 40},
    },
    "grade_bands": {"excellent": 90, "good": 75},
    "monthly_performance_pay": {"excellent": "850.00", "good": "800.00", "poor": "750.00"},
    # 000 §三 prints "202300元", a digit garble ("2023" stands for "10" as in "9月、2023月、年底"): 1,000.
    "reward_per_external_good": "1000.00",
    "restriction_years": 1,
    "loan_recovery_target": "0.95",
    "rating_values": {"good": "1.0", "fair": "0.7", "poor": "0"},
}


# Values the scores use whose home is another service's rulebook section (one home each): the
# assessment reads them from that section's `rules_changed` events, in force on the scoring date
# (min(period end, as-of)). {scoring key: (section, section key)}; leader visits combine two keys.
MOVED_RULES = {
    "visits_per_month": ("assistance", "visits_per_month"),
    "residency_min_days": ("assistance", "residency_min_days"),
    "leader_village_visits_per_year": ("assistance", ("head_village_visits_per_year",
                                                      "leader_village_visits_per_year")),
    "disbursement_target": ("projects", "disbursement_target_rate"),
    "disbursement_by": ("projects", "disbursement_target_date"),
}
# DOMAIN.md's defaults of those section keys, read only while the owning section has no change
# (the sections' version 0 is their code's defaults; no service imports another's code).
SECTION_DEFAULTS = {
    "assistance": {"visits_per_month": 1, "residency_min_days": 15, "head_village_visits_per_year": 2,
                   "leader_village_visits_per_year": 4},
    "projects": {"disbursement_target_rate": "0.95", "disbursement_target_date": "09-30"},
}


def upcast_rulebook(rules):
    """A rulebook_published payload as this code reads it. Before the one-home rulebook (issue
    18) a published version also carried the moved keys: the values it carried still hold for
    scores under that version (so a recomputed past period does not change); a version
    published since carries none, and the owning section's value holds."""
    return rules


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


def _d(value):
    return value if isinstance(value, date) or value is None else date.fromisoformat(value)


def _money(value):
    return Decimal(str(value))


# --- facts -----------------------------------------------------------------------------------
@dataclass
class Pairing:
    pairing_id: str
    cadre_id: str = None
    unit_id: str = None
    household_id: str = None
    start: date = None
    until: date = None

    def active_whole(self, first, last):
        return self.start is not None and self.start <= first and (self.until is None or self.until >= last)

    def active_any(self, first, last):
        return self.start is not None and self.start <= last and (self.until is None or self.until >= first)


@dataclass
class Loan:
    loan_id: str
    township_id: str = None
    household_id: str = None
    enterprise_name: str = None
    principal: Decimal = Decimal(0)
    maturity: date = None
    repayments: dict = field(default_factory=dict)  # event_id -> (date, principal)
    reviews: dict = field(default_factory=dict)  # "recommendation"/"decision" -> (on, due_by, within)
    reviews_due: dict = field(default_factory=dict)  # review not necessarily done yet -> due_by
    applied_on: date = None
    approved_on: date = None
    overdue_on: date = None
    county_refused: bool = False
    enterprise: bool = False  # 第十三条: not the township's loan (no quota, recovery or review timeliness)


@dataclass
class Project:
    project_id: str
    department: str = None
    plan_year: int = None
    deadline: date = None
    title: str = ""
    started_on: date = None
    completed_on: date = None
    cancelled_on: date = None
    township_id: str = None


class Facts(supervision.SupervisionFacts):
    """Everything the scores need, indexed by subject. `apply` is idempotent per event id and
    commutative: the facts depend only on the set of events applied."""

    def __init__(self):
        self.seen = set()
        self.unusable = {}  # event_id -> why its handler failed
        self.units, self.cadres, self.townships = {}, {}, {}
        self.households = {}  # household_id -> (village_id, township_id)
        self.household_names = {}  # household_id -> (household number, head's name): evidence people can act on
        self.villages = {}  # village_id -> name
        self.assignments = {}  # unit_id -> {village_id: {event_id: (from, until)}}: every period kept
        self.pairings = {}
        self.visits = {}  # pairing_id -> {date}
        self.visit_log = []  # (date, cadre_id, unit_id, household_id)
        self.village_visits = {}  # (cadre_id, village_id) -> {visit_id: date}
        self.exams = {}  # cadre_id -> {key: (date, score, maximum)}
        self.checks = {}  # check_id -> (date, cadre_id, unit_id, passed)
        self.stationings = {}  # stationing_id -> (cadre_id, from, until)
        self.residency = {}  # (cadre_id, month) -> (position, days)
        self.projects = {}
        self.allocations, self.disbursements = {}, {}  # event_id -> (project_id, date, amount)
        self.loans = {}
        self.exits, self.flags = {}, {}  # event_id -> (date, household_id)
        self.ratings = {}  # rating_id -> dict
        self.vetoes = {}
        self.rulebooks = {1: copy.deepcopy(DEFAULT_RULES)}
        self.section_changes = {}  # section -> {event_id: rules_changed payload}

    # - applying ---------------------------------------------------------------------------
    def apply(self, event):
        """`event`: a StoredEvent (or anything with event_id, type, payload, global_position)."""
        if event.event_id in self.seen:
            return
        self.seen.add(event.event_id)
        handler = getattr(self, f"_on_{event.type}", None)
        if handler is not None:
            try:
                handler(event.payload, event)
            except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
                # One stored row the handlers cannot read must not fail every score call: it is
                # left out, listed here (fupin_unusable_facts alerts) until it is corrected.
                self.unusable[event.event_id] = f"{event.type}: {type(exc).__name__}: {exc}"

    def _pairing(self, pairing_id):
        return self.pairings.setdefault(pairing_id, Pairing(pairing_id))

    def _loan(self, loan_id):
        return self.loans.setdefault(loan_id, Loan(loan_id))

    def _project(self, project_id):
        return self.projects.setdefault(project_id, Project(project_id))

    # registry
    def _on_township_registered(self, p, e):
        self.townships[p["township_id"]] = p.get("name", "")

    def _on_household_registered(self, p, e):
        self.households[p["household_id"]] = (p.get("village_id"), p.get("township_id"))
        self.household_names[p["household_id"]] = (p.get("household_no"), p.get("head_name"))

    def _on_village_registered(self, p, e):
        self.villages[p["village_id"]] = p.get("name", "")

    def _on_household_exited(self, p, e):
        self.exits[e.event_id] = (_d(p["exited_on"]), p["household_id"])

    def _on_monitoring_flagged(self, p, e):
        self.flags[e.event_id] = (_d(p["flagged_on"]), p["household_id"])

    # assistance
    def _on_unit_registered(self, p, e):
        self.units[p["unit_id"]] = {"name": p.get("name", ""), "department": p.get("department")}

    def _on_cadre_registered(self, p, e):
        self.cadres[p["cadre_id"]] = {"unit_id": p["unit_id"], "name": p.get("name", ""), "rank": p.get("rank"),
                                      "deputy": bool(p.get("deputy_section_or_above"))}

    def _on_village_assigned(self, p, e):
        # A unit may hold one village in several periods (2022, then again from 2024): each
        # assignment is kept under its own event, so the facts do not depend on arrival order.
        periods = self.assignments.setdefault(p["unit_id"], {}).setdefault(p["village_id"], {})
        periods[e.event_id] = (_d(p.get("from")), _d(p.get("until")))

    def _on_household_paired(self, p, e):
        pairing = self._pairing(p["pairing_id"])
        pairing.cadre_id, pairing.unit_id, pairing.household_id = p["cadre_id"], p.get("unit_id"), p["household_id"]
        pairing.start = _d(p["from"])

    def _on_pairing_ended(self, p, e):
        self._pairing(p["pairing_id"]).until = _d(p["until"])

    def _on_visit_recorded(self, p, e):
        day = _d(p["visited_on"])
        self.visits.setdefault(p["pairing_id"], set()).add(day)
        self.visit_log.append((day, p["cadre_id"], p.get("unit_id"), p["household_id"]))

    def _on_village_visit_recorded(self, p, e):
        self.village_visits.setdefault((p["cadre_id"], p["village_id"]), {})[e.event_id] = _d(p["visited_on"])

    def _on_exam_scored(self, p, e):
        # Scores recorded before the event carried the exam's maximum were out of 100.
        self.exams.setdefault(p["cadre_id"], {})[e.event_id] = (_d(p["taken_on"]), Decimal(str(p["score"])),
                                                                Decimal(str(p.get("max_score") or 100)))

    def _on_awareness_checked(self, p, e):
        self.checks[e.event_id] = (_d(p["checked_on"]), p.get("cadre_id"), p.get("unit_id"), bool(p["passed"]),
                                   p.get("household_id"))

    def _on_cadre_stationed(self, p, e):
        self.stationings[p.get("stationing_id") or e.event_id] = (p["cadre_id"], _d(p["from"]), _d(p.get("until")))

    def _on_residency_reported(self, p, e):
        key = (p["cadre_id"], p["month"])
        previous = self.residency.get(key)
        if previous is None or previous[0] < e.global_position:  # the latest report of the month counts
            self.residency[key] = (e.global_position, int(p["days"]))

    # projects
    def _on_project_planned(self, p, e):
        project = self._project(p["project_id"])
        project.department, project.plan_year = p["department"], int(p["plan_year"])
        project.deadline, project.title, project.township_id = _d(p["deadline"]), p.get("title", ""), p.get("township_id")

    def _on_project_started(self, p, e):
        self._project(p["project_id"]).started_on = _d(p["on"])

    def _on_project_completed(self, p, e):
        self._project(p["project_id"]).completed_on = _d(p["on"])

    def _on_project_cancelled(self, p, e):
        self._project(p["project_id"]).cancelled_on = _d(p["on"])

    def _on_funds_allocated(self, p, e):
        self.allocations[e.event_id] = (p["project_id"], _d(p["on"]), _money(p["amount"]))

    def _on_funds_disbursed(self, p, e):
        self.disbursements[e.event_id] = (p["project_id"], _d(p["on"]), _money(p["amount"]))

    # credit
    def _on_loan_applied(self, p, e):
        loan = self._loan(p["loan_id"])
        loan.township_id, loan.applied_on = p["township_id"], _d(p["applied_on"])
        loan.household_id, loan.enterprise_name = p.get("household_id"), p.get("enterprise_name")
        loan.enterprise = not p.get("household_id") and bool(p.get("enterprise_name"))

    def _on_village_reviewed(self, p, e):
        loan = self._loan(p["loan_id"])
        loan.township_id = p["township_id"]
        if p.get("recommendation_due_by"):  # absent from events recorded before it was added
            loan.reviews_due["recommendation"] = _d(p["recommendation_due_by"])

    def _on_township_recommended(self, p, e):
        loan = self._loan(p["loan_id"])
        loan.township_id = p["township_id"]
        loan.reviews["recommendation"] = (_d(p["on"]), _d(p.get("due_by")), bool(p.get("within_limit")))
        if p.get("decision_due_by"):
            loan.reviews_due["decision"] = _d(p["decision_due_by"])

    def _on_county_approved(self, p, e):
        loan = self._loan(p["loan_id"])
        loan.township_id = p["township_id"]
        if p.get("decision_due_by"):
            loan.reviews_due["decision"] = _d(p["decision_due_by"])
        if not p.get("approved"):
            loan.county_refused = True  # the credit union has nothing left to decide

    def _on_loan_decided(self, p, e):
        loan = self._loan(p["loan_id"])
        loan.township_id = p["township_id"]
        loan.reviews["decision"] = (_d(p["on"]), _d(p.get("due_by")), bool(p.get("within_limit")))
        if p.get("approved"):
            loan.approved_on = _d(p["on"])

    def _on_loan_disbursed(self, p, e):
        loan = self._loan(p["loan_id"])
        loan.township_id, loan.principal, loan.maturity = p["township_id"], _money(p["principal"]), _d(p["maturity_date"])

    def _on_loan_repaid(self, p, e):
        self._loan(p["loan_id"]).repayments[e.event_id] = (_d(p["on"]), _money(p["principal"]))

    def _on_loan_overdue(self, p, e):
        self._loan(p["loan_id"]).overdue_on = _d(p["detected_on"])

    # assessment's own
    def _on_rating_recorded(self, p, e):
        self.ratings[p["rating_id"]] = {**p, "rated_on": _d(p["rated_on"])}

    def _on_veto_recorded(self, p, e):
        self.vetoes[p["veto_id"]] = {**p, "on": _d(p["on"])}

    def _on_rulebook_published(self, p, e):
        self.rulebooks[int(p["version"])] = upcast_rulebook(p["rules"])

    # the rulebook sections the scores read (assistance, projects)
    def _on_rules_changed(self, p, e):
        self.section_changes.setdefault(p["section"], {})[e.event_id] = p

    def moved_rules(self, day):
        """The MOVED_RULES values in force on `day`, and the section versions they came from."""
        values, versions = {}, {}
        in_force = {}
        for section, defaults in SECTION_DEFAULTS.items():
            current, number = dict(defaults), 0
            changes = sorted(self.section_changes.get(section, {}).values(),
                             key=lambda p: (p["effective_from"], int(p["version"])))
            for change in changes:
                if _d(change["effective_from"]) <= day:
                    current.update({k: v for k, v in change["changes"].items() if k in current})
                    number = int(change["version"])
            in_force[section], versions[section] = current, number
        for key, (section, source) in MOVED_RULES.items():
            if isinstance(source, tuple):
                values[key] = {"head": int(in_force[section][source[0]]), "leader": int(in_force[section][source[1]])}
            else:
                values[key] = in_force[section][source]
        return values, versions

    # - lookups --------------------------------------------------------------------------------
    def rulebook(self, version=None):
        version = max(self.rulebooks) if version is None else int(version)
        if version not in self.rulebooks:
            raise NotFound("no such rulebook version", {"version": version, "known": sorted(self.rulebooks)})
        return version, self.rulebooks[version]

    def subject_ids(self, subject_type):
        if subject_type == "unit":
            return sorted(self.units)
        if subject_type == "cadre":
            return sorted(self.cadres)
        return sorted(set(self.townships) | {loan.township_id for loan in self.loans.values() if loan.township_id})

    def name_of(self, subject_type, subject_id):
        if subject_type == "unit":
            return self.units.get(subject_id, {}).get("name", "")
        if subject_type == "cadre":
            return self.cadres.get(subject_id, {}).get("name", "")
        return self.townships.get(subject_id, "")

    def index(self):
        """Per-subject indexes, built once per set of facts (scores for thousands of subjects)."""
        if getattr(self, "_index", None) is not None and self._index[0] == len(self.seen):
            return self._index[1]
        pairings_by_cadre, pairings_by_unit = {}, {}
        for pairing in self.pairings.values():
            if pairing.cadre_id is None:
                continue
            pairings_by_cadre.setdefault(pairing.cadre_id, []).append(pairing)
            unit_id = pairing.unit_id or self.cadres.get(pairing.cadre_id, {}).get("unit_id")
            pairings_by_unit.setdefault(unit_id, []).append(pairing)
        cadres_by_unit = {}
        for cadre_id, cadre in self.cadres.items():
            cadres_by_unit.setdefault(cadre["unit_id"], []).append(cadre_id)
        checks_by_cadre, checks_by_unit = {}, {}
        for check in self.checks.values():
            if check[1]:
                checks_by_cadre.setdefault(check[1], []).append(check)
            unit_id = check[2] or self.cadres.get(check[1], {}).get("unit_id")
            if unit_id:
                checks_by_unit.setdefault(unit_id, []).append(check)
        projects_by_department = {}
        for project in self.projects.values():
            projects_by_department.setdefault(project.department, []).append(project)
        loans_by_township = {}
        for loan in self.loans.values():
            loans_by_township.setdefault(loan.township_id, []).append(loan)
        ratings_by_subject, vetoes_by_subject = {}, {}
        for rating in self.ratings.values():
            ratings_by_subject.setdefault((rating["subject_type"], rating["subject_id"]), []).append(rating)
        for veto in self.vetoes.values():
            vetoes_by_subject.setdefault((veto["subject_type"], veto["subject_id"]), []).append(veto)
        stationings_by_cadre = {}
        for stationing in self.stationings.values():
            stationings_by_cadre.setdefault(stationing[0], []).append(stationing)
        exam_days = sorted({day for scores in self.exams.values() for day, _, _ in scores.values()})
        index = {"exam_days": exam_days, "pairings_by_cadre": pairings_by_cadre, "pairings_by_unit": pairings_by_unit,
                 "cadres_by_unit": cadres_by_unit, "checks_by_cadre": checks_by_cadre,
                 "checks_by_unit": checks_by_unit, "projects_by_department": projects_by_department,
                 "loans_by_township": loans_by_township, "ratings": ratings_by_subject,
                 "vetoes": vetoes_by_subject, "stationings_by_cadre": stationings_by_cadre}
        self._index = (len(self.seen), index)
        return index


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


def _visit_compliance(pairings, facts, period, as_of, required=1):
    """(pairing, complete month) pairs active the whole month; visited = at least `required`
    visits on distinct days that month (two records of one day are one visit)."""
    months = [(month, _month_end(month), month_label(month)) for month in complete_months(period, as_of)]
    due = visited = 0
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
    required_per_year = rules["leader_village_visits_per_year"]
    last = min(period.end, as_of)
    total, pairs, evidence = Decimal(0), 0, []
    villages = facts.assignments.get(unit_id, {})
    for cadre_id in index["cadres_by_unit"].get(unit_id, []):
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
        due, visited, evidence = _visit_compliance(pairings, facts, period, as_of, int(rules.get("visits_per_month", 1)))
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
        target = Decimal(str(rules["disbursement_target"]))
        if allocated:
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
    version, rules = facts.rulebook(version)
    moved, section_versions = facts.moved_rules(min(period.end, as_of))
    # a version published before the moved keys left it keeps its own values (see upcast_rulebook)
    rules = {**moved, **rules}
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


def rank(cards):
    """Best score first; vetoed subjects after every one not vetoed; no score after all."""
    def key(card):
        if card["score"] is None:
            return (2, 0, card["subject_id"])
        return (1 if card["vetoed"] else 0, -card["score"], card["subject_id"])

    ordered = sorted(cards, key=key)
    for position, card in enumerate(ordered, start=1):
        card["rank"] = position
    return ordered


def rank_all(subject_type, facts, period, as_of, version=None):
    return rank([score(subject_type, s, facts, period, as_of, version) for s in facts.subject_ids(subject_type)])


# --- the assessment's own commands -------------------------------------------------------------
def decide_rating(command, rating_id):
    if command["subject_type"] not in SUBJECT_TYPES:
        raise ValidationFailed("unknown subject type", {"subject_type": ["invalid"]})
    return [NewEvent("rating_recorded", {
        "rating_id": rating_id, "subject_type": command["subject_type"], "subject_id": command["subject_id"],
        "rating": command["rating"], "source": command["source"], "rated_on": command["rated_on"].isoformat()},
        command["rated_on"].isoformat())]


def decide_veto(command, veto_id):
    if not command["reason"].strip():
        raise RuleRefused("a veto needs its reason", {"rule": "veto_reason_required"})
    return [NewEvent("veto_recorded", {
        "veto_id": veto_id, "subject_type": command["subject_type"], "subject_id": command["subject_id"],
        "reason": command["reason"], "on": command["on"].isoformat()}, command["on"].isoformat())]


def merge_rules(base, changes):
    """A new rulebook is the newest one with the given parts replaced (nested mappings merge)."""
    merged = {key: value for key, value in copy.deepcopy(base).items() if key not in MOVED_RULES}
    for key, value in changes.items():
        if key in MOVED_RULES:
            section = MOVED_RULES[key][0]
            raise ValidationFailed(f"{key} lives in the {section} section of the rulebook",
                                   {key: [f"change it with PUT /api/v1/rulebook/{section}"]})
        if key not in DEFAULT_RULES:
            raise ValidationFailed("unknown rulebook entry", {key: ["not a rulebook entry"]})
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            for inner, inner_value in value.items():
                if isinstance(inner_value, dict) and isinstance(merged[key].get(inner), dict):
                    merged[key][inner].update(inner_value)
                else:
                    merged[key][inner] = inner_value
        else:
            merged[key] = value
    for subject_type, weights in merged["weights"].items():
        if any(Decimal(str(w)) < 0 for w in weights.values()):
            raise RuleRefused("weights cannot be negative", {"rule": "non_negative_weights", "subject_type": subject_type})
    if Decimal(str(merged["grade_bands"]["good"])) > Decimal(str(merged["grade_bands"]["excellent"])):
        raise RuleRefused("the good band must not be above the excellent band", {"rule": "ordered_grade_bands"})
    return merged


def decide_rulebook(facts_version, base, changes, published_on):
    rules = merge_rules(base, changes)
    return [NewEvent("rulebook_published", {"version": facts_version + 1, "rules": rules,
                                            "published_on": published_on.isoformat()}, published_on.isoformat())]


def iso_week(label):
    try:
        year, week = int(label[:4]), int(label[6:])
        monday = date.fromisocalendar(year, week, 1)
    except (ValueError, IndexError):
        raise ValidationFailed("week must look like 2023-W18", {"week": ["invalid"]}) from None
    return monday, monday + timedelta(days=6)
