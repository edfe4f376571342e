"""Assistance: units, cadres, village assignment, pairing, visits and the rest of the work (结对帮扶).

Pure: no I/O, no clock (`today` comes in as an argument). Streams:
- `unit` (unit id): unit_registered, village_assigned
- `cadre` (cadre id): cadre_registered, village_visit_recorded, inspection_recorded, exam_scored,
  cadre_stationed, residency_reported
- `household_pairing` (household id): household_paired, pairing_ended, visit_recorded, awareness_checked.
  One stream per household makes "at most one active pairing" and "the visiting cadre is paired
  on that date" checks of one consistent, locked history.

Each `decide_*` takes the state(s) (None when the stream is empty), a command dict whose field
types marshmallow already checked (dates are `date`), and returns the new events or raises.
"""
import calendar
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from services.common.errors import Conflict, NotFound, RuleRefused, ValidationFailed
from services.common.events import NewEvent
from services.common.values import day as _day, iso as _iso, month_bounds

DEFAULT_DEPARTMENTS = ("transport", "water", "power", "health", "housing", "education", "agriculture",
                       "civil_affairs", "finance", "poverty_office", "other")
RANKS = ("head", "leader", "staff")
STATIONING_ROLES = ("first_secretary", "member")


@dataclass(frozen=True)
class Rules:
    """The county rulebook's numbers for assistance (DOMAIN.md defaults; seed 000 §二(一), 003 第6篇)."""

    departments: tuple = DEFAULT_DEPARTMENTS
    visits_per_month: int = 1  # each paired household, each calendar month (000 §二(一)2)
    head_village_visits_per_year: int = 2  # a unit head, to each assigned village (000 §二(一)1)
    leader_village_visits_per_year: int = 4  # a unit leader, likewise
    inspection_interval_months: int = 3  # deputy-section cadres inspect at least this often (000 §二(一)4)
    exam_score_min: int = 0  # policy exam (000 §二(一)3)
    exam_score_max: int = 100
    residency_min_days: int = 15  # stationed work-team members, per month (003 第6篇)

    def __post_init__(self):
        object.__setattr__(self, "departments", tuple(self.departments))
        for name in ("visits_per_month", "head_village_visits_per_year", "leader_village_visits_per_year",
                     "inspection_interval_months", "exam_score_min", "exam_score_max", "residency_min_days"):
            object.__setattr__(self, name, int(getattr(self, name)))

    def village_visits_required(self, rank):
        return {"head": self.head_village_visits_per_year, "leader": self.leader_village_visits_per_year}.get(rank, 0)


# --- helpers ----------------------------------------------------------------------------------------

def parse_month(text):
    year, month = (int(part) for part in text.split("-"))
    return year, month


def months_between(first, last):
    """(year, month) from the month of `first` through the month of `last`, inclusive."""
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        yield year, month
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def score_value(score):
    """A score as a JSON number: 88 stays 88, 87.5 stays 87.5."""
    score = Decimal(str(score))
    return int(score) if score == score.to_integral_value() else float(score)


def refuse(rule, message, **details):
    raise RuleRefused(message, {"rule": rule, **details})


def refuse_future(day, today, name):
    if day > today:
        refuse("not_in_future", f"{name} {day.isoformat()} is in the future (today is {today.isoformat()})",
               field=name, date=day.isoformat(), today=today.isoformat())


def _overlaps(start_a, until_a, start_b, until_b):
    return (until_b is None or start_a <= until_b) and (until_a is None or start_b <= until_a)


def _until_not_before_from(command, start_name="from"):
    until = command.get("until")
    if until is not None and until < command[start_name]:  # two well-formed dates: a rule, not a typo
        refuse("until_not_before_from", f"until ({until}) is before {start_name} ({command[start_name]})",
               field="until")


# --- units ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Assignment:
    village_id: str
    start: date
    until: date | None = None


@dataclass(frozen=True)
class Unit:
    unit_id: str
    name: str
    department: str
    parent_unit_id: str | None
    assignments: tuple = ()


def evolve_unit(state, event):
    p = event.payload
    if event.type == "unit_registered":
        return Unit(p["unit_id"], p["name"], p["department"], p.get("parent_unit_id"))
    if event.type == "village_assigned":
        return replace(state, assignments=state.assignments + (
            Assignment(p["village_id"], _day(p["from"]), _day(p.get("until"))),))
    return state


UNIT_FIELDS = ("unit_id", "name", "department", "parent_unit_id")
CADRE_FIELDS = ("cadre_id", "unit_id", "name", "rank", "deputy_section_or_above")


def unit_view(unit):
    """A unit as its event and the API carry it; `unit` is the state or a read-model row."""
    return {name: getattr(unit, name) for name in UNIT_FIELDS}


def cadre_view(cadre):
    """A cadre as its event and the API carry it; `cadre` is the state or a read-model row."""
    return {name: getattr(cadre, name) for name in CADRE_FIELDS}


def _registered_once(kind, state, view, payload):
    """The `<kind>_registered` event; nothing when the same registration comes again; a Conflict
    when it differs from what is recorded."""
    if state is None:
        return [NewEvent(f"{kind}_registered", payload)]
    recorded, key = view(state), f"{kind}_id"
    if recorded == payload:
        return []  # the same registration again changes nothing
    raise Conflict(f"{kind} {recorded[key]} is already registered differently", {key: recorded[key], "recorded": recorded})


def decide_register_unit(state, command, rules, parent=None):
    """`parent`: the parent unit's state when the command names one (None when unknown)."""
    if command["department"] not in rules.departments:  # the county's list is a rulebook value
        refuse("known_department", f"{command['department']!r} is not a department of the county's rulebook",
               field="department", departments=list(rules.departments))
    parent_id = command.get("parent_unit_id")
    if parent_id is not None:
        if parent_id == command["unit_id"]:
            refuse("not_own_parent", "a unit cannot be its own parent", field="parent_unit_id")
        if parent is None:
            raise NotFound(f"no parent unit {parent_id}", {"parent_unit_id": parent_id})
    payload = {"unit_id": command["unit_id"], "name": command["name"], "department": command["department"],
               "parent_unit_id": parent_id}
    return _registered_once("unit", state, unit_view, payload)


def decide_assign_village(unit, command):
    """单位包村: a village is assigned to a unit from a date, optionally until one."""
    if unit is None:
        raise NotFound(f"no unit {command['unit_id']}", {"unit_id": command["unit_id"]})
    _until_not_before_from(command)
    start, until = command["from"], command.get("until")
    for assignment in unit.assignments:
        if assignment.village_id != command["village_id"]:
            continue
        if assignment.start == start and assignment.until == until:
            return []  # the same assignment again changes nothing
        if _overlaps(start, until, assignment.start, assignment.until):
            refuse("village_assignment_overlaps",
                   f"village {command['village_id']} is already assigned to unit {unit.unit_id} in that period",
                   village_id=command["village_id"], assigned_from=_iso(assignment.start),
                   assigned_until=_iso(assignment.until))
    return [NewEvent("village_assigned", {"unit_id": unit.unit_id, "village_id": command["village_id"],
                                          "from": start.isoformat(), "until": _iso(until)}, start.isoformat())]


# --- cadres -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stationing:
    stationing_id: str
    village_id: str
    role: str
    start: date
    until: date | None


@dataclass(frozen=True)
class Cadre:
    cadre_id: str
    unit_id: str
    name: str
    rank: str
    deputy_section_or_above: bool
    stationings: tuple = ()


def evolve_cadre(state, event):
    p = event.payload
    if event.type == "cadre_registered":
        return Cadre(p["cadre_id"], p["unit_id"], p["name"], p["rank"], bool(p["deputy_section_or_above"]))
    if event.type == "cadre_stationed":
        return replace(state, stationings=state.stationings + (Stationing(
            p["stationing_id"], p["village_id"], p["role"], _day(p["from"]), _day(p.get("until"))),))
    return state


def decide_register_cadre(state, command, unit):
    if unit is None:
        raise NotFound(f"no unit {command['unit_id']}", {"unit_id": command["unit_id"]})
    payload = {"cadre_id": command["cadre_id"], "unit_id": unit.unit_id, "name": command["name"],
               "rank": command["rank"], "deputy_section_or_above": bool(command["deputy_section_or_above"])}
    return _registered_once("cadre", state, cadre_view, payload)


def _known_cadre(cadre, command):
    if cadre is None:
        raise NotFound(f"no cadre {command['cadre_id']}", {"cadre_id": command["cadre_id"]})
    return cadre


def decide_village_visit(cadre, command, today, visit_id):
    """A unit leader's visit to a village (领导到村调研指导)."""
    cadre = _known_cadre(cadre, command)
    refuse_future(command["visited_on"], today, "visited_on")
    day = command["visited_on"].isoformat()
    return [NewEvent("village_visit_recorded", {
        "visit_id": visit_id, "cadre_id": cadre.cadre_id, "unit_id": cadre.unit_id,
        "village_id": command["village_id"], "visited_on": day, "purpose": command["purpose"]}, day)]


def decide_inspection(cadre, command, today, inspection_id):
    """A leadership inspection (查访) is made by a cadre of deputy-section rank or above."""
    cadre = _known_cadre(cadre, command)
    refuse_future(command["inspected_on"], today, "inspected_on")
    if not cadre.deputy_section_or_above:
        refuse("inspector_deputy_section_or_above",
               f"cadre {cadre.cadre_id} is not of deputy-section rank or above and makes no leadership inspections",
               cadre_id=cadre.cadre_id)
    day = command["inspected_on"].isoformat()
    return [NewEvent("inspection_recorded", {
        "inspection_id": inspection_id, "cadre_id": cadre.cadre_id, "unit_id": cadre.unit_id,
        "village_id": command["village_id"], "inspected_on": day, "findings": command["findings"]}, day)]


def decide_exam_score(cadre, command, today, rules):
    cadre = _known_cadre(cadre, command)
    score = Decimal(str(command["score"]))
    if not rules.exam_score_min <= score <= rules.exam_score_max:
        refuse("score_in_rulebook_range",  # the range is the county rulebook's, not the request's shape
               f"the score must be between {rules.exam_score_min} and {rules.exam_score_max}", field="score")
    refuse_future(command["taken_on"], today, "taken_on")
    day = command["taken_on"].isoformat()
    # The exam's maximum travels with the score: the assessment scales by it (DOMAIN.md policy_exam).
    return [NewEvent("exam_scored", {"cadre_id": cadre.cadre_id, "unit_id": cadre.unit_id,
                                     "exam_id": command["exam_id"], "score": score_value(score), "taken_on": day,
                                     "max_score": rules.exam_score_max}, day)]


def decide_station(cadre, command, stationing_id):
    """A cadre joins a village work team (驻村工作队); one village at a time."""
    cadre = _known_cadre(cadre, command)
    _until_not_before_from(command)
    start, until = command["from"], command.get("until")
    for stationing in cadre.stationings:
        if _overlaps(start, until, stationing.start, stationing.until):
            refuse("one_stationing_at_a_time",
                   f"cadre {cadre.cadre_id} is already stationed in village {stationing.village_id} in that period",
                   stationing_id=stationing.stationing_id, village_id=stationing.village_id,
                   stationed_from=_iso(stationing.start), stationed_until=_iso(stationing.until))
    return [NewEvent("cadre_stationed", {
        "stationing_id": stationing_id, "cadre_id": cadre.cadre_id, "unit_id": cadre.unit_id,
        "village_id": command["village_id"], "role": command["role"], "from": start.isoformat(),
        "until": _iso(until)}, start.isoformat())]


def decide_residency(cadre, command, today):
    """Days in the village in a month: 0..days of that month, not for a future month, and only
    for a month in which the cadre is stationed. A later report for the same month replaces it."""
    cadre = _known_cadre(cadre, command)
    year, month = parse_month(command["month"])
    first, last = month_bounds(year, month)
    days = command["days"]
    if not 0 <= days <= last.day:  # 0..31 is the schema's; the month's own length is a rule between two fields
        refuse("days_within_month", f"{command['month']} has {last.day} days", field="days")
    if first > today:
        refuse("not_in_future", f"month {command['month']} has not begun (today is {today.isoformat()})",
               field="month", month=command["month"], today=today.isoformat())
    if not any(_overlaps(first, last, s.start, s.until) for s in cadre.stationings):
        refuse("residency_needs_stationing", f"cadre {cadre.cadre_id} is not stationed in a village in {command['month']}",
               cadre_id=cadre.cadre_id, month=command["month"])
    return [NewEvent("residency_reported", {"cadre_id": cadre.cadre_id, "unit_id": cadre.unit_id,
                                            "month": command["month"], "days": days}, first.isoformat())]


# --- pairings, visits and spot checks (one stream per household) ------------------------------------

@dataclass(frozen=True)
class Pairing:
    pairing_id: str
    cadre_id: str
    unit_id: str
    household_id: str
    start: date
    until: date | None = None
    reason: str | None = None
    last_visit: date | None = None

    def active_on(self, day):
        return self.start <= day and (self.until is None or day <= self.until)


@dataclass(frozen=True)
class HouseholdHelp:
    household_id: str
    pairings: tuple = field(default=())

    def pairing(self, pairing_id):
        return next((p for p in self.pairings if p.pairing_id == pairing_id), None)

    def paired_on(self, day):
        """The pairing active on that day, if any (at most one by the pairing rule)."""
        return next((p for p in self.pairings if p.active_on(day)), None)

    def _replace(self, pairing_id, **changes):
        return replace(self, pairings=tuple(replace(p, **changes) if p.pairing_id == pairing_id else p
                                            for p in self.pairings))


def evolve_household(state, event):
    p = event.payload
    if state is None:
        state = HouseholdHelp(p["household_id"])
    if event.type == "household_paired":
        return replace(state, pairings=state.pairings + (Pairing(
            p["pairing_id"], p["cadre_id"], p["unit_id"], p["household_id"], _day(p["from"])),))
    if event.type == "pairing_ended":
        return state._replace(p["pairing_id"], until=_day(p["until"]), reason=p["reason"])
    if event.type == "visit_recorded":
        day = _day(p["visited_on"])
        pairing = state.pairing(p["pairing_id"])
        if pairing.last_visit is None or day > pairing.last_visit:
            return state._replace(p["pairing_id"], last_visit=day)
    return state


def decide_pair(state, command, cadre, pairing_id):
    """干部包户: a household has at most one active pairing; a new one starts after the last ended."""
    cadre = _known_cadre(cadre, command)
    household_id = command["household_id"]
    start = command["from"]
    for pairing in (state.pairings if state else ()):
        if pairing.until is None or pairing.until >= start:
            refuse("one_active_pairing_per_household",
                   f"household {household_id} is already paired with cadre {pairing.cadre_id}"
                   + ("" if pairing.until is None else f" until {pairing.until.isoformat()}"),
                   household_id=household_id, pairing_id=pairing.pairing_id, cadre_id=pairing.cadre_id,
                   paired_from=_iso(pairing.start), paired_until=_iso(pairing.until))
    return [NewEvent("household_paired", {"pairing_id": pairing_id, "cadre_id": cadre.cadre_id,
                                          "unit_id": cadre.unit_id, "household_id": household_id,
                                          "from": start.isoformat()}, start.isoformat())]


def decide_end_pairing(state, command):
    pairing = state.pairing(command["pairing_id"]) if state else None
    if pairing is None:
        raise NotFound(f"no pairing {command['pairing_id']}", {"pairing_id": command["pairing_id"]})
    if pairing.until is not None:
        refuse("pairing_already_ended", f"pairing {pairing.pairing_id} ended on {pairing.until.isoformat()}",
               pairing_id=pairing.pairing_id, until=pairing.until.isoformat())
    until = command["until"]
    if until < pairing.start:
        refuse("until_not_before_start", f"until ({until}) is before the pairing began ({pairing.start})",
               field="until", pairing_start=pairing.start.isoformat())
    if pairing.last_visit is not None and until < pairing.last_visit:
        refuse("pairing_end_after_last_visit",
               f"the pairing has a visit on {pairing.last_visit.isoformat()}, after {until.isoformat()}",
               pairing_id=pairing.pairing_id, last_visit=pairing.last_visit.isoformat())
    return [NewEvent("pairing_ended", {"pairing_id": pairing.pairing_id, "cadre_id": pairing.cadre_id,
                                       "unit_id": pairing.unit_id, "household_id": pairing.household_id,
                                       "until": until.isoformat(), "reason": command["reason"]}, until.isoformat())]


def decide_visit(state, command, today, visit_id):
    """走访: by the cadre paired with the household on the visit date, never dated in the future."""
    day = command["visited_on"]
    refuse_future(day, today, "visited_on")
    pairing = state.paired_on(day) if state else None
    if pairing is None or pairing.cadre_id != command["cadre_id"]:
        refuse("visit_by_paired_cadre",
               f"cadre {command['cadre_id']} is not paired with household {command['household_id']} "
               f"on {day.isoformat()}",
               cadre_id=command["cadre_id"], household_id=command["household_id"], visited_on=day.isoformat(),
               paired_cadre_id=pairing.cadre_id if pairing else None)
    return [NewEvent("visit_recorded", {
        "visit_id": visit_id, "pairing_id": pairing.pairing_id, "cadre_id": pairing.cadre_id,
        "unit_id": pairing.unit_id, "household_id": pairing.household_id, "visited_on": day.isoformat(),
        "measures": list(command["measures"]), "outcome": command["outcome"], "changes": command["changes"],
        "policy_explained": bool(command["policy_explained"])}, day.isoformat())]


def decide_visits(states, visits, today, new_id):
    """A cadre's visits synced at once: each is checked as decide_visit checks it, and either
    all are recorded or none; the refusal lists every refused visit by its index and reason.
    `states` maps household id to its state; returns {household_id: [events]}."""
    events, refused = {household_id: [] for household_id in states}, []
    for index, visit in enumerate(visits):
        try:
            events[visit["household_id"]] += decide_visit(states[visit["household_id"]], visit, today, new_id())
        except (RuleRefused, ValidationFailed) as error:
            refused.append({"index": index, "household_id": visit["household_id"],
                            "visited_on": visit["visited_on"].isoformat(), "code": error.code,
                            "message": error.message})
    if refused:
        raise RuleRefused(f"{len(refused)} of {len(visits)} visits were refused; none was recorded",
                          {"rule": "every_visit_valid", "refused": refused})
    return events


def decide_awareness_check(state, command, today, check_id):
    """应知应会抽查: charged to the cadre paired with the household that day (none → null)."""
    day = command["checked_on"]
    refuse_future(day, today, "checked_on")
    pairing = state.paired_on(day) if state else None
    return [NewEvent("awareness_checked", {
        "check_id": check_id, "household_id": command["household_id"], "checked_on": day.isoformat(),
        "passed": bool(command["passed"]), "cadre_id": pairing.cadre_id if pairing else None,
        "unit_id": pairing.unit_id if pairing else None}, day.isoformat())]


# --- queries (pure: the service passes rows from the read models) ----------------------------------

def overdue_visits(pairings, visit_days, as_of, rules):
    """Each (pairing, month) from the pairing's first month through the as-of month in which the
    pairing was active on some day up to `as_of` and has fewer than the required visits on or
    before `as_of`. `pairings`: [Pairing]; `visit_days`: {pairing_id: [date]}."""
    items = []
    for pairing in sorted(pairings, key=lambda p: (p.start, p.pairing_id)):
        if pairing.start > as_of:
            continue
        last_day = min(as_of, pairing.until) if pairing.until else as_of
        visits = [day for day in visit_days.get(pairing.pairing_id, ()) if day <= as_of]
        for year, month in months_between(pairing.start, last_day):
            count = sum(1 for day in visits if (day.year, day.month) == (year, month))
            if count < rules.visits_per_month:
                items.append({"pairing_id": pairing.pairing_id, "household_id": pairing.household_id,
                              "month": f"{year:04d}-{month:02d}"})
    return items


def monthly_compliance(pairings, visit_days, as_of, rules):
    """Per month of the as-of year up to the as-of month: (pairing, month) pairs active for the
    whole month, and how many of them had their visits (on or before `as_of`). The as-of month
    is marked incomplete unless `as_of` is its last day."""
    months = []
    for year, month in months_between(date(as_of.year, 1, 1), as_of):
        first, last = month_bounds(year, month)
        due = visited = 0
        for pairing in pairings:
            if not (pairing.start <= first and (pairing.until is None or pairing.until >= last)):
                continue
            due += 1
            count = sum(1 for day in visit_days.get(pairing.pairing_id, ())
                        if first <= day <= last and day <= as_of)
            visited += count >= rules.visits_per_month
        months.append({"month": f"{year:04d}-{month:02d}", "complete": last <= as_of, "pairs_due": due,
                       "pairs_visited": visited, "rate": round(visited / due, 4) if due else None})
    return months


def inspection_status(cadre, last_inspection, as_of, rules):
    """For a deputy-section cadre: the last inspection and whether one is overdue on `as_of`
    (none within the last `inspection_interval_months` months)."""
    if not cadre.deputy_section_or_above:
        return {"required": False, "last_inspected_on": _iso(last_inspection), "overdue": False}
    year, month = as_of.year, as_of.month - rules.inspection_interval_months
    while month < 1:
        year, month = year - 1, month + 12
    window_start = date(year, month, min(as_of.day, calendar.monthrange(year, month)[1]))
    overdue = last_inspection is None or last_inspection < window_start
    return {"required": True, "last_inspected_on": _iso(last_inspection), "overdue": overdue}


def residency_months(reports, rules):
    """[(month, days)] of one cadre's latest reports → with whether each met the minimum."""
    return [{"month": month, "days": days, "meets_minimum": days >= rules.residency_min_days}
            for month, days in sorted(reports)]
