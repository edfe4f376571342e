"""What the supervision (督查督战) gives the scores: the unit indicators `report_timeliness` and
`rectification` (DOMAIN.md, Supervision), and the 旬 rule for project progress reports.

Pure, like facts.py and scoring.py: `SupervisionFacts` is mixed into `Facts` (its `_on_*` handlers fold the
supervision service's events and the projects' progress reports, idempotent and in any order),
the functions below compute an indicator's numerator, denominator and evidence.

Charging: a weekly report or a problem is the responsibility of the party it names, a unit id,
a department code (every unit of that department answers for it, as for project delivery) or a
township id (a township is no unit subject: its reports count for no unit score). A 旬 without
a progress report is flagged against the project's department, so against each of its units.
"""
import calendar
from datetime import date, datetime
from decimal import Decimal


def _d(value):
    return value if isinstance(value, date) or value is None else date.fromisoformat(value)


class SupervisionFacts:
    """The supervision part of `Facts`: campaigns' due reports, reports made, problems, and
    the days each project reported progress on."""

    @property
    def supervision(self):
        found = getattr(self, "_supervision", None)
        if found is None:
            found = self._supervision = {
                "campaigns": {},  # campaign_id -> {name, starts_on, ends_on}
                "actions": {},  # (campaign_id, action_id) -> the action_added payload
                "reports": {},  # (campaign_id, unit_id, week) -> {late, first_reported_at, items, reported_at, revision}
                "milestones_met": {},  # (campaign_id, action_id, milestone_id) -> date
                "problems": {},  # problem_id -> {unit_id, deadline, closed_on, ...}
                "progress_days": {},  # project_id -> {date}
            }
        return found

    # supervision
    def _on_campaign_launched(self, p, e):
        self.supervision["campaigns"][p["campaign_id"]] = {"name": p["name"], "starts_on": _d(p["starts_on"]),
                                                           "ends_on": _d(p["ends_on"])}

    def _on_action_added(self, p, e):
        self.supervision["actions"][(p["campaign_id"], p["action_id"])] = p

    def _on_milestone_met(self, p, e):
        self.supervision["milestones_met"][(p["campaign_id"], p["action_id"], p["milestone_id"])] = _d(p["on"])

    def _on_weekly_report_submitted(self, p, e):
        key = (p["campaign_id"], p["unit_id"], p["week"])
        previous = self.supervision["reports"].get(key)
        if previous is None or previous["revision"] < int(p["revision"]):  # the latest revision's progress
            self.supervision["reports"][key] = {
                "late": bool(p["late"]),
                "first_reported_at": datetime.fromisoformat(p["first_reported_at"]),
                "reported_at": datetime.fromisoformat(p["reported_at"]), "items": p["items"],
                "revision": int(p["revision"])}

    def _problem(self, problem_id):
        return self.supervision["problems"].setdefault(problem_id, {"problem_id": problem_id, "closed_on": None})

    def _on_problem_recorded(self, p, e):
        self._problem(p["problem_id"]).update(
            unit_id=p["unit_id"], township_id=p.get("township_id"), source=p["source"],
            description=p["description"], found_on=_d(p["found_on"]), deadline=_d(p["deadline"]))

    def _on_problem_closed(self, p, e):
        self._problem(p["problem_id"])["closed_on"] = _d(p["on"])

    # projects: the days progress was reported on (the 旬 rule)
    def _on_progress_reported(self, p, e):
        self.supervision["progress_days"].setdefault(p["project_id"], set()).add(_d(p["reported_on"]))


# --- 旬 (ten-day periods) ------------------------------------------------------------------------

def xun_of(day):
    """The 旬 a day falls in: (first day, last day). Days 1–10, 11–20, 21–end of month."""
    if day.day <= 10:
        return date(day.year, day.month, 1), date(day.year, day.month, 10)
    if day.day <= 20:
        return date(day.year, day.month, 11), date(day.year, day.month, 20)
    return date(day.year, day.month, 21), date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])


def xuns(first, last):
    """Every 旬 that ends within first..last, in order."""
    found = []
    start, end = xun_of(first)
    while end <= last:
        found.append((start, end))
        start, end = xun_of(_next_day(end))
    return found


def _next_day(day):
    return date.fromordinal(day.toordinal() + 1)


def xun_label(start):
    part = {1: "上旬", 11: "中旬", 21: "下旬"}[start.day]
    return f"{start.year}-{start.month:02d} {part}"


def missing_xun_reports(project, progress_days, first, last):
    """The 旬 ending in first..last in which the project was under way the whole 旬 (started on
    or before its first day, not completed or cancelled by its last) and reported no progress.
    Returns (due, missing): the 旬 due and those without a report."""
    if project.started_on is None:
        return [], []
    due, missing = [], []
    for start, end in xuns(max(first, project.started_on), last):
        if project.started_on > start:
            continue
        if any(day is not None and day <= end for day in (project.completed_on, project.cancelled_on)):
            break
        due.append((start, end))
        if not any(start <= day <= end for day in progress_days):
            missing.append((start, end))
    return due, missing


# --- the indicators ------------------------------------------------------------------------------

def _charged(party, unit_id, department):
    return party is not None and party in (unit_id, department)


def report_timeliness(facts, index, unit_id, department, period, as_of):
    """Weekly campaign reports and 旬 project reports due from the unit in the period up to as-of:
    (made on time, due, evidence of each late or missing one).

    A weekly report is due once its due day has come (Friday 12:00 county time is on that day);
    it is on time when the service found it on time and it was made by the as-of date. A 旬 is
    due once it has ended; any progress report dated in it counts."""
    last = min(period.end, as_of)
    sup = facts.supervision
    due = on_time = 0
    evidence = []
    owed = {}  # (campaign_id, reporter, week) -> due_at text: each week once, however many actions
    for (campaign_id, _), action in sorted(facts.supervision["actions"].items()):
        for reporter in action.get("reporters", []):
            if reporter.get("kind") == "township" or not _charged(reporter["unit_id"], unit_id, department):
                continue
            for slot in action.get("reports_due", []):
                owed[(campaign_id, reporter["unit_id"], slot["week"])] = slot["due_at"]
    for (campaign_id, reporter, week), due_at in sorted(owed.items()):
        due_day = datetime.fromisoformat(due_at).date()
        if not period.start <= due_day <= last:
            continue
        due += 1
        report = sup["reports"].get((campaign_id, reporter, week))
        made = report is not None and report["first_reported_at"].date() <= as_of
        if made and not report["late"]:
            on_time += 1
            continue
        evidence.append({"kind": "weekly_report", "campaign_id": campaign_id, "reported_by": reporter, "week": week,
                         "due_at": due_at, "reported_at": report["first_reported_at"].isoformat() if made else None,
                         "status": "late" if made else "missing"})
    for project in sorted(index["projects_by_department"].get(department, []) if department else [],
                          key=lambda p: p.project_id):
        xun_due, missing = missing_xun_reports(project, {d for d in sup["progress_days"].get(project.project_id, ())
                                                         if d <= as_of}, period.start, last)
        due += len(xun_due)
        on_time += len(xun_due) - len(missing)
        evidence.extend({"kind": "xun_report", "project_id": project.project_id, "title": project.title,
                         "xun": xun_label(start), "from": start.isoformat(), "until": end.isoformat(),
                         "status": "missing"} for start, end in missing)
    return on_time, due, evidence


def rectification(facts, unit_id, department, period, as_of):
    """Problems charged to the unit whose deadline falls in the period up to as-of: (verified
    closed (销号) by the deadline, due, evidence of each overdue or late-closed one)."""
    last = min(period.end, as_of)
    due = closed = 0
    evidence = []
    for problem_id, problem in sorted(facts.supervision["problems"].items()):
        deadline = problem.get("deadline")
        if deadline is None or not _charged(problem.get("unit_id"), unit_id, department):
            continue
        if not period.start <= deadline <= last:
            continue
        due += 1
        closed_on = problem["closed_on"] if problem["closed_on"] and problem["closed_on"] <= as_of else None
        if closed_on is not None and closed_on <= deadline:
            closed += 1
            continue
        evidence.append({"kind": "problem", "problem_id": problem_id, "description": problem.get("description"),
                         "responsible": problem.get("unit_id"), "township_id": problem.get("township_id"),
                         "deadline": deadline.isoformat(),
                         "closed_on": closed_on.isoformat() if closed_on else None,
                         "status": "closed_late" if closed_on else "overdue"})
    return closed, due, evidence


# --- the weekly bulletin's supervision part --------------------------------------------------------

def _quantity(value):
    return format(value.normalize(), "f")


def _progress(facts, campaign_id, end):
    """For each (action_id, target_id): [(day, total so far)] from the reports made by `end`,
    each reporter's latest progress counting once (progress is cumulative)."""
    reports = sorted(((unit, week, r) for (c, unit, week), r in facts.supervision["reports"].items()
                      if c == campaign_id and r["first_reported_at"] <= end),
                     key=lambda item: (item[2]["reported_at"], item[1]))
    latest, history = {}, {}
    for unit, _, report in reports:
        for item in report["items"]:
            key = (item["action_id"], item["target_id"])
            latest.setdefault(key, {})[unit] = Decimal(item["progress"])
            history.setdefault(key, []).append((report["reported_at"].date(), sum(latest[key].values(), Decimal(0))))
    return latest, history


def campaign_progress(facts, first, day, end):
    """Per campaign running in first..day: per action each target's quantity, done and percent,
    and its milestones met, missed or pending on `day`, from the reports made by the moment `end`."""
    campaigns = []
    sup = facts.supervision
    for campaign_id, campaign in sorted(sup["campaigns"].items()):
        if campaign["starts_on"] > day or campaign["ends_on"] < first:
            continue
        latest, history = _progress(facts, campaign_id, end)
        actions = []
        for (c, action_id), action in sorted(sup["actions"].items()):
            if c != campaign_id:
                continue
            targets = []
            for target in action.get("targets", []):
                quantity = Decimal(target["quantity"])
                done = sum(latest.get((action_id, target["target_id"]), {}).values(), Decimal(0))
                targets.append({"target_id": target["target_id"], "name": target["name"],
                                "unit_of_measure": target["unit_of_measure"], "quantity": target["quantity"],
                                "done": _quantity(done),
                                "percent": None if not quantity else float(round(min(Decimal(1), done / quantity)
                                                                                 * 100, 1))})
            met, missed, pending = [], [], []
            for milestone in action.get("milestones", []):
                due_on = _d(milestone["due_on"])
                if milestone.get("target_id"):
                    needed = Decimal(milestone["quantity"])
                    met_on = next((d for d, total in history.get((action_id, milestone["target_id"]), [])
                                   if total >= needed), None)
                else:
                    met_on = sup["milestones_met"].get((campaign_id, action_id, milestone["milestone_id"]))
                    met_on = met_on if met_on is not None and met_on <= day else None
                entry = {"what": milestone["what"], "due_on": milestone["due_on"],
                         "met_on": met_on.isoformat() if met_on else None}
                if met_on is not None and met_on <= due_on:
                    met.append(entry)
                elif due_on < day:
                    missed.append(entry)
                else:
                    pending.append(entry)
            actions.append({"action_id": action_id, "name": action["name"], "lead": action.get("lead"),
                            "targets": targets, "milestones_met": met, "milestones_missed": missed,
                            "milestones_pending": len(pending)})
        campaigns.append({"campaign_id": campaign_id, "name": campaign["name"],
                          "starts_on": campaign["starts_on"].isoformat(), "ends_on": campaign["ends_on"].isoformat(),
                          "actions": actions})
    return campaigns


def lapses_by_unit(facts, day, end):
    """Per responsible party: its late and missing weekly reports due by the moment `end`, and
    its problems open past their deadline on `day`."""
    sup = facts.supervision
    found = {}

    def party(unit_id):
        return found.setdefault(unit_id, {"unit_id": unit_id, "late": [], "missing": [], "overdue_problems": []})

    owed = {}
    for (campaign_id, _), action in sorted(sup["actions"].items()):
        for reporter in action.get("reporters", []):
            for slot in action.get("reports_due", []):
                owed[(campaign_id, reporter["unit_id"], slot["week"])] = datetime.fromisoformat(slot["due_at"])
    for (campaign_id, unit_id, week), due_at in sorted(owed.items()):
        if due_at > end:
            continue
        report = sup["reports"].get((campaign_id, unit_id, week))
        if report is None or report["first_reported_at"] > end:
            party(unit_id)["missing"].append({"campaign_id": campaign_id, "week": week})
        elif report["late"]:
            party(unit_id)["late"].append({"campaign_id": campaign_id, "week": week,
                                           "reported_at": report["first_reported_at"].isoformat()})
    for problem_id, problem in sorted(sup["problems"].items()):
        deadline = problem.get("deadline")
        closed_on = problem["closed_on"] if problem["closed_on"] and problem["closed_on"] <= day else None
        if deadline is None or problem.get("found_on") is None or problem["found_on"] > day:
            continue
        if closed_on is None and deadline < day:
            party(problem["unit_id"])["overdue_problems"].append(
                {"problem_id": problem_id, "description": problem.get("description"),
                 "deadline": deadline.isoformat(), "days_overdue": (day - deadline).days})
    return [entry for _, entry in sorted(found.items())]
