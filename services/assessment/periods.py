"""Closing a month (月度考核定格) and the pay sheet, as pure functions: no I/O, no clock.

A month is a stream `("period", "2023-05")` in the assessment's own event store. `month_closed`
carries the frozen results of every unit, cadre and township (the full score cards, ranked, as
the score endpoints answered them on the closing date) and the watermark of the facts they were
made of: the last position seen of each source's event store (and of the assessment's own).
Anything past the watermark and dated into the month is a late correction: listed, never
applied to the month, until `month_reopened` (with its reason) opens the month again.
"""
import json
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from services.common.errors import Conflict, RuleRefused, ValidationFailed
from services.common.events import NewEvent
from services.common.store import WRITTEN_AT_ONCE
from services.common.validation import MONTH_TEXT

from . import scoring, sheets

STREAM_TYPE = "period"
WRITTEN_AT_ONCE.add(STREAM_TYPE)  # a closing keeps its position and recording time

OWN = "assessment"  # the watermark's key for the assessment's own events (ratings, vetoes)

# Where an event's business date is, when the event does not carry `occurred_on`: the first of
# these fields present in its payload. Per type where the generic order would pick the wrong one.
DATE_FIELD_BY_TYPE = {
    "project_planned": "deadline",  # a project counts in the month of its deadline
    "household_paired": "from",
    "pairing_ended": "until",
    "cadre_stationed": "from",
    "loan_disbursed": "maturity_date",  # recovery counts the loans maturing in the period
    "village_reviewed": "recommendation_due_by",
    "weekly_report_submitted": "due_at",  # a weekly report is about the week it was due in
    "campaign_launched": "starts_on",
}
DATE_FIELDS = ("visited_on", "taken_on", "checked_on", "rated_on", "detected_on", "exited_on", "flagged_on",
               "applied_on", "found_on", "verified_on", "reported_on", "on", "registered_on", "from", "until", "deadline")


def business_date(event_type, payload, occurred_on=None):
    """The date an event is about (which month it corrects), or None if it has none."""
    if occurred_on:
        return _date(occurred_on)
    month = payload.get("month")
    if isinstance(month, str) and MONTH_TEXT.match(month):  # residency_reported: the month reported on
        return date(int(month[:4]), int(month[5:7]), 1)
    names = ((DATE_FIELD_BY_TYPE[event_type],) if event_type in DATE_FIELD_BY_TYPE else ()) + DATE_FIELDS
    for name in names:
        value = payload.get(name)
        if value:
            parsed = _date(value)
            if parsed is not None:
                return parsed
    return None


def _date(value):
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def month_period(month):
    if not isinstance(month, str) or not MONTH_TEXT.match(month):
        raise ValidationFailed("month must look like 2023-05", {"month": ["invalid"]})
    return scoring.parse_period(month)


# --- the month's stream ---------------------------------------------------------------------------
@dataclass
class MonthState:
    month: str = ""
    status: str = "open"
    closing: dict | None = None  # the payload of the month_closed in force (with its position)
    history: list = field(default_factory=list)  # [{event, on, note|reason, by, recorded_at}]
    version: int = 0


def evolve_month(state, event):
    state = state or MonthState()
    p = event.payload
    entry = {"event": event.type, "on": p.get("on"), "recorded_at": event.recorded_at,
             "by": (event.metadata or {}).get("actor")}
    if event.type == "month_closed":
        state.status = "closed"
        state.closing = {**p, "position": event.global_position, "recorded_at": event.recorded_at,
                         "by": entry["by"]}
        entry.update(note=p.get("note", ""), rulebook_version=p.get("rulebook_version"))
    elif event.type == "month_reopened":
        state.status, state.closing = "open", None
        entry["reason"] = p.get("reason", "")
    state.month = p.get("month", state.month)
    state.history.append(entry)
    state.version = event.version
    return state


def decide_close(state, month, command, today, results, watermark, rulebook_version):
    """Freeze the month: refused when it is already closed, not yet complete on the closing
    date (a month counts once it is complete), or closed on a date still to come."""
    period = month_period(month)
    on = command["on"]
    if state is not None and state.status == "closed":
        raise Conflict(f"{month} is already closed (on {state.closing['on']}); re-open it first",
                       {"month": month, "closed_on": state.closing["on"]})
    if on <= period.end:
        raise RuleRefused(f"{month} can be closed only after its last day", {"rule": "month_complete", "on": on.isoformat(),
                                                                            "month_ends": period.end.isoformat()})
    if on > today:
        raise RuleRefused("the closing date is still to come", {"rule": "not_in_future", "on": on.isoformat(),
                                                                "today": today.isoformat()})
    return [NewEvent("month_closed", {
        "month": month, "on": on.isoformat(), "note": command.get("note") or "", "as_of": on.isoformat(),
        "rulebook_version": rulebook_version, "watermark": watermark, "summary": summary(results),
        "results": results}, on.isoformat())]


def decide_reopen(state, month, command, today):
    month_period(month)
    if state is None or state.status != "closed":
        raise Conflict(f"{month} is not closed", {"month": month, "status": "open"})
    if not command["reason"].strip():
        raise RuleRefused("re-opening a month needs its reason", {"rule": "reopen_reason_required"})
    on = command["on"]
    if on < date.fromisoformat(state.closing["on"]):
        raise RuleRefused("a month is re-opened on or after the day it was closed",
                          {"rule": "reopen_after_closing", "closed_on": state.closing["on"]})
    if on > today:
        raise RuleRefused("the re-opening date is still to come", {"rule": "not_in_future", "today": today.isoformat()})
    return [NewEvent("month_reopened", {"month": month, "on": on.isoformat(), "reason": command["reason"].strip(),
                                        "closed_on": state.closing["on"]}, on.isoformat())]


def freeze(facts, ranked):
    """The results a closing keeps: the ranked cards of each subject type (copied, JSON-ready),
    cadres with their unit, so the pay sheet never depends on what is registered later."""
    results = {}
    for subject_type, cards in ranked.items():
        frozen = []
        for card in cards:
            card = json.loads(json.dumps(card, default=str))
            if subject_type == "cadre":
                unit_id = facts.cadres.get(card["subject_id"], {}).get("unit_id")
                card.update(unit_id=unit_id, unit_name=facts.name_of("unit", unit_id) if unit_id else "")
            frozen.append(card)
        results[subject_type] = frozen
    return results


def summary(results):
    """What closing answers: per subject type, how many and how many of each grade; pay totals."""
    out = {}
    for subject_type, cards in results.items():
        grades = {}
        for card in cards:
            grades[card["grade"] or "none"] = grades.get(card["grade"] or "none", 0) + 1
        out[subject_type] = {"subjects": len(cards), "grades": grades}
    sheet = pay_sheet_rows(results.get("cadre", []))
    out["pay"] = totals(sheet)
    return out


# --- the frozen results as the score endpoints answer them -----------------------------------------
def status_of(state, closed_months=()):
    if state is None or state.status != "closed":
        return {"status": "open", "closed_on": None}
    return {"status": "closed", "closed_on": state.closing["on"], "frozen_as_of": state.closing["as_of"],
            "rulebook_version": state.closing["rulebook_version"]}


def frozen_cards(state, subject_type):
    return state.closing["results"].get(subject_type, [])


# --- the pay sheet --------------------------------------------------------------------------------
PAY_COLUMNS = (  # (key, label)
    ("cadre_id", "干部编号"), ("cadre", "干部"), ("unit_id", "单位编号"), ("unit", "单位"), ("score", "得分"),
    ("grade", "等次"), ("vetoed", "一票否决"), ("performance_pay", "绩效奖金"), ("rewards", "奖励"),
    ("withheld", "扣发"), ("total", "合计"), ("restrictions", "限制"), ("restrictions_until", "限制至"),
)
PAY_MONEY = ("performance_pay", "rewards", "withheld", "total")  # summed in the totals row
GRADE_LABELS = {"excellent": "优秀", "good": "良好", "poor": "差", None: ""}


def pay_sheet_rows(cadre_cards):
    """One row per cadre of the frozen cards: the month's performance pay (0 when withheld), the
    rewards earned in the month, the amount withheld, and the restrictions running."""
    rows = []
    for card in cadre_cards:
        pay = card.get("pay") or {}
        paid = Decimal(str(pay.get("monthly_performance_pay") or "0"))
        rewards = Decimal(str(pay.get("rewards") or "0"))
        rows.append({
            "cadre_id": card["subject_id"], "cadre": card.get("name", ""), "unit_id": card.get("unit_id"),
            "unit": card.get("unit_name", ""), "score": card["score"], "grade": card["grade"],
            "vetoed": card["vetoed"], "veto_reasons": card.get("veto_reasons", []),
            "performance_pay": f"{paid:.2f}", "rewards": f"{rewards:.2f}",
            "withheld": pay.get("withheld_amount") or "0.00", "total": f"{paid + rewards:.2f}",
            "restrictions": list(pay.get("restrictions") or []), "restrictions_until": pay.get("restrictions_until"),
        })
    rows.sort(key=lambda row: (row["unit"] or "", row["unit_id"] or "", row["cadre"] or "", row["cadre_id"]))
    return rows


def totals(rows):
    def total(key):
        return f"{sum((Decimal(row[key]) for row in rows), Decimal(0)):.2f}"
    return {"cadres": len(rows), "performance_pay": total("performance_pay"), "rewards": total("rewards"),
            "withheld": total("withheld"), "total": total("total")}


def pay_sheet(state, month):
    if state is None or state.status != "closed":
        raise RuleRefused(f"{month} is not closed: the pay sheet is made from a closed month",
                          {"rule": "month_not_closed", "month": month})
    rows = pay_sheet_rows(frozen_cards(state, "cadre"))
    return {"month": month, "closed_on": state.closing["on"], "as_of": state.closing["as_of"],
            "rulebook_version": state.closing["rulebook_version"], "columns": [key for key, _ in PAY_COLUMNS],
            "rows": rows, "totals": totals(rows)}


def _cell(row, key):
    value = row[key]
    if key == "grade":
        return GRADE_LABELS.get(value, value)
    if key == "vetoed":
        return "是" if value else ""
    if key == "restrictions":
        return "、".join(value)
    return "" if value is None else value


def _total_row(label, totals, amount):
    """The sheet's last row: its label under the first column, each money column's total."""
    return [label if number == 0 else amount(totals[key]) if key in PAY_MONEY else ""
            for number, (key, _) in enumerate(PAY_COLUMNS)]


def pay_sheet_csv(sheet):
    rows = [[f"{label} {key}" for key, label in PAY_COLUMNS]]
    rows += [[_cell(row, key) for key, _ in PAY_COLUMNS] for row in sheet["rows"]]
    return sheets.csv_file(rows + [_total_row("合计 total", sheet["totals"], str)])


def pay_sheet_xlsx(sheet):
    rows = [[float(row[key]) if key in PAY_MONEY else _cell(row, key) for key, _ in PAY_COLUMNS] for row in sheet["rows"]]
    return sheets.xlsx_file([sheets.Sheet(
        sheet["month"], [label for _, label in PAY_COLUMNS], rows,
        heading=f"绩效考核工资表 {sheet['month']} (定格于 {sheet['closed_on']}, 规则 v{sheet['rulebook_version']})",
        total=_total_row("合计", sheet["totals"], float))])
