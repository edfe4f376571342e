"""The facts scores are made of: the assessment's contract with the other services' events.

`Facts` folds source events (in any order, any number of times) into indexed facts; its `_on_*`
handlers are the only place that reads another service's event payloads. No I/O, no clock
(projections.load_facts feeds it). The rulebook defaults live here because `Facts` holds every
published rulebook from version 1 (the defaults) on, and the persisted facts' fingerprint hashes
this module (projections.facts_fingerprint).
"""
import copy
import functools
import sys
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from services.common.errors import NotFound, ServiceUnavailable

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
# assessment reads them from that section's events (`rules_defaults_declared` for version 0, the
# owner's code defaults; `rules_changed` for every change), in force on the scoring date
# (min(period end, as-of)). {scoring key: (section, section key)}; leader visits combine two keys.
MOVED_RULES = {
    "visits_per_month": ("assistance", "visits_per_month"),
    "residency_min_days": ("assistance", "residency_min_days"),
    "leader_village_visits_per_year": ("assistance", ("head_village_visits_per_year",
                                                      "leader_village_visits_per_year")),
    "disbursement_target": ("projects", "disbursement_target_rate"),
    "disbursement_by": ("projects", "disbursement_target_date"),
}

# The scoring rulebook's version 1 (the defaults above) holds from the beginning.
BEGINNING = date(1900, 1, 1)


def upcast_rulebook(payload):
    """A `rulebook_published` payload as this code reads it: {version, effective_from, changes,
    reason, published_on}. Before effective dating (issue 18) a version was a whole rulebook,
    `{version, rules, published_on}`, that held for every period: it reads as a change effective
    from the beginning that sets every key, so past scores under it come out as they did. Such a
    version may also carry keys that moved to another service's section (`visits_per_month`...):
    they still hold while that version is the newest in force (see Facts.rulebook)."""
    if "rules" in payload:
        return {"version": int(payload["version"]), "effective_from": BEGINNING, "changes": payload["rules"],
                "reason": None, "published_on": payload.get("published_on")}
    return {**payload, "version": int(payload["version"]), "effective_from": _d(payload["effective_from"])}


def layered(base, changes):
    """`base` with `changes` laid over it: nested mappings merge (weights per subject type and
    indicator), anything else is replaced."""
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            for inner, inner_value in value.items():
                if isinstance(inner_value, dict) and isinstance(merged[key].get(inner), dict):
                    merged[key][inner].update(inner_value)
                else:
                    merged[key][inner] = copy.deepcopy(inner_value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class ScoringRulebook:
    """The assessment's own section of the county rulebook (weights, grade bands, pay...): its
    versions as the `rulebook_published` events made them, version 1 being the defaults above.
    Effective-dated like every section (services/common/rulebook.py): a score uses the versions
    effective by its scoring date, laid over each other in order of (effective_from, version)."""

    def __init__(self):
        self.versions = {1: {"version": 1, "effective_from": BEGINNING, "changes": copy.deepcopy(DEFAULT_RULES),
                             "reason": "the defaults (DOMAIN.md)", "published_on": None}}
        self.kept = {}  # (version, day) -> (version, rules): a ranking asks once per subject

    def apply(self, payload, event=None):
        version = upcast_rulebook(payload)
        if event is not None:
            version.update(recorded_at=getattr(event, "recorded_at", None),
                           actor=(getattr(event, "metadata", None) or {}).get("actor"))
        self.versions[version["version"]] = version
        self.kept = {}

    @property
    def latest_version(self):
        return max(self.versions)

    def rules(self, version=None, day=None):
        """(version, rules). On a `day`: the versions effective by then laid over each other in
        order of (effective_from, version), and the last of them. With a `version`: the book as
        that version made it, whatever the dates (a past period recomputed under any version).
        With neither: the book as its newest version made it. Callers must not change the rules.

        A version written before effective dating that carried a key since moved to another
        section (visits_per_month...) keeps that value while it is the last version applied; a
        version since carries none, and the owning section's value holds."""
        key = (None if version is None else int(version), None if version is not None else day)
        if key not in self.kept:
            self.kept[key] = self._laid_over(*key)
        return self.kept[key]

    def _laid_over(self, version, day):
        # version 1, the defaults, is the base whatever a change's date (as version 0 of a section)
        ordered = sorted(self.versions.values(), key=lambda v: (v["version"] != 1, v["effective_from"], v["version"]))
        if version is not None:
            if version not in self.versions:
                raise NotFound("no such rulebook version", {"version": version, "known": sorted(self.versions)})
            ordered = [v for v in ordered if v["version"] <= version]
        elif day is not None:  # version 1, the defaults, holds however early the day
            ordered = [v for v in ordered if v["effective_from"] <= day or v["version"] == 1]
        rules = {}
        for item in ordered:
            rules = layered(rules, {k: v for k, v in item["changes"].items() if k not in MOVED_RULES})
        last = self.versions[version] if version is not None else ordered[-1]
        carried = {k: v for k, v in last["changes"].items() if k in MOVED_RULES}
        return (version if version is not None else last["version"]), {**carried, **rules}

    def view(self, day):
        """The section as GET /api/v1/rulebook shows every section: values in force on `day`, the
        version that put them there, and every version, oldest first."""
        number, values = self.rules(day=day)
        return {"section": "assessment", "as_of": day.isoformat(), "version_in_force": number, "values": values,
                "latest_version": self.latest_version,
                "versions": [{**{k: v for k, v in item.items() if k != "effective_from"},
                              "effective_from": item["effective_from"].isoformat()}
                             for item in (self.versions[n] for n in sorted(self.versions))]}


def evolve_scoring_rulebook(book, event):
    """The command path's fold of the assessment's rulebook stream."""
    book.apply(event.payload, event)
    return book


class RulesInForce(dict):
    """The rules a score uses; a key of a section not received yet is a 503, never a guess."""

    def __missing__(self, key):
        if key in MOVED_RULES:
            section = MOVED_RULES[key][0]
            # a moment after a first start, or when an event over the bus overtook the catch-up
            raise ServiceUnavailable(f"the {section} service's rulebook section has not reached the assessment yet",
                                     {"section": section, "retry_after": 10})
        raise KeyError(key)


# One object per distinct day and per id that recurs by the hundred thousand (a visit's cadre, unit
# and household): the persisted facts pickle each once and refer to it after (issue 17: a
# million rows' facts were unpickled object by object, ~1 M dates and id strings, at every restart).
@functools.lru_cache(maxsize=1 << 16)
def _day(text):
    return date.fromisoformat(text)


def _d(value):
    return value if isinstance(value, date) or value is None else _day(value)


def _shared(text):
    return None if text is None else sys.intern(text)


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
        self.scoring_rulebook = ScoringRulebook()  # the assessment's own section, effective-dated
        # other services' rulebook sections, as their events say (any section; the scores read
        # MOVED_RULES, the bulletin the county's time zone)
        self.section_defaults = {}  # section -> (source position, the owner's code defaults on record)
        self.section_changes = {}  # section -> {event_id: rules_changed payload}
        self.sections_kept = {}  # (section, day) -> section_in_force: a ranking asks once per subject

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
        pairing_id = _shared(pairing_id)  # the same object as the visits' key
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
        self.visits.setdefault(_shared(p["pairing_id"]), set()).add(day)
        self.visit_log.append((day, _shared(p["cadre_id"]), _shared(p.get("unit_id")), _shared(p["household_id"])))

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
        self.scoring_rulebook.apply(p, e)

    # other services' rulebook sections
    def _on_rules_defaults_declared(self, p, e):
        # the last on record wins: within its source, a later record has a later position
        known = self.section_defaults.get(p["section"])
        if known is None or e.global_position >= known[0]:
            self.section_defaults[p["section"]] = (e.global_position, dict(p["defaults"]))
        self.sections_kept = {}

    def _on_rules_changed(self, p, e):
        self.section_changes.setdefault(p["section"], {})[e.event_id] = p
        self.sections_kept = {}

    def section_in_force(self, section, day):
        """(version, values) of another service's section in force on `day`, or None while its
        defaults are not on record here; layered like services/common/rulebook.Section."""
        if (section, day) not in self.sections_kept:
            self.sections_kept[(section, day)] = self._section_laid_over(section, day)
        return self.sections_kept[(section, day)]

    def _section_laid_over(self, section, day):
        declared = self.section_defaults.get(section)
        if declared is None:
            return None
        current, number = dict(declared[1]), 0
        changes = sorted(self.section_changes.get(section, {}).values(),
                         key=lambda p: (p["effective_from"], int(p["version"])))
        for change in changes:
            if _d(change["effective_from"]) <= day:
                current.update({k: v for k, v in change["changes"].items() if k in current})
                number = int(change["version"])
        return number, current

    def moved_rules(self, day):
        """The MOVED_RULES values in force on `day` (only those whose section is on record here),
        and the section versions they came from (None: not received yet)."""
        values, versions = {}, {}
        in_force = {section: self.section_in_force(section, day) for section, _ in MOVED_RULES.values()}
        for section, found in in_force.items():
            versions[section] = None if found is None else found[0]
        for key, (section, source) in MOVED_RULES.items():
            if in_force[section] is None:
                continue
            values_of = in_force[section][1]
            if isinstance(source, tuple):
                values[key] = {"head": int(values_of[source[0]]), "leader": int(values_of[source[1]])}
            else:
                values[key] = values_of[source]
        return values, versions

    # - lookups --------------------------------------------------------------------------------
    def rulebook(self, version=None, day=None):
        """(version, rules) of the scoring rulebook (ScoringRulebook.rules)."""
        return self.scoring_rulebook.rules(version, day)

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
