"""The weekly bulletin (周通报, due each Friday 12:00, seed 001 §四(二)): per department and per
township, what happened in the ISO week and where the month and the year stand."""
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from services.common.clock import DEFAULT_TIMEZONE

from . import sheets, supervision
from .scoring import _month_end, iso_week

COLUMNS = [
    ("kind", "类别"), ("id", "编号"), ("name", "名称"), ("visits_this_week", "本周走访户次"),
    ("month_visit_compliance", "本月走访达标率"), ("projects_started", "本周开工项目"),
    ("projects_completed", "本周完工项目"), ("projects_overdue", "逾期未完工项目"),
    ("disbursement_rate", "资金拨付率"), ("loans_applied", "本周贷款申请"), ("loans_approved", "本周贷款审批"),
    ("loans_overdue", "逾期贷款"), ("exits_this_week", "本周脱贫户"), ("new_monitoring_flags", "本周新增监测户"),
]


def _rate(numerator, denominator):
    return None if not denominator else float(round(Decimal(numerator) / Decimal(denominator), 4))


def weekly_bulletin(facts, week):
    monday, sunday = iso_week(week)
    month_start = date(sunday.year, sunday.month, 1)
    in_week = lambda day: day is not None and monday <= day <= sunday  # noqa: E731
    index = facts.index()
    rows = []

    def month_compliance(pairings):
        active = [p for p in pairings if p.active_whole(month_start, _month_end(month_start))]
        visited = sum(1 for p in active if any(month_start <= d <= sunday for d in facts.visits.get(p.pairing_id, ())))
        return _rate(visited, len(active))

    departments = sorted({u["department"] for u in facts.units.values() if u.get("department")}
                         | {p.department for p in facts.projects.values() if p.department})
    for department in departments:
        units = {u for u, info in facts.units.items() if info.get("department") == department}
        pairings = [p for u in units for p in index["pairings_by_unit"].get(u, [])]
        projects = index["projects_by_department"].get(department, [])
        ids = {p.project_id for p in projects if p.plan_year == sunday.year}
        allocated = sum((a for pid, d, a in facts.allocations.values() if pid in ids and d <= sunday), Decimal(0))
        disbursed = sum((a for pid, d, a in facts.disbursements.values() if pid in ids and d <= sunday), Decimal(0))
        rows.append({
            "kind": "department", "id": department, "name": department,
            "visits_this_week": sum(1 for day, _, unit, _ in facts.visit_log if unit in units and in_week(day)),
            "month_visit_compliance": month_compliance(pairings),
            "projects_started": sum(1 for p in projects if in_week(p.started_on)),
            "projects_completed": sum(1 for p in projects if in_week(p.completed_on)),
            "projects_overdue": sum(1 for p in projects if p.deadline and p.deadline < sunday and not p.cancelled_on
                                    and not (p.completed_on and p.completed_on <= sunday)),
            "disbursement_rate": _rate(disbursed, allocated),
            "loans_applied": None, "loans_approved": None, "loans_overdue": None,
            "exits_this_week": None, "new_monitoring_flags": None,
        })
    households_by_township = {}
    for household_id, (_, township_id) in facts.households.items():
        households_by_township.setdefault(township_id, set()).add(household_id)
    for township_id in facts.subject_ids("township"):
        households = households_by_township.get(township_id, set())
        pairings = [p for p in facts.pairings.values() if p.household_id in households]
        loans = index["loans_by_township"].get(township_id, [])
        rows.append({
            "kind": "township", "id": township_id, "name": facts.townships.get(township_id, ""),
            "visits_this_week": sum(1 for day, _, _, h in facts.visit_log if h in households and in_week(day)),
            "month_visit_compliance": month_compliance(pairings),
            "projects_started": sum(1 for p in facts.projects.values() if p.township_id == township_id and in_week(p.started_on)),
            "projects_completed": sum(1 for p in facts.projects.values() if p.township_id == township_id
                                      and in_week(p.completed_on)),
            "projects_overdue": sum(1 for p in facts.projects.values() if p.township_id == township_id and p.deadline
                                    and p.deadline < sunday and not p.cancelled_on
                                    and not (p.completed_on and p.completed_on <= sunday)),
            "disbursement_rate": None,
            "loans_applied": sum(1 for loan in loans if in_week(loan.applied_on)),
            "loans_approved": sum(1 for loan in loans if in_week(loan.approved_on)),
            "loans_overdue": sum(1 for loan in loans if loan.overdue_on and loan.overdue_on <= sunday
                                 and sum((a for d, a in loan.repayments.values() if d <= sunday), Decimal(0)) < loan.principal),
            "exits_this_week": sum(1 for day, h in facts.exits.values() if h in households and in_week(day)),
            "new_monitoring_flags": sum(1 for day, h in facts.flags.values() if h in households and in_week(day)),
        })
    # Supervision (督查督战): campaign progress and the lapses by unit, as at the week's end
    # (county time; a report's time carries its offset).
    end = datetime.combine(sunday, time(23, 59, 59), tzinfo=ZoneInfo(facts_timezone(facts, sunday)))
    return {"week": week, "from": monday.isoformat(), "to": sunday.isoformat(),
            "due": bulletin_due(facts, monday),
            "columns": [name for name, _ in COLUMNS], "rows": rows,
            "campaigns": supervision.campaign_progress(facts, monday, sunday, end),
            "lapses": supervision.lapses_by_unit(facts, sunday, end)}


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def facts_timezone(facts, day=None):
    """The county section's `timezone` in force (the registry's rulebook events); the clock's
    default until they have reached the assessment."""
    county = facts.section_in_force("county", day or date.max)
    return (county[1].get("timezone") if county else None) or DEFAULT_TIMEZONE


def bulletin_due(facts, monday):
    """When the week's reports are due (county time): the supervision section's `report_weekday`
    and `report_deadline` in force that week (default Friday 12:00); None until that section's
    events have reached the assessment (its values have one home)."""
    supervision_rules = facts.section_in_force("supervision", monday)
    if supervision_rules is None:
        return None
    values = supervision_rules[1]
    day = monday + timedelta(days=WEEKDAYS.index(values["report_weekday"]))
    return f"{day.isoformat()}T{values['report_deadline']}"


CAMPAIGN_COLUMNS = [("campaign", "专项行动"), ("action", "行动"), ("target", "指标"), ("unit_of_measure", "单位"),
                    ("quantity", "目标"), ("done", "完成"), ("percent", "完成率%"), ("milestones_met", "节点已完成"),
                    ("milestones_missed", "节点未按期完成")]
LAPSE_COLUMNS = [("unit_id", "责任单位"), ("late", "迟报周"), ("missing", "漏报周"), ("overdue_problems", "逾期未整改问题")]


def campaign_rows(bulletin):
    for campaign in bulletin.get("campaigns", []):
        for action in campaign["actions"]:
            met = "; ".join(f"{m['what']} ({m['met_on']})" for m in action["milestones_met"])
            missed = "; ".join(f"{m['what']} ({m['due_on']})" for m in action["milestones_missed"])
            for target in action["targets"] or [{"name": "", "unit_of_measure": "", "quantity": "", "done": "",
                                                 "percent": None}]:
                yield [campaign["name"], action["name"], target["name"], target["unit_of_measure"],
                       target["quantity"], target["done"], "" if target["percent"] is None else target["percent"],
                       met, missed]


def lapse_rows(bulletin):
    for entry in bulletin.get("lapses", []):
        yield [entry["unit_id"], " ".join(item["week"] for item in entry["late"]),
               " ".join(item["week"] for item in entry["missing"]),
               "; ".join(f"{p['description']} (限{p['deadline']})" for p in entry["overdue_problems"])]


def _sections(bulletin):
    """(CSV title, XLSX sheet title, columns, rows) of the parts after the main table."""
    return [("专项行动进展", "专项行动进展", CAMPAIGN_COLUMNS, list(campaign_rows(bulletin))),
            ("迟报、漏报与逾期整改", "迟报漏报与逾期整改", LAPSE_COLUMNS, list(lapse_rows(bulletin)))]


def as_csv(bulletin):
    rows = [[f"{label} {name}" for name, label in COLUMNS]]
    rows += [["" if row[name] is None else row[name] for name, _ in COLUMNS] for row in bulletin["rows"]]
    for title, _, columns, section in _sections(bulletin):
        rows += [[], [title], [label for _, label in columns], *section]
    return sheets.csv_file(rows)


def as_xlsx(bulletin):
    main = sheets.Sheet(bulletin["week"], [label for _, label in COLUMNS],
                        [[row[name] for name, _ in COLUMNS] for row in bulletin["rows"]],
                        heading=f"周通报 {bulletin['week']} ({bulletin['from']} – {bulletin['to']})")
    return sheets.xlsx_file([main] + [sheets.Sheet(title, [label for _, label in columns], section)
                                      for _, title, columns, section in _sections(bulletin)])
