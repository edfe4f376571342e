"""Bulk import: a department's spreadsheet (CSV or XLSX) of projects or of progress rows. Pure.

`read_table` turns the file into numbered rows of text keyed by column; `plan_import` checks
every row (field types, the department's scope, duplicates within the file, then the same
domain rules as a single command, in file order) and returns the events to append per project,
or raises ValidationFailed listing the row number and reasons of every bad row. The service
applies a plan in one transaction, so an import is all rows or none.
"""
import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from itertools import zip_longest

from services.common.errors import FupinError, ValidationFailed
from services.common.validation import validate

from . import domain, schemas

FUNDING_COLUMNS = {f"funding_{source}": source for source in schemas.FUNDING_SOURCES}

# Canonical column -> other headers a county's spreadsheet may use for it.
PROJECT_COLUMNS = {
    "project_id": ("项目编号", "项目代码"),
    "title": ("项目名称",),
    "department": ("部门", "主管部门"),
    "category": ("类别", "项目类别"),
    "level": ("级别", "项目级别"),
    "township_id": ("乡镇编号", "乡镇代码"),
    "village_ids": ("村编号", "受益村", "village_id"),
    "planned_quantity": ("计划数量", "建设规模"),
    "quantity_unit": ("单位", "计量单位"),
    "budget": ("预算", "总投资"),
    "funding_central": ("中央资金",),
    "funding_provincial": ("省级资金",),
    "funding_county": ("县级资金",),
    "funding_integrated": ("统筹整合资金", "整合资金"),
    "funding_other": ("其他资金",),
    "plan_year": ("计划年度", "年度"),
    "deadline": ("完成期限", "截止日期"),
}
PROGRESS_COLUMNS = {
    "project_id": ("项目编号", "项目代码"),
    "reported_on": ("填报日期", "报告日期"),
    "percent_complete": ("完成百分比", "进度", "形象进度"),
    "quantity_done": ("完成数量", "完成工程量"),
    "problems": ("存在问题", "问题"),
}
COLUMNS = {"projects": PROJECT_COLUMNS, "progress": PROGRESS_COLUMNS}
REQUIRED_COLUMNS = {
    "projects": ("project_id", "title", "category", "level", "township_id", "planned_quantity", "quantity_unit",
                 "budget", "plan_year"),
    "progress": ("project_id", "reported_on", "percent_complete"),
}
VILLAGE_SEPARATORS = re.compile(r"[;,，；、|\s]+")


@dataclass(frozen=True)
class Row:
    number: int  # as the spreadsheet shows it: the header is row 1
    values: dict  # canonical column -> text, None when the cell is blank


@dataclass
class ImportPlan:
    kind: str
    streams: dict = field(default_factory=dict)  # project_id -> [NewEvent], in file order
    rows: list = field(default_factory=list)  # [{row, project_id, events: [type, ...]}]


def file_refused(message, problems):
    return ValidationFailed(message, {"file": problems, "rows": []})


# --- reading the file -------------------------------------------------------------------------------

def _normalise_header(text):
    return re.sub(r"\s+", "_", str(text or "").strip().lower())


def _xlsx_text(cell):
    """A cell's value as the text a person would have typed (dates ISO, 2023.0 as 2023, 45% as 45)."""
    value = cell.value
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        number = Decimal(str(value))
        if "%" in (getattr(cell, "number_format", "") or ""):
            number *= 100
        return format(number.normalize(), "f") if number == number.to_integral_value() else str(number)
    return str(value)


def _xlsx_cells(content):
    from openpyxl import load_workbook  # only an XLSX import needs it

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a broken file
        raise file_refused("the file is not a readable XLSX workbook", [f"not a readable XLSX file: {exc}"]) from None
    try:
        sheet = workbook.worksheets[0]
        return [[_xlsx_text(cell) for cell in row] for row in sheet.iter_rows()]
    finally:
        workbook.close()


def _csv_cells(content):
    # Excel on a Chinese Windows saves CSV as GB18030 (GBK); everything else sends UTF-8.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = content.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise file_refused("the CSV file is neither UTF-8 nor GB18030 text", ["unreadable text encoding"])
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise file_refused("the CSV file is malformed", [f"malformed CSV: {exc}"]) from None


def read_table(filename, content, kind, rules):
    """Rows of a CSV or XLSX file (chosen by the file name's ending), keyed by canonical column."""
    name = (filename or "").lower()
    if name.endswith(".csv"):
        cells = _csv_cells(content)
    elif name.endswith(".xlsx"):
        cells = _xlsx_cells(content)
    else:
        raise file_refused("only .csv and .xlsx files can be imported", [f"{filename!r} is neither .csv nor .xlsx"])
    if not cells:
        raise file_refused("the file is empty", ["no header row"])
    known = {}
    for canonical, aliases in COLUMNS[kind].items():
        for header in (canonical, *aliases):
            known[_normalise_header(header)] = canonical
    columns, problems = [], []
    for position, header in enumerate(cells[0], start=1):
        canonical = known.get(_normalise_header(header))
        if header in (None, "") and canonical is None:
            columns.append(None)
            continue
        if canonical is None:
            problems.append(f"column {position} {header!r} is not a {kind} column "
                            f"(known: {', '.join(COLUMNS[kind])})")
        elif canonical in columns:
            problems.append(f"column {position} {header!r} repeats column {canonical}")
        columns.append(canonical)
    missing = [name for name in REQUIRED_COLUMNS[kind] if name not in columns]
    if missing:
        problems.append(f"missing columns: {', '.join(missing)}")
    if problems:
        raise file_refused("the header row does not fit a " + kind + " import", problems)
    rows = []
    for number, raw in enumerate(cells[1:], start=2):
        values = {}
        for column, value in zip_longest(columns, raw):
            text = None if value is None else str(value).strip()
            if column is not None:
                values[column] = text or None
            elif text:
                problems.append(f"row {number} has a value under a column without a header")
        if any(value is not None for value in values.values()):
            rows.append(Row(number, values))
    if problems:
        raise file_refused("some cells are outside the known columns", problems)
    if not rows:
        raise file_refused("the file has a header but no rows", ["no data rows"])
    if len(rows) > rules.import_max_rows:
        raise file_refused(f"at most {rules.import_max_rows} rows can be imported at once",
                           [f"{len(rows)} rows; split the file"])
    return rows


def referenced_projects(rows):
    """The project codes the rows name, for the service to lock and load before planning."""
    return sorted({row.values["project_id"] for row in rows if row.values.get("project_id")})


# --- checking the rows ------------------------------------------------------------------------------

def _describe(error):
    """One readable reason from a refused command."""
    details = error.details or {}
    if isinstance(error, ValidationFailed):
        return "; ".join(f"{name}: {' '.join(map(str, messages))}" for name, messages in details.items()) \
            or error.message
    if "differences" in details:
        changes = ", ".join(f"{name} {change['recorded']!r} → {change['given']!r}"
                            for name, change in details["differences"].items())
        return f"{error.message}: {changes}"
    return error.message


def _field_errors(schema, data):
    try:
        return validate(schema, data), []
    except ValidationFailed as error:
        return None, [f"{name}: {' '.join(map(str, messages))}" for name, messages in error.details.items()]


def _project_command(values):
    data = {name: value for name, value in values.items()
            if value is not None and name not in FUNDING_COLUMNS and name != "village_ids"}
    if values.get("village_ids"):
        data["village_ids"] = [v for v in VILLAGE_SEPARATORS.split(values["village_ids"]) if v]
    funding = [{"source": source, "amount": values[column]}
               for column, source in FUNDING_COLUMNS.items() if values.get(column) is not None]
    if funding:
        data["funding_sources"] = funding
    return data


def _progress_command(values):
    data = {name: value for name, value in values.items() if value is not None}
    if isinstance(data.get("percent_complete"), str):
        data["percent_complete"] = data["percent_complete"].rstrip("%").strip()
    return data


def _check_project_row(row, states, department, rules, seen):
    errors = []
    project_id = row.values.get("project_id")
    if project_id is None:
        errors.append("project_id: the department's project code is required in an import")
    elif project_id in seen:
        errors.append(f"project {project_id} is also on row {seen[project_id]}: each project once per file")
    else:
        seen[project_id] = row.number
    data = _project_command(row.values)
    if department is not None:
        data.setdefault("department", department)
    command, field_errors = _field_errors(schemas.PlanProject(), data)
    errors.extend(field_errors)
    if command is not None and department is not None and command["department"] != department:
        errors.append(f"department is {command['department']}, but this import is for {department}")
    if errors:
        return errors, []
    try:
        return [], domain.decide_plan(states.get(project_id), command, rules)
    except FupinError as error:
        return [_describe(error)], []


def _check_progress_row(row, states, department, rules, seen):
    errors = []
    project_id = row.values.get("project_id")
    key = (project_id, row.values.get("reported_on"))
    if project_id is not None and key in seen:
        errors.append(f"project {project_id} has another report dated {key[1]} on row {seen[key]}")
    else:
        seen[key] = row.number
    command, field_errors = _field_errors(schemas.ReportProgress(), _progress_command(row.values))
    errors.extend(field_errors)
    state = states.get(project_id)
    if command is not None and state is None:
        errors.append(f"no project {project_id}")
    elif command is not None and department is not None and state.department != department:
        errors.append(f"project {project_id} belongs to {state.department}, but this import is for {department}")
    if errors:
        return errors, []
    try:
        return [], domain.decide_report_progress(state, command)
    except FupinError as error:
        return [_describe(error)], []


CHECKS = {"projects": _check_project_row, "progress": _check_progress_row}


def plan_import(kind, rows, projects, rules, department=None):
    """Check every row against `projects` (project_id -> Project state, None if unknown) and the
    rows before it; return the ImportPlan, or raise ValidationFailed with every bad row's reasons."""
    states = dict(projects)
    plan = ImportPlan(kind)
    bad, seen = [], {}
    for row in rows:
        errors, new_events = CHECKS[kind](row, states, department, rules, seen)
        if errors:
            bad.append({"row": row.number, "project_id": row.values.get("project_id"), "errors": errors})
            continue
        project_id = row.values["project_id"]
        for event in new_events:
            states[project_id] = domain.evolve(states.get(project_id), event)
        plan.streams.setdefault(project_id, []).extend(new_events)
        plan.rows.append({"row": row.number, "project_id": project_id, "events": [e.type for e in new_events]})
    if bad:
        raise ValidationFailed(
            f"{len(bad)} of {len(rows)} rows are bad; nothing was imported",
            {"rows": bad, "bad_rows": len(bad), "total_rows": len(rows)},
        )
    return plan
