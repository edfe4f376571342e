"""Read models of the projects service, updated in the append's transaction and rebuildable.

`projects` is one row per project with its current state, `project_villages` answers "which
projects serve this village", and `fund_movements` keeps every dated allocation and
disbursement so funds can be summed by any date.
"""
from datetime import date
from decimal import Decimal

from sqlalchemy import (
    Boolean, Column, Date, Index, Integer, MetaData, Numeric, Table, Text, select, update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.common.values import iso as _iso

from . import domain

READ_MODEL_TABLES = ("projects", "project_villages", "fund_movements")

metadata = MetaData()

projects = Table(
    "projects", metadata,
    Column("project_id", Text, primary_key=True),
    Column("title", Text, nullable=False),
    Column("department", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("level", Text, nullable=False),
    Column("township_id", Text, nullable=False),
    Column("village_ids", JSONB, nullable=False),
    Column("planned_quantity", Text, nullable=False),
    Column("quantity_unit", Text, nullable=False),
    Column("budget", Numeric(16, 2), nullable=False),
    Column("funding_sources", JSONB, nullable=False),
    Column("plan_year", Integer, nullable=False),
    Column("deadline", Date, nullable=False),
    Column("status", Text, nullable=False),
    Column("started_on", Date),
    Column("percent_complete", Integer, nullable=False),
    Column("quantity_done", Text),
    Column("last_reported_on", Date),
    Column("problems", Text),
    Column("completed_on", Date),
    Column("late", Boolean),
    Column("accepted_on", Date),
    Column("cancelled_on", Date),
    Column("cancel_reason", Text),
    Column("allocated", Numeric(16, 2), nullable=False),
    Column("disbursed", Numeric(16, 2), nullable=False),
    Index("ix_projects_department_year", "department", "plan_year"),
    Index("ix_projects_township", "township_id"),
    Index("ix_projects_status", "status"),
)

project_villages = Table(
    "project_villages", metadata,
    Column("village_id", Text, primary_key=True),
    Column("project_id", Text, primary_key=True),
)

fund_movements = Table(
    "fund_movements", metadata,
    Column("event_id", UUID(as_uuid=False), primary_key=True),
    Column("project_id", Text, nullable=False),
    Column("department", Text, nullable=False),
    Column("plan_year", Integer, nullable=False),
    Column("kind", Text, nullable=False),  # "allocation" or "disbursement"
    Column("amount", Numeric(16, 2), nullable=False),
    Column("on", Date, nullable=False),
    Column("source", Text),
    Column("payee", Text),
    Index("ix_fund_movements_department_year", "department", "plan_year"),
    Index("ix_fund_movements_project", "project_id"),
)


def _set(session, project_id, **values):
    session.execute(update(projects).where(projects.c.project_id == project_id).values(**values))


def _on(payload, name="on"):
    return date.fromisoformat(payload[name])


def _plan(session, payload):
    session.execute(pg_insert(projects).values(
        project_id=payload["project_id"], title=payload["title"], department=payload["department"],
        category=payload["category"], level=payload["level"], township_id=payload["township_id"],
        village_ids=payload["village_ids"], planned_quantity=payload["planned_quantity"],
        quantity_unit=payload["quantity_unit"], budget=Decimal(payload["budget"]),
        funding_sources=payload["funding_sources"], plan_year=payload["plan_year"],
        deadline=_on(payload, "deadline"), status="planned", percent_complete=0,
        allocated=Decimal(0), disbursed=Decimal(0),
    ))
    for village_id in payload["village_ids"]:
        session.execute(pg_insert(project_villages).values(village_id=village_id, project_id=payload["project_id"]))


def _progress(session, payload):
    values = {"percent_complete": payload["percent_complete"], "last_reported_on": _on(payload, "reported_on"),
              "problems": payload["problems"]}
    if payload.get("quantity_done") is not None:
        values["quantity_done"] = payload["quantity_done"]
    _set(session, payload["project_id"], **values)


def _funds(session, event, kind):
    payload = event.payload
    session.execute(pg_insert(fund_movements).values(
        event_id=event.event_id, project_id=payload["project_id"], department=payload["department"],
        plan_year=payload["plan_year"], kind=kind, amount=Decimal(payload["amount"]), on=_on(payload),
        source=payload.get("source"), payee=payload.get("payee"),
    ))
    column = projects.c.allocated if kind == "allocation" else projects.c.disbursed
    session.execute(update(projects).where(projects.c.project_id == payload["project_id"])
                    .values({column: column + Decimal(payload["amount"])}))


def project(session, event):
    payload = event.payload
    kind = event.type
    if kind == "project_planned":
        _plan(session, payload)
    elif kind == "project_started":
        _set(session, payload["project_id"], status="started", started_on=_on(payload))
    elif kind == "progress_reported":
        _progress(session, payload)
    elif kind == "project_completed":
        _set(session, payload["project_id"], status="completed", completed_on=_on(payload), late=payload["late"],
             quantity_done=payload["quantity_done"], percent_complete=100)
    elif kind == "project_accepted":
        _set(session, payload["project_id"], status="accepted", accepted_on=_on(payload))
    elif kind == "project_cancelled":
        _set(session, payload["project_id"], status="cancelled", cancelled_on=_on(payload),
             cancel_reason=payload["reason"])
    elif kind == "funds_allocated":
        _funds(session, event, "allocation")
    elif kind == "funds_disbursed":
        _funds(session, event, "disbursement")


# --- reading --------------------------------------------------------------------------------------

def row_view(row):
    """A project as the API shows it; the same shape as `domain.project_view` of its state."""
    return {
        "project_id": row.project_id, "title": row.title, "department": row.department,
        "category": row.category, "level": row.level, "township_id": row.township_id,
        "village_ids": list(row.village_ids), "planned_quantity": row.planned_quantity,
        "quantity_unit": row.quantity_unit, "budget": domain.money(row.budget),
        "funding_sources": list(row.funding_sources), "plan_year": row.plan_year, "deadline": _iso(row.deadline),
        "status": row.status, "started_on": _iso(row.started_on), "percent_complete": row.percent_complete,
        "quantity_done": row.quantity_done, "last_reported_on": _iso(row.last_reported_on),
        "problems": row.problems, "completed_on": _iso(row.completed_on), "late": row.late,
        "accepted_on": _iso(row.accepted_on), "cancelled_on": _iso(row.cancelled_on),
        "cancel_reason": row.cancel_reason, "allocated": domain.money(row.allocated),
        "disbursed": domain.money(row.disbursed),
    }


def find_project(session, project_id):
    return session.execute(select(projects).where(projects.c.project_id == project_id)).first()


def list_projects(session, filters, limit, after):
    """Up to limit+1 project rows after the project id `after`, in project id order."""
    query = select(projects).order_by(projects.c.project_id).limit(limit + 1)
    for name in ("department", "status", "plan_year", "township_id"):
        if filters.get(name) is not None:
            query = query.where(projects.c[name] == filters[name])
    if filters.get("village_id") is not None:
        query = query.where(projects.c.project_id.in_(
            select(project_villages.c.project_id).where(project_villages.c.village_id == filters["village_id"])))
    if after is not None:
        query = query.where(projects.c.project_id > after)
    return list(session.execute(query))


def department_facts(session, department, plan_year):
    """The department's projects of the year as ProjectFacts, and their fund movements."""
    rows = session.execute(select(projects).where(projects.c.department == department,
                                                  projects.c.plan_year == plan_year))
    facts = [domain.ProjectFacts(row.project_id, row.deadline, row.started_on, row.completed_on, row.accepted_on,
                                 row.cancelled_on) for row in rows]
    movements = [domain.FundMovement(row.kind, row.amount, row.on) for row in session.execute(
        select(fund_movements).where(fund_movements.c.department == department,
                                     fund_movements.c.plan_year == plan_year))]
    return facts, movements


def village_projects(session, village_id):
    categories = [category for group in domain.INFRASTRUCTURE_KINDS.values() for category in group]
    rows = session.execute(
        select(projects)
        .where(projects.c.project_id.in_(select(project_villages.c.project_id)
                                         .where(project_villages.c.village_id == village_id)),
               projects.c.category.in_(categories))
        .order_by(projects.c.plan_year.desc(), projects.c.project_id))
    return [row_view(row) for row in rows]
