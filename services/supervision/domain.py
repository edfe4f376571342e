"""Supervision (督查督战): campaigns, weekly reports, the rectification ledger. Pure: no I/O, no clock.

Streams: one "campaign" stream per campaign (its launch, actions and milestones met), one
"weekly_report" stream per (campaign, reporting unit, ISO week), one "problem" stream per problem
of the rectification ledger. Each `decide_*` takes the folded state (None when the stream is
empty), a command dict marshmallow already typed (dates are `date`, quantities `Decimal`,
`reported_at` an aware datetime) and the county's `Rules`; it returns new events or raises.
"""
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from services.common.errors import Conflict, NotFound, RuleRefused
from services.common.events import NewEvent
from services.common.values import day as _day

from .schemas import ALL_TOWNSHIPS

DEFAULT_DEPARTMENTS = ("transport", "water", "power", "health", "housing", "education", "agriculture",
                       "civil_affairs", "finance", "poverty_office", "other")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class Rules:
    """The county rulebook's values for supervision (DOMAIN.md; 001 §四(二) 周通报制度)."""

    timezone: str = "Asia/Shanghai"  # the county's clock: a report's time is county time
    report_weekday: str = "friday"  # weekly reports are due on this day of their ISO week ...
    report_deadline: str = "12:00"  # ... by this county time (每周五中午12时前)
    departments: tuple = DEFAULT_DEPARTMENTS  # a responsible unit named by one of these is a department

    def __post_init__(self):
        ZoneInfo(self.timezone)  # an unknown zone fails at start, not at the first report
        if self.report_weekday not in WEEKDAYS:
            raise ValueError(f"Rules.report_weekday must be one of {', '.join(WEEKDAYS)}")
        self.deadline_time()
        object.__setattr__(self, "departments", tuple(self.departments))

    @property
    def zone(self):
        return ZoneInfo(self.timezone)

    def deadline_time(self):
        try:
            hours, minutes = (int(part) for part in str(self.report_deadline).split(":"))
            return time(hours, minutes)
        except (TypeError, ValueError):
            raise ValueError(f"Rules.report_deadline must be 'HH:MM', not {self.report_deadline!r}") from None


# --- weeks and due times ----------------------------------------------------------------------------

def week_monday(week):
    """`2023-W23` → the Monday that ISO week starts on."""
    year, number = week.split("-W")
    return date.fromisocalendar(int(year), int(number), 1)


def iso_week(day):
    year, number, _ = day.isocalendar()
    return f"{year}-W{number:02d}"


def report_day(week, rules):
    return week_monday(week) + timedelta(days=WEEKDAYS.index(rules.report_weekday))


def report_due_at(week, rules):
    """When the weekly report for `week` is due: Friday 12:00 county time by default."""
    return datetime.combine(report_day(week, rules), rules.deadline_time(), tzinfo=rules.zone)


def county_time(moment, rules):
    """An aware datetime in county time; a naive one is taken to be county time already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=rules.zone)
    return moment.astimezone(rules.zone)


def due_weeks(starts_on, ends_on, rules):
    """The ISO weeks whose report day falls within the campaign (the weeks a report is due for)."""
    weeks = []
    monday = starts_on - timedelta(days=starts_on.weekday())
    while monday <= ends_on:
        week = iso_week(monday)
        if starts_on <= report_day(week, rules) <= ends_on:
            weeks.append(week)
        monday += timedelta(days=7)
    return weeks


def is_late(reported_at, week, rules):
    return county_time(reported_at, rules) > report_due_at(week, rules)


# --- campaigns --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    name: str
    starts_on: date
    ends_on: date
    phases: tuple  # ({name, from, until}, ...) as recorded
    actions: dict = field(default_factory=dict)  # action_id → the action_added payload
    milestones_met: dict = field(default_factory=dict)  # (action_id, milestone_id) → date

    def reporters(self):
        """Every responsible unit that owes weekly reports: reporter id → kind."""
        found = {}
        for action in self.actions.values():
            for reporter in action["reporters"]:
                found[reporter["unit_id"]] = reporter["kind"]
        return found


def evolve_campaign(state, event):
    payload = event.payload
    if event.type == "campaign_launched":
        return Campaign(payload["campaign_id"], payload["name"], _day(payload["starts_on"]),
                        _day(payload["ends_on"]), tuple(payload["phases"]))
    if event.type == "action_added":
        return replace(state, actions={**state.actions, payload["action_id"]: payload})
    if event.type == "milestone_met":
        return replace(state, milestones_met={**state.milestones_met,
                                              (payload["action_id"], payload["milestone_id"]): _day(payload["on"])})
    return state


def _quantity_text(quantity):
    return None if quantity is None else format(Decimal(quantity).normalize(), "f")


def decide_launch(state, command):
    if command["ends_on"] < command["starts_on"]:
        raise RuleRefused("the campaign ends before it starts", {"rule": "ends_not_before_start", "field": "ends_on"})
    phases = []
    for index, phase in enumerate(command.get("phases") or []):
        if phase["until"] < phase["from_"]:
            raise RuleRefused("a phase ends before it starts", {"rule": "phase_ends_not_before_start",
                                                                  "field": f"phases.{index}.until"})
        if phase["from_"] < command["starts_on"] or phase["until"] > command["ends_on"]:
            raise RuleRefused("a phase lies outside the campaign", {"rule": "phase_within_campaign",
                                                                      "field": f"phases.{index}"})
        phases.append({"name": phase["name"], "from": phase["from_"].isoformat(), "until": phase["until"].isoformat()})
    payload = {"campaign_id": command["campaign_id"], "name": command["name"],
               "starts_on": command["starts_on"].isoformat(), "ends_on": command["ends_on"].isoformat(),
               "phases": phases}
    if state is not None:
        recorded = {"campaign_id": state.campaign_id, "name": state.name, "starts_on": state.starts_on.isoformat(),
                    "ends_on": state.ends_on.isoformat(), "phases": list(state.phases)}
        if recorded == payload:
            return []
        raise Conflict(f"campaign {state.campaign_id} is already launched with different content",
                       {"campaign_id": state.campaign_id})
    return [NewEvent("campaign_launched", payload, command["starts_on"].isoformat())]


def _existing_campaign(state, campaign_id):
    if state is None:
        raise NotFound(f"no campaign {campaign_id}", {"campaign_id": campaign_id})
    return state


def resolve_reporters(command, rules):
    """Who reports for an action: each unit id or department code named, and each township
    `all_townships` stands for (the command's `townships`, else those its targets are split by)."""
    reporters = []
    for entry in command["responsible_units"]:
        if entry == ALL_TOWNSHIPS:
            townships = command.get("townships")
            if townships is None:
                townships = sorted({t for target in command.get("targets") or [] for t in target["by_township"]})
            if not townships:
                raise RuleRefused("all_townships needs the townships it stands for: name them, or split a "
                                  "target by_township", {"rule": "all_townships_named", "field": "townships"})
            reporters.extend({"unit_id": township, "kind": "township"} for township in townships)
        elif entry in rules.departments:
            reporters.append({"unit_id": entry, "kind": "department"})
        else:
            reporters.append({"unit_id": entry, "kind": "unit"})
    unique = {}
    for reporter in reporters:
        unique.setdefault(reporter["unit_id"], reporter)
    return list(unique.values())


def decide_add_action(state, command, rules):
    campaign = _existing_campaign(state, command["campaign_id"])
    targets = []
    for index, target in enumerate(command.get("targets") or []):
        split = sum(target["by_township"].values(), Decimal(0))
        if target["by_township"] and split != target["quantity"]:
            raise RuleRefused(f"target {target['target_id']}: the townships' shares add up to "
                              f"{_quantity_text(split)}, the target is {_quantity_text(target['quantity'])}",
                              {"rule": "township_shares_add_up", "field": f"targets.{index}.by_township"})
        targets.append({"target_id": target["target_id"], "name": target["name"],
                        "unit_of_measure": target["unit_of_measure"], "quantity": _quantity_text(target["quantity"]),
                        "by_township": {t: _quantity_text(q) for t, q in sorted(target["by_township"].items())}})
    target_ids = {target["target_id"] for target in targets}
    milestones = []
    for index, milestone in enumerate(command.get("milestones") or []):
        if not campaign.starts_on <= milestone["due_on"] <= campaign.ends_on:
            raise RuleRefused(f"a milestone is due outside the campaign ({campaign.starts_on}..{campaign.ends_on})",
                              {"rule": "milestone_within_campaign", "field": f"milestones.{index}.due_on"})
        if milestone.get("target_id") is not None and milestone["target_id"] not in target_ids:
            raise RuleRefused("a milestone names a target this action does not have",
                              {"rule": "milestone_of_own_target", "field": f"milestones.{index}.target_id"})
        milestones.append({"milestone_id": milestone.get("milestone_id") or f"m{index + 1}",
                           "what": milestone["what"], "due_on": milestone["due_on"].isoformat(),
                           "target_id": milestone.get("target_id"),
                           "quantity": _quantity_text(milestone.get("quantity"))})
    if len({m["milestone_id"] for m in milestones}) != len(milestones):
        raise RuleRefused("a milestone_id is listed twice", {"rule": "milestone_id_once", "field": "milestones"})
    reporters = resolve_reporters(command, rules)
    payload = {"campaign_id": campaign.campaign_id, "action_id": command["action_id"], "name": command["name"],
               "lead": command["lead"], "responsible_units": list(command["responsible_units"]),
               "reporters": reporters, "targets": targets, "milestones": milestones,
               # when each weekly report is due, under the rules in force: the assessment counts
               # late and missing reports from these without a copy of the rule
               "reports_due": [{"week": week, "due_at": report_due_at(week, rules).isoformat()}
                               for week in due_weeks(campaign.starts_on, campaign.ends_on, rules)]}
    if command["action_id"] in campaign.actions:
        if campaign.actions[command["action_id"]] == payload:
            return []
        raise Conflict(f"action {command['action_id']} is already in campaign {campaign.campaign_id} with "
                       "different content", {"action_id": command["action_id"]})
    return [NewEvent("action_added", payload, campaign.starts_on.isoformat())]


def decide_mark_milestone(state, command):
    campaign = _existing_campaign(state, command["campaign_id"])
    action = campaign.actions.get(command["action_id"])
    if action is None:
        raise NotFound(f"no action {command['action_id']} in campaign {campaign.campaign_id}",
                       {"action_id": command["action_id"]})
    milestone = next((m for m in action["milestones"] if m["milestone_id"] == command["milestone_id"]), None)
    if milestone is None:
        raise NotFound(f"no milestone {command['milestone_id']} in action {action['action_id']}",
                       {"milestone_id": command["milestone_id"]})
    if milestone["target_id"] is not None:
        raise RuleRefused("this milestone is met by the reported progress of its target, not by hand",
                          {"rule": "milestone_met_by_reports", "target_id": milestone["target_id"]})
    key = (action["action_id"], milestone["milestone_id"])
    if key in campaign.milestones_met:
        if campaign.milestones_met[key] == command["on"]:
            return []
        raise Conflict(f"milestone {milestone['milestone_id']} was already met on {campaign.milestones_met[key]}",
                       {"met_on": campaign.milestones_met[key].isoformat()})
    if command["on"] < campaign.starts_on:
        raise RuleRefused("a milestone cannot be met before the campaign starts",
                          {"rule": "milestone_within_campaign", "starts_on": campaign.starts_on.isoformat()})
    return [NewEvent("milestone_met", {"campaign_id": campaign.campaign_id, "action_id": action["action_id"],
                                       "milestone_id": milestone["milestone_id"], "on": command["on"].isoformat()},
                     command["on"].isoformat())]


# --- weekly reports ---------------------------------------------------------------------------------

def report_stream_id(campaign_id, unit_id, week):
    return f"{campaign_id}/{unit_id}/{week}"


def evolve_report(state, event):
    """A weekly report's state is its latest submission's payload."""
    return event.payload if event.type == "weekly_report_submitted" else state


def _check_signer(reporter_kind, unit_id, signer):
    """The report is signed off by the reporting unit's head (001: 经主要领导签字). The gateway
    looks the cadre up; a township's head need not be a registered cadre."""
    if signer is None:
        return
    if not signer.get("known", True):
        if reporter_kind == "township":
            return
        raise RuleRefused(f"{signer.get('cadre_id')} is not a registered cadre",
                          {"rule": "signed_off_by_head", "signed_off_by": signer.get("cadre_id")})
    if signer.get("rank") != "head":
        raise RuleRefused(f"{signer.get('cadre_id')} is not the head of a unit; the head signs the report",
                          {"rule": "signed_off_by_head", "rank": signer.get("rank")})
    if reporter_kind == "unit" and signer.get("unit_id") != unit_id:
        raise RuleRefused(f"{signer.get('cadre_id')} is the head of {signer.get('unit_id')}, not of {unit_id}",
                          {"rule": "signed_off_by_head", "signer_unit_id": signer.get("unit_id")})
    if reporter_kind == "department" and signer.get("department") != unit_id:
        raise RuleRefused(f"{signer.get('cadre_id')} heads a {signer.get('department')} unit, not one of {unit_id}",
                          {"rule": "signed_off_by_head", "signer_department": signer.get("department")})


def decide_weekly_report(campaign, previous, command, rules, now):
    """A responsible unit's weekly report. `now` is the aware current time; `reported_at`
    defaults to it. Later than the week's due time is late. Submitting again replaces the
    progress; whether the week was reported on time stays as the first submission said."""
    campaign = _existing_campaign(campaign, command["campaign_id"])
    week, unit_id = command["week"], command["unit_id"]
    if week not in due_weeks(campaign.starts_on, campaign.ends_on, rules):
        raise RuleRefused(f"no weekly report is due for {week}: campaign {campaign.campaign_id} runs "
                          f"{campaign.starts_on}..{campaign.ends_on}",
                          {"rule": "report_week_in_campaign", "week": week})
    reporters = campaign.reporters()
    if unit_id not in reporters:
        raise RuleRefused(f"{unit_id} is not responsible for any action of campaign {campaign.campaign_id}",
                          {"rule": "responsible_unit_reports", "unit_id": unit_id})
    items = []
    for index, item in enumerate(command["items"]):
        action = campaign.actions.get(item["action_id"])
        if action is None:
            raise RuleRefused(f"{item['action_id']} is not an action of campaign {campaign.campaign_id}",
                              {"rule": "report_on_own_action", "field": f"items.{index}.action_id"})
        if unit_id not in {r["unit_id"] for r in action["reporters"]}:
            raise RuleRefused(f"{unit_id} is not responsible for action {action['action_id']}",
                              {"rule": "responsible_unit_reports", "action_id": action["action_id"]})
        if item["target_id"] not in {t["target_id"] for t in action["targets"]}:
            raise RuleRefused(f"{item['target_id']} is not a target of action {action['action_id']}",
                              {"rule": "report_on_own_target", "field": f"items.{index}.target_id"})
        items.append({"action_id": item["action_id"], "target_id": item["target_id"],
                      "progress": _quantity_text(item["progress"]), "problems": item.get("problems") or ""})
    _check_signer(reporters[unit_id], unit_id, command.get("signer"))
    now = county_time(now, rules)
    reported_at = county_time(command.get("reported_at") or now, rules)
    if reported_at > now + timedelta(minutes=5):  # a little clock skew between machines is no lie
        raise RuleRefused("a report cannot be dated in the future", {"rule": "not_in_future",
                                                                     "reported_at": reported_at.isoformat()})
    if reported_at.date() < week_monday(week):
        raise RuleRefused(f"{week} has not begun on {reported_at.date()}", {"rule": "report_after_week_begins"})
    due_at = report_due_at(week, rules)
    payload = {"campaign_id": campaign.campaign_id, "unit_id": unit_id, "week": week,
               "due_at": due_at.isoformat(), "reported_at": reported_at.isoformat(),
               "late": reported_at > due_at, "items": items, "signed_off_by": command["signed_off_by"],
               "revision": 1, "first_reported_at": reported_at.isoformat()}
    if previous is not None:
        if previous["items"] == items and previous["signed_off_by"] == command["signed_off_by"]:
            return []
        payload.update(revision=previous["revision"] + 1, first_reported_at=previous["first_reported_at"],
                       late=previous["late"])
    return [NewEvent("weekly_report_submitted", payload, reported_at.date().isoformat())]


# --- the campaign view ------------------------------------------------------------------------------

def _percent(done, quantity):
    if quantity == 0:
        return None
    return float(min(Decimal(100), (done * 100 / quantity)).quantize(Decimal("0.1")))


def campaign_view(campaign, reports, as_of, rules):
    """Progress per action, target and township; milestones met, missed or pending; the late
    and missing weekly reports by unit, all as of the aware time `as_of`.

    `reports` are the latest submissions (payloads) of every (unit, week) of the campaign."""
    as_of = county_time(as_of, rules)
    reports = sorted((r for r in reports if datetime.fromisoformat(r["first_reported_at"]) <= as_of),
                     key=lambda r: (r["week"], r["reported_at"]))
    latest = {}  # (action_id, target_id) → unit → (week, progress)
    progress_history = {}  # (action_id, target_id) → [(day, total so far)]
    for report in sorted(reports, key=lambda r: r["reported_at"]):
        for item in report["items"]:
            key = (item["action_id"], item["target_id"])
            latest.setdefault(key, {})[report["unit_id"]] = Decimal(item["progress"])
            progress_history.setdefault(key, []).append(
                (datetime.fromisoformat(report["reported_at"]).date(), sum(latest[key].values(), Decimal(0))))
    actions = []
    for action in sorted(campaign.actions.values(), key=lambda a: a["action_id"]):
        targets = []
        for target in action["targets"]:
            key = (action["action_id"], target["target_id"])
            by_unit = latest.get(key, {})
            quantity = Decimal(target["quantity"])
            done = sum(by_unit.values(), Decimal(0))
            townships = [{"township_id": township, "quantity": share,
                          "done": _quantity_text(by_unit.get(township, Decimal(0))),
                          "percent": _percent(by_unit.get(township, Decimal(0)), Decimal(share))}
                         for township, share in target["by_township"].items()]
            targets.append({**{k: target[k] for k in ("target_id", "name", "unit_of_measure", "quantity")},
                            "done": _quantity_text(done), "percent": _percent(done, quantity),
                            "by_unit": {unit: _quantity_text(q) for unit, q in sorted(by_unit.items())},
                            "by_township": townships})
        milestones = []
        for milestone in action["milestones"]:
            due_on = date.fromisoformat(milestone["due_on"])
            if milestone["target_id"] is not None:
                needed = Decimal(milestone["quantity"])
                met_on = next((day for day, total in progress_history.get((action["action_id"], milestone["target_id"]),
                                                                         []) if total >= needed), None)
            else:
                met_on = campaign.milestones_met.get((action["action_id"], milestone["milestone_id"]))
                met_on = met_on if met_on is not None and met_on <= as_of.date() else None
            if met_on is not None and met_on <= due_on:
                status = "met"
            elif due_on < as_of.date():
                status = "missed"
            else:
                status = "pending"
            milestones.append({**milestone, "status": status, "met_on": met_on.isoformat() if met_on else None})
        actions.append({"action_id": action["action_id"], "name": action["name"], "lead": action["lead"],
                        "responsible_units": action["responsible_units"],
                        "reporters": [r["unit_id"] for r in action["reporters"]],
                        "targets": targets, "milestones": milestones})
    return {
        "campaign_id": campaign.campaign_id, "name": campaign.name,
        "starts_on": campaign.starts_on.isoformat(), "ends_on": campaign.ends_on.isoformat(),
        "phases": list(campaign.phases), "current_phase": current_phase(campaign, as_of.date()),
        "as_of": as_of.isoformat(), "actions": actions,
        "reports": report_timeliness(campaign, reports, as_of, rules),
    }


def current_phase(campaign, day):
    return next((phase["name"] for phase in campaign.phases
                 if date.fromisoformat(phase["from"]) <= day <= date.fromisoformat(phase["until"])), None)


def report_timeliness(campaign, reports, as_of, rules):
    """Per responsible unit: the reports due by `as_of` (their due time passed), on time,
    late (with the week and when it came) and missing (weeks with no report at all yet)."""
    as_of = county_time(as_of, rules)
    first = {(r["unit_id"], r["week"]): r for r in reports}
    due = [week for week in due_weeks(campaign.starts_on, campaign.ends_on, rules)
           if report_due_at(week, rules) < as_of]
    units = []
    for unit_id, kind in sorted(campaign.reporters().items()):
        late, missing, on_time = [], [], 0
        for week in due:
            report = first.get((unit_id, week))
            if report is None:
                missing.append(week)
            elif report["late"]:
                late.append({"week": week, "due_at": report["due_at"], "reported_at": report["first_reported_at"]})
            else:
                on_time += 1
        units.append({"unit_id": unit_id, "kind": kind, "due": len(due), "on_time": on_time, "late": late,
                      "missing": missing})
    return {"weeks_due": due, "units": units}


# --- the rectification ledger ----------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    problem_id: str
    record: dict  # the problem_recorded payload
    deadline: date
    found_on: date
    status: str = "open"  # open, awaiting_verification, closed
    measures: tuple = ()  # ({on, measures}, ...)
    last_step_on: date | None = None
    closure_requested_on: date | None = None
    closed_on: date | None = None
    sent_back: tuple = ()  # ({on, note}, ...)
    note: str | None = None


def evolve_problem(state, event):
    payload = event.payload
    kind = event.type
    if kind == "problem_recorded":
        found_on = _day(payload["found_on"])
        return Problem(payload["problem_id"], dict(payload), _day(payload["deadline"]), found_on, last_step_on=found_on)
    if kind == "measures_recorded":
        return replace(state, measures=state.measures + ({"on": payload["on"], "measures": payload["measures"]},),
                       last_step_on=_day(payload["on"]))
    if kind == "closure_requested":
        return replace(state, status="awaiting_verification", closure_requested_on=_day(payload["on"]),
                       last_step_on=_day(payload["on"]))
    if kind == "problem_closed":
        return replace(state, status="closed", closed_on=_day(payload["on"]), last_step_on=_day(payload["on"]),
                       note=payload["note"])
    if kind == "problem_sent_back":
        return replace(state, status="open", closure_requested_on=None, last_step_on=_day(payload["on"]),
                       sent_back=state.sent_back + ({"on": payload["on"], "note": payload["note"]},),
                       note=payload["note"])
    return state


def problem_status(problem, as_of):
    """open / awaiting_verification / closed, or overdue: not closed and past its deadline."""
    if problem["status"] != "closed" and date.fromisoformat(problem["deadline"]) < as_of:
        return "overdue"
    return problem["status"]


def problem_view(problem):
    return {**problem.record, "status": problem.status, "measures": list(problem.measures),
            "closure_requested_on": problem.closure_requested_on.isoformat() if problem.closure_requested_on else None,
            "closed_on": problem.closed_on.isoformat() if problem.closed_on else None,
            "closed_on_time": (problem.closed_on <= problem.deadline) if problem.closed_on else None,
            "sent_back": list(problem.sent_back), "note": problem.note}


def decide_record_problem(state, command):
    if command["deadline"] < command["found_on"]:
        raise RuleRefused(f"the deadline ({command['deadline']}) is before the problem was found ({command['found_on']})",
                          {"rule": "deadline_not_before_found_on", "field": "deadline"})
    payload = {"problem_id": command["problem_id"], "source": command["source"],
               "found_on": command["found_on"].isoformat(), "description": command["description"],
               "unit_id": command["unit_id"], "township_id": command.get("township_id"),
               "household_id": command.get("household_id"), "deadline": command["deadline"].isoformat(),
               "reference": command.get("reference")}
    if state is not None:
        if state.record == payload:
            return []
        raise Conflict(f"problem {state.problem_id} is already recorded with different content",
                       {"problem_id": state.problem_id})
    return [NewEvent("problem_recorded", payload, command["found_on"].isoformat())]


def _existing_problem(state, command):
    if state is None:
        raise NotFound(f"no problem {command['problem_id']}", {"problem_id": command["problem_id"]})
    if state.status == "closed":
        raise RuleRefused(f"problem {state.problem_id} was closed (销号) on {state.closed_on}",
                          {"rule": "nothing_after_closure", "closed_on": state.closed_on.isoformat()})
    if command["on"] < state.last_step_on:
        raise RuleRefused(f"{command['on']} is before the problem's last step on {state.last_step_on}",
                          {"rule": "steps_in_order", "last_step_on": state.last_step_on.isoformat()})
    return state


def _problem_event(kind, problem, on, **extra):
    return NewEvent(kind, {"problem_id": problem.problem_id, "unit_id": problem.record["unit_id"],
                           "on": on.isoformat(), **extra}, on.isoformat())


def decide_record_measures(state, command):
    problem = _existing_problem(state, command)
    if problem.status == "awaiting_verification":
        raise RuleRefused("closure was requested: the finder verifies it or sends it back first",
                          {"rule": "measures_while_open", "status": problem.status})
    return [_problem_event("measures_recorded", problem, command["on"], measures=command["measures"])]


def decide_request_closure(state, command):
    problem = _existing_problem(state, command)
    if problem.status == "awaiting_verification":
        raise RuleRefused(f"closure was already requested on {problem.closure_requested_on}",
                          {"rule": "closure_once", "closure_requested_on": problem.closure_requested_on.isoformat()})
    if not problem.measures:
        raise RuleRefused("record the measures taken before asking for closure", {"rule": "measures_before_closure"})
    return [_problem_event("closure_requested", problem, command["on"])]


def decide_verify(state, command):
    problem = _existing_problem(state, command)
    if problem.status != "awaiting_verification":
        raise RuleRefused("nothing to verify: the unit has not asked for closure",
                          {"rule": "verify_after_request", "status": problem.status})
    if command["accepted"]:
        return [_problem_event("problem_closed", problem, command["on"], note=command.get("note") or "",
                               deadline=problem.deadline.isoformat(), on_time=command["on"] <= problem.deadline)]
    return [_problem_event("problem_sent_back", problem, command["on"], note=command.get("note") or "")]
