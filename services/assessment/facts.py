"""The facts scores are made of: the assessment's contract with the other services' events.

`Facts` folds source events (in any order, any number of times) into indexed facts; its `_on_*`
handlers are the only place that reads another service's event payloads. No I/O, no clock
(projections.load_facts feeds it). The rulebook defaults live here because `Facts` holds every
published rulebook from version 1 (the defaults) on, and the persisted facts' fingerprint hashes
this module (projections.facts_fingerprint).
"""
import copy
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from services.common.errors import NotFound

from . import supervision

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


# Events whose handlers touch nothing Facts.index() is built from (visits, and what only the
# weekly bulletin reads): after them the index is kept, not rebuilt for thousands of subjects.
KEEPS_INDEX = frozenset({"visit_recorded", "monitoring_flagged", "household_exited"})


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
            if event.type not in KEEPS_INDEX:
                self.index_changes = getattr(self, "index_changes", 0) + 1
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
        changes = getattr(self, "index_changes", 0)
        if getattr(self, "_index", None) is not None and self._index[0] == changes:
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
        self._index = (changes, index)
        return index
