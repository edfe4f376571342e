"""Projects: infrastructure projects posted by departments, and their funds. Pure: no I/O, no clock.

One stream per project (stream type "project", stream id = project id). The state is a frozen
`Project` built by `evolve`; each `decide_*` takes the state (None when the project does not
exist), a command dict whose field types marshmallow already checked (dates are `date`, money
and quantities `Decimal`), and the county's `Rules`, and returns the new events or raises.
"""
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from services.common.errors import Conflict, NotFound, RuleRefused
from services.common.events import NewEvent
from services.common.values import money, day as _day, iso as _iso

from .schemas import FUNDING_SOURCES, STATUSES

DEFAULT_DEPARTMENTS = ("transport", "water", "power", "health", "housing", "education", "agriculture",
                       "civil_affairs", "finance", "poverty_office", "other")
# Which categories answer "what roads, water and power does this village get".
INFRASTRUCTURE_KINDS = {
    "roads": ("village_road", "road_repair", "bridge", "road_safety"),
    "water": ("water_supply",),
    "power": ("grid_upgrade",),
}
RATE_PLACES = Decimal("0.0001")


def _month_day(value, name):
    try:
        month, day = (int(part) for part in str(value).split("-"))
        date(2001, month, day)  # not a leap year: a yearly date must exist every year
    except (TypeError, ValueError):
        raise ValueError(f"Rules.{name} must be 'MM-DD', not {value!r}") from None
    return month, day


@dataclass(frozen=True)
class Rules:
    """The county rulebook's numbers for projects (DOMAIN.md defaults; 000 §二(二))."""

    county_deadline: str = "08-31"  # MM-DD of the plan year, when a county-level plan gives none
    township_deadline: str = "11-30"  # likewise for township-level projects
    disbursement_target_rate: Decimal = Decimal("0.95")  # of the year's allocation ...
    disbursement_target_date: str = "09-30"  # ... disbursed by this MM-DD of the plan year
    departments: tuple = DEFAULT_DEPARTMENTS
    import_max_rows: int = 5000

    def __post_init__(self):
        for name in ("county_deadline", "township_deadline", "disbursement_target_date"):
            _month_day(getattr(self, name), name)
        object.__setattr__(self, "disbursement_target_rate", Decimal(str(self.disbursement_target_rate)))
        object.__setattr__(self, "departments", tuple(self.departments))
        object.__setattr__(self, "import_max_rows", int(self.import_max_rows))

    @classmethod
    def from_dict(cls, values):
        return cls(**(values or {}))

    def default_deadline(self, level, plan_year):
        month, day = _month_day(self.county_deadline if level == "county" else self.township_deadline, level)
        return date(plan_year, month, day)

    def disbursement_target_day(self, plan_year):
        month, day = _month_day(self.disbursement_target_date, "disbursement_target_date")
        return date(plan_year, month, day)


# --- formatting: payloads are JSON, money "123.45", quantities without trailing zeros ------------

def quantity_text(quantity):
    return None if quantity is None else format(Decimal(quantity).normalize(), "f")


def rate_text(rate):
    return None if rate is None else f"{rate.quantize(RATE_PLACES, rounding=ROUND_HALF_UP):.4f}"


# --- state ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Project:
    project_id: str
    plan: dict  # the project_planned payload, as recorded
    department: str
    plan_year: int
    deadline: date
    status: str = "planned"
    started_on: date | None = None
    percent_complete: int = 0
    quantity_done: Decimal | None = None
    last_reported_on: date | None = None
    problems: str | None = None
    completed_on: date | None = None
    late: bool | None = None
    accepted_on: date | None = None
    cancelled_on: date | None = None
    cancel_reason: str | None = None
    allocations: tuple = field(default=())  # ((on, amount), ...)
    disbursements: tuple = field(default=())

    @property
    def allocated(self):
        return sum((amount for _, amount in self.allocations), Decimal(0))

    @property
    def disbursed(self):
        return sum((amount for _, amount in self.disbursements), Decimal(0))


def evolve(state, event):
    """Fold one event (stored or new) into the project state."""
    payload = event.payload
    kind = event.type
    if kind == "project_planned":
        return Project(project_id=payload["project_id"], plan=dict(payload), department=payload["department"],
                       plan_year=int(payload["plan_year"]), deadline=_day(payload["deadline"]))
    if kind == "project_started":
        return replace(state, status="started", started_on=_day(payload["on"]))
    if kind == "progress_reported":
        done = payload.get("quantity_done")
        return replace(state, percent_complete=int(payload["percent_complete"]),
                       quantity_done=Decimal(done) if done is not None else state.quantity_done,
                       last_reported_on=_day(payload["reported_on"]), problems=payload["problems"])
    if kind == "project_completed":
        return replace(state, status="completed", completed_on=_day(payload["on"]), late=bool(payload["late"]),
                       quantity_done=Decimal(payload["quantity_done"]), percent_complete=100)
    if kind == "project_accepted":
        return replace(state, status="accepted", accepted_on=_day(payload["on"]))
    if kind == "project_cancelled":
        return replace(state, status="cancelled", cancelled_on=_day(payload["on"]), cancel_reason=payload["reason"])
    if kind == "funds_allocated":
        return replace(state, allocations=state.allocations + ((_day(payload["on"]), Decimal(payload["amount"])),))
    if kind == "funds_disbursed":
        return replace(state, disbursements=state.disbursements + ((_day(payload["on"]), Decimal(payload["amount"])),))
    return state


def project_view(project):
    """A project as the API shows it (the read model's `row_view` gives the same shape)."""
    plan_fields = ("project_id", "title", "department", "category", "level", "township_id", "village_ids",
                   "planned_quantity", "quantity_unit", "budget", "funding_sources", "plan_year", "deadline")
    return {
        **{name: project.plan[name] for name in plan_fields},
        "status": project.status, "started_on": _iso(project.started_on),
        "percent_complete": project.percent_complete, "quantity_done": quantity_text(project.quantity_done),
        "last_reported_on": _iso(project.last_reported_on), "problems": project.problems,
        "completed_on": _iso(project.completed_on), "late": project.late, "accepted_on": _iso(project.accepted_on),
        "cancelled_on": _iso(project.cancelled_on), "cancel_reason": project.cancel_reason,
        "allocated": money(project.allocated), "disbursed": money(project.disbursed),
    }


# --- planning -------------------------------------------------------------------------------------

def planned_payload(command, rules):
    """The project_planned payload a plan command stands for (deadline defaulted from the level)."""
    deadline = command.get("deadline") or rules.default_deadline(command["level"], command["plan_year"])
    sources = sorted(command.get("funding_sources") or [], key=lambda item: FUNDING_SOURCES.index(item["source"]))
    return {
        "project_id": command["project_id"],
        "title": command["title"],
        "department": command["department"],
        "category": command["category"],
        "level": command["level"],
        "township_id": command["township_id"],
        "village_ids": list(command.get("village_ids") or []),
        "planned_quantity": quantity_text(command["planned_quantity"]),
        "quantity_unit": command["quantity_unit"],
        "budget": money(command["budget"]),
        "funding_sources": [{"source": item["source"], "amount": money(item["amount"])} for item in sources],
        "plan_year": command["plan_year"],
        "deadline": deadline.isoformat(),
    }


def _comparable(plan):
    """A plan as compared for idempotency: the order villages are listed in does not matter."""
    return {**plan, "village_ids": sorted(plan["village_ids"])}


def decide_plan(state, command, rules):
    """Plan a project. The department's own code is the id: the same code with the same content
    again appends nothing; with different content it is a Conflict naming the differences."""
    if command["department"] not in rules.departments:  # the county's list is a rulebook value
        raise RuleRefused(f"{command['department']!r} is not a department of the county's rulebook",
                          {"rule": "known_department", "field": "department", "departments": list(rules.departments)})
    payload = planned_payload(command, rules)
    funded = sum((Decimal(item["amount"]) for item in payload["funding_sources"]), Decimal(0))
    if payload["funding_sources"] and funded != Decimal(payload["budget"]):
        raise RuleRefused(f"the funding sources add up to {money(funded)} yuan, the budget is {payload['budget']}",
                          {"rule": "funding_matches_budget", "budget": payload["budget"], "funded": money(funded)})
    if state is not None:
        recorded, given = _comparable(state.plan), _comparable(payload)
        if recorded == given:
            return []
        differences = {name: {"recorded": recorded.get(name), "given": given.get(name)}
                       for name in given if recorded.get(name) != given.get(name)}
        raise Conflict(f"project {command['project_id']} is already planned with different content",
                       {"project_id": command["project_id"], "differences": differences})
    return [NewEvent("project_planned", payload)]


# --- lifecycle ------------------------------------------------------------------------------------

def _existing(state, command):
    if state is None:
        raise NotFound(f"no project {command['project_id']}", {"project_id": command["project_id"]})
    if state.status == "cancelled":
        raise RuleRefused(f"project {state.project_id} was cancelled on {state.cancelled_on}; nothing more "
                          "can be recorded for it",
                          {"rule": "nothing_after_cancel", "cancelled_on": state.cancelled_on.isoformat()})
    return state


def _refuse_before_start(state, day, rule, what):
    if state.started_on is None:
        raise RuleRefused(f"project {state.project_id} has not started: {what} needs a start first",
                          {"rule": rule, "status": state.status})
    if day < state.started_on:
        raise RuleRefused(f"{what} on {day} is before the start on {state.started_on}",
                          {"rule": rule, "started_on": state.started_on.isoformat(), "on": day.isoformat()})


def decide_start(state, command):
    project = _existing(state, command)
    if project.status != "planned":
        raise RuleRefused(f"project {project.project_id} already started on {project.started_on}",
                          {"rule": "start_once", "started_on": project.started_on.isoformat()})
    return [NewEvent("project_started", {"project_id": project.project_id, "department": project.department,
                                         "on": command["on"].isoformat()}, command["on"].isoformat())]


def decide_report_progress(state, command):
    project = _existing(state, command)
    day = command["reported_on"]
    _refuse_before_start(project, day, "no_progress_before_start", "a progress report")
    if project.status in ("completed", "accepted"):
        raise RuleRefused(f"project {project.project_id} was completed on {project.completed_on}; "
                          "progress is reported only while it is under way",
                          {"rule": "no_progress_after_completion", "completed_on": project.completed_on.isoformat()})
    if command["percent_complete"] < project.percent_complete:
        raise RuleRefused(f"percent complete cannot go back from {project.percent_complete} to "
                          f"{command['percent_complete']}",
                          {"rule": "percent_never_decreases", "previous": project.percent_complete,
                           "given": command["percent_complete"]})
    done = command.get("quantity_done")
    return [NewEvent("progress_reported", {
        "project_id": project.project_id, "department": project.department, "reported_on": day.isoformat(),
        "percent_complete": command["percent_complete"],
        "quantity_done": quantity_text(done if done is not None else project.quantity_done),
        "problems": command.get("problems") or "",
    }, day.isoformat())]


def decide_complete(state, command):
    """Complete a started project; `late` when completed after its deadline."""
    project = _existing(state, command)
    if project.status in ("completed", "accepted"):
        raise RuleRefused(f"project {project.project_id} was already completed on {project.completed_on}",
                          {"rule": "complete_once", "completed_on": project.completed_on.isoformat()})
    day = command["on"]
    _refuse_before_start(project, day, "no_completion_before_start", "completion")
    done = command.get("quantity_done")
    return [NewEvent("project_completed", {
        "project_id": project.project_id, "department": project.department, "on": day.isoformat(),
        "quantity_done": quantity_text(done if done is not None else Decimal(project.plan["planned_quantity"])),
        "deadline": project.deadline.isoformat(), "late": day > project.deadline,
    }, day.isoformat())]


def decide_accept(state, command):
    project = _existing(state, command)
    day = command["on"]
    if project.status == "accepted":
        raise RuleRefused(f"project {project.project_id} was already accepted on {project.accepted_on}",
                          {"rule": "accept_once", "accepted_on": project.accepted_on.isoformat()})
    if project.status != "completed":
        raise RuleRefused(f"project {project.project_id} is {project.status}: acceptance (验收) needs completion first",
                          {"rule": "no_acceptance_before_completion", "status": project.status})
    if day < project.completed_on:
        raise RuleRefused(f"acceptance on {day} is before the completion on {project.completed_on}",
                          {"rule": "no_acceptance_before_completion",
                           "completed_on": project.completed_on.isoformat(), "on": day.isoformat()})
    return [NewEvent("project_accepted", {"project_id": project.project_id, "department": project.department,
                                          "on": day.isoformat()}, day.isoformat())]


def decide_cancel(state, command):
    project = _existing(state, command)
    if project.status in ("completed", "accepted"):
        raise RuleRefused(f"project {project.project_id} was completed on {project.completed_on}; "
                          "a completed project cannot be cancelled",
                          {"rule": "no_cancel_after_completion", "completed_on": project.completed_on.isoformat()})
    day = command["on"]
    return [NewEvent("project_cancelled", {"project_id": project.project_id, "department": project.department,
                                           "on": day.isoformat(), "reason": command["reason"]}, day.isoformat())]


# --- funds ----------------------------------------------------------------------------------------

def decide_allocate(state, command):
    project = _existing(state, command)
    day = command["on"]
    return [NewEvent("funds_allocated", {
        "project_id": project.project_id, "department": project.department, "plan_year": project.plan_year,
        "amount": money(command["amount"]), "source": command["source"], "on": day.isoformat(),
    }, day.isoformat())]


def _first_overdraft(allocations, disbursements):
    """The first date on which cumulative disbursement exceeds cumulative allocation, or None."""
    for day in sorted({on for on, _ in disbursements}):
        allocated = sum((amount for on, amount in allocations if on <= day), Decimal(0))
        disbursed = sum((amount for on, amount in disbursements if on <= day), Decimal(0))
        if disbursed > allocated:
            return day, allocated, disbursed
    return None


def decide_disburse(state, command):
    """Pay the contractor. Cumulative disbursement may never exceed allocation, on any date: a
    payment dated before the funds that cover it were allocated is refused too."""
    project = _existing(state, command)
    day, amount = command["on"], command["amount"]
    overdraft = _first_overdraft(project.allocations, project.disbursements + ((day, amount),))
    if overdraft is not None:
        on, allocated, disbursed = overdraft
        raise RuleRefused(
            f"disbursing {money(amount)} yuan would bring disbursements to {money(disbursed)} yuan by {on}, "
            f"more than the {money(allocated)} yuan allocated by then",
            {"rule": "disbursement_within_allocation", "on": on.isoformat(), "allocated": money(allocated),
             "disbursed": money(disbursed), "requested": money(amount)})
    return [NewEvent("funds_disbursed", {
        "project_id": project.project_id, "department": project.department, "plan_year": project.plan_year,
        "amount": money(amount), "on": day.isoformat(), "payee": command["payee"],
    }, day.isoformat())]


# --- statistics (pure; the service feeds them from its read models) -------------------------------

@dataclass(frozen=True)
class ProjectFacts:
    """The dates that decide a project's state on any given day."""

    project_id: str
    deadline: date
    started_on: date | None = None
    completed_on: date | None = None
    accepted_on: date | None = None
    cancelled_on: date | None = None


@dataclass(frozen=True)
class FundMovement:
    kind: str  # "allocation" or "disbursement"
    amount: Decimal
    on: date


def facts_of(project):
    return ProjectFacts(project.project_id, project.deadline, project.started_on, project.completed_on,
                        project.accepted_on, project.cancelled_on)


def movements_of(project):
    return ([FundMovement("allocation", amount, on) for on, amount in project.allocations]
            + [FundMovement("disbursement", amount, on) for on, amount in project.disbursements])


def _by(day, when):
    return when is not None and when <= day


def status_on(facts, day):
    """What the project was on `day`, by the business dates of its events."""
    if _by(day, facts.cancelled_on):
        return "cancelled"
    if _by(day, facts.accepted_on):
        return "accepted"
    if _by(day, facts.completed_on):
        return "completed"
    if _by(day, facts.started_on):
        return "started"
    return "planned"


def is_overdue(facts, day):
    """Past its deadline on `day` and not completed by then (a cancelled project is not overdue)."""
    return facts.deadline < day and status_on(facts, day) in ("planned", "started")


def funds_by(movements, day):
    """(allocated, disbursed) counting the movements dated on or before `day`."""
    allocated = sum((m.amount for m in movements if m.kind == "allocation" and m.on <= day), Decimal(0))
    disbursed = sum((m.amount for m in movements if m.kind == "disbursement" and m.on <= day), Decimal(0))
    return allocated, disbursed


def _ratio(numerator, denominator):
    return None if not denominator else Decimal(numerator) / Decimal(denominator)


def department_statistics(department, plan_year, as_of, projects, movements, rules):
    """A department's projects of one plan year as of a date: counts by status, overdue,
    completion on time, funds, and the disbursement target (rate by 30 September)."""
    by_status = {status: 0 for status in STATUSES}
    for facts in projects:
        by_status[status_on(facts, as_of)] += 1
    overdue = sorted(facts.project_id for facts in projects if is_overdue(facts, as_of))
    completed = [facts for facts in projects if _by(as_of, facts.completed_on)]
    on_time = [facts for facts in completed if facts.completed_on <= facts.deadline]
    # Due: the deadline has come by the as-of date and the project was not cancelled by then.
    due = [facts for facts in projects if facts.deadline <= as_of and not _by(as_of, facts.cancelled_on)]
    due_on_time = [facts for facts in due if _by(facts.deadline, facts.completed_on)]
    allocated, disbursed = funds_by(movements, as_of)
    target_day = rules.disbursement_target_day(plan_year)
    measured_on = min(as_of, target_day)
    target_allocated, target_disbursed = funds_by(movements, measured_on)
    target_rate = _ratio(target_disbursed, target_allocated)
    return {
        "department": department,
        "plan_year": plan_year,
        "as_of": as_of.isoformat(),
        "projects": len(projects),
        "by_status": by_status,
        "overdue": len(overdue),
        "overdue_projects": overdue,
        "completed": len(completed),
        "completed_on_time": len(on_time),
        "completed_late": len(completed) - len(on_time),
        "due": len(due),
        "due_completed_on_time": len(due_on_time),
        "on_time_rate": rate_text(_ratio(len(due_on_time), len(due))),
        "allocated": money(allocated),
        "disbursed": money(disbursed),
        "disbursement_rate": rate_text(_ratio(disbursed, allocated)),
        "disbursement_target": {
            "target_rate": rate_text(rules.disbursement_target_rate),
            "target_date": target_day.isoformat(),
            "measured_on": measured_on.isoformat(),
            "allocated": money(target_allocated),
            "disbursed": money(target_disbursed),
            "rate": rate_text(target_rate),
            "met": None if target_rate is None else target_rate >= rules.disbursement_target_rate,
        },
    }


def infrastructure_kind(category):
    """"roads", "water", "power", or None for a category that is none of them."""
    for kind, categories in INFRASTRUCTURE_KINDS.items():
        if category in categories:
            return kind
    return None


def village_infrastructure(village_id, projects):
    """Group the projects serving a village (dicts with at least `category`) by kind."""
    grouped = {kind: [] for kind in INFRASTRUCTURE_KINDS}
    for item in projects:
        kind = infrastructure_kind(item["category"])
        if kind is not None:
            grouped[kind].append(item)
    return {"village_id": village_id, **grouped}
