"""Read models of the assistance service, updated in the append's transaction and rebuildable.

One table per kind of fact; the queries (overdue visits, unit summary, help history) are pure
functions of these rows in domain.py. Date columns are named `start_on`/`until_on` (not `from`).
"""
from datetime import date
from decimal import Decimal

from sqlalchemy import (
    Boolean, Column, Date, Index, Integer, MetaData, Numeric, Table, Text, and_, func, or_, select, update,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.common.values import iso as _iso

from . import domain

READ_MODEL_TABLES = ("units", "unit_villages", "cadres", "pairings", "visits", "village_visits", "inspections",
                     "exam_scores", "awareness_checks", "stationings", "residency_reports")

metadata = MetaData()

units = Table(
    "units", metadata,
    Column("unit_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("department", Text, nullable=False),
    Column("parent_unit_id", Text),
)

unit_villages = Table(
    "unit_villages", metadata,
    Column("unit_id", Text, primary_key=True),
    Column("village_id", Text, primary_key=True),
    Column("start_on", Date, primary_key=True),
    Column("until_on", Date),
    Index("ix_unit_villages_village", "village_id"),
)

cadres = Table(
    "cadres", metadata,
    Column("cadre_id", Text, primary_key=True),
    Column("unit_id", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("rank", Text, nullable=False),
    Column("deputy_section_or_above", Boolean, nullable=False),
    Index("ix_cadres_unit", "unit_id"),
)

pairings = Table(
    "pairings", metadata,
    Column("pairing_id", Text, primary_key=True),
    Column("household_id", Text, nullable=False),
    Column("cadre_id", Text, nullable=False),
    Column("unit_id", Text, nullable=False),
    Column("start_on", Date, nullable=False),
    Column("until_on", Date),
    Column("end_reason", Text),
    Index("ix_pairings_cadre", "cadre_id"),
    Index("ix_pairings_household", "household_id"),
    Index("ix_pairings_unit", "unit_id"),
)

visits = Table(
    "visits", metadata,
    Column("visit_id", Text, primary_key=True),
    Column("pairing_id", Text, nullable=False),
    Column("cadre_id", Text, nullable=False),
    Column("unit_id", Text, nullable=False),
    Column("household_id", Text, nullable=False),
    Column("visited_on", Date, nullable=False),
    Column("measures", JSONB, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("changes", Text, nullable=False),
    Column("policy_explained", Boolean, nullable=False),
    Index("ix_visits_cadre_day", "cadre_id", "visited_on"),
    Index("ix_visits_pairing", "pairing_id"),
    Index("ix_visits_household", "household_id"),
    Index("ix_visits_unit_day", "unit_id", "visited_on"),
)

village_visits = Table(
    "village_visits", metadata,
    Column("visit_id", Text, primary_key=True),
    Column("cadre_id", Text, nullable=False),
    Column("unit_id", Text, nullable=False),
    Column("village_id", Text, nullable=False),
    Column("visited_on", Date, nullable=False),
    Column("purpose", Text, nullable=False),
    Index("ix_village_visits_cadre", "cadre_id"),
)

inspections = Table(
    "inspections", metadata,
    Column("inspection_id", Text, primary_key=True),
    Column("cadre_id", Text, nullable=False),
    Column("unit_id", Text, nullable=False),
    Column("village_id", Text, nullable=False),
    Column("inspected_on", Date, nullable=False),
    Column("findings", Text, nullable=False),
    Index("ix_inspections_cadre", "cadre_id"),
)

exam_scores = Table(
    "exam_scores", metadata,
    Column("event_id", UUID(as_uuid=False), primary_key=True),
    Column("cadre_id", Text, nullable=False),
    Column("unit_id", Text, nullable=False),
    Column("exam_id", Text, nullable=False),
    Column("score", Numeric(5, 1), nullable=False),
    Column("taken_on", Date, nullable=False),
    Index("ix_exam_scores_cadre", "cadre_id"),
)

awareness_checks = Table(
    "awareness_checks", metadata,
    Column("check_id", Text, primary_key=True),
    Column("household_id", Text, nullable=False),
    Column("checked_on", Date, nullable=False),
    Column("passed", Boolean, nullable=False),
    Column("cadre_id", Text),
    Column("unit_id", Text),
    Index("ix_awareness_checks_household", "household_id"),
    Index("ix_awareness_checks_cadre", "cadre_id"),
)

stationings = Table(
    "stationings", metadata,
    Column("stationing_id", Text, primary_key=True),
    Column("cadre_id", Text, nullable=False),
    Column("unit_id", Text, nullable=False),
    Column("village_id", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("start_on", Date, nullable=False),
    Column("until_on", Date),
    Index("ix_stationings_cadre", "cadre_id"),
)

residency_reports = Table(
    "residency_reports", metadata,
    Column("cadre_id", Text, primary_key=True),
    Column("month", Text, primary_key=True),
    Column("unit_id", Text, nullable=False),
    Column("days", Integer, nullable=False),
)


def _d(value):
    return date.fromisoformat(value) if value else None


def project(session, event):
    p = event.payload
    kind = event.type
    if kind == "unit_registered":
        session.execute(pg_insert(units).values(unit_id=p["unit_id"], name=p["name"], department=p["department"],
                                                parent_unit_id=p.get("parent_unit_id")))
    elif kind == "village_assigned":
        session.execute(pg_insert(unit_villages).values(unit_id=p["unit_id"], village_id=p["village_id"],
                                                        start_on=_d(p["from"]), until_on=_d(p.get("until"))))
    elif kind == "cadre_registered":
        session.execute(pg_insert(cadres).values(cadre_id=p["cadre_id"], unit_id=p["unit_id"], name=p["name"],
                                                 rank=p["rank"],
                                                 deputy_section_or_above=bool(p["deputy_section_or_above"])))
    elif kind == "household_paired":
        session.execute(pg_insert(pairings).values(pairing_id=p["pairing_id"], household_id=p["household_id"],
                                                   cadre_id=p["cadre_id"], unit_id=p["unit_id"],
                                                   start_on=_d(p["from"])))
    elif kind == "pairing_ended":
        session.execute(update(pairings).where(pairings.c.pairing_id == p["pairing_id"])
                        .values(until_on=_d(p["until"]), end_reason=p["reason"]))
    elif kind == "visit_recorded":
        session.execute(pg_insert(visits).values(
            visit_id=p["visit_id"], pairing_id=p["pairing_id"], cadre_id=p["cadre_id"], unit_id=p["unit_id"],
            household_id=p["household_id"], visited_on=_d(p["visited_on"]), measures=p["measures"],
            outcome=p["outcome"], changes=p["changes"], policy_explained=bool(p["policy_explained"])))
    elif kind == "village_visit_recorded":
        session.execute(pg_insert(village_visits).values(
            visit_id=p["visit_id"], cadre_id=p["cadre_id"], unit_id=p["unit_id"], village_id=p["village_id"],
            visited_on=_d(p["visited_on"]), purpose=p["purpose"]))
    elif kind == "inspection_recorded":
        session.execute(pg_insert(inspections).values(
            inspection_id=p["inspection_id"], cadre_id=p["cadre_id"], unit_id=p["unit_id"],
            village_id=p["village_id"], inspected_on=_d(p["inspected_on"]), findings=p["findings"]))
    elif kind == "exam_scored":
        session.execute(pg_insert(exam_scores).values(
            event_id=event.event_id, cadre_id=p["cadre_id"], unit_id=p["unit_id"], exam_id=p["exam_id"],
            score=Decimal(str(p["score"])), taken_on=_d(p["taken_on"])))
    elif kind == "awareness_checked":
        session.execute(pg_insert(awareness_checks).values(
            check_id=p["check_id"], household_id=p["household_id"], checked_on=_d(p["checked_on"]),
            passed=bool(p["passed"]), cadre_id=p.get("cadre_id"), unit_id=p.get("unit_id")))
    elif kind == "cadre_stationed":
        session.execute(pg_insert(stationings).values(
            stationing_id=p["stationing_id"], cadre_id=p["cadre_id"], unit_id=p["unit_id"],
            village_id=p["village_id"], role=p["role"], start_on=_d(p["from"]), until_on=_d(p.get("until"))))
    elif kind == "residency_reported":
        # the latest report of a month replaces the earlier one (events replay in order)
        statement = pg_insert(residency_reports).values(cadre_id=p["cadre_id"], month=p["month"],
                                                        unit_id=p["unit_id"], days=int(p["days"]))
        session.execute(statement.on_conflict_do_update(
            index_elements=["cadre_id", "month"], set_={"days": statement.excluded.days}))


# --- reading ------------------------------------------------------------------------------------------

def pairing_view(row, as_of=None):
    view = {"pairing_id": row.pairing_id, "cadre_id": row.cadre_id, "unit_id": row.unit_id,
            "household_id": row.household_id, "from": _iso(row.start_on), "until": _iso(row.until_on),
            "end_reason": row.end_reason}
    view["active"] = row.until_on is None if as_of is None else (
        row.start_on <= as_of and (row.until_on is None or as_of <= row.until_on))
    return view


def visit_view(row):
    return {"visit_id": row.visit_id, "pairing_id": row.pairing_id, "cadre_id": row.cadre_id,
            "unit_id": row.unit_id, "household_id": row.household_id, "visited_on": _iso(row.visited_on),
            "measures": list(row.measures), "outcome": row.outcome, "changes": row.changes,
            "policy_explained": row.policy_explained}


def check_view(row):
    return {"check_id": row.check_id, "household_id": row.household_id, "checked_on": _iso(row.checked_on),
            "passed": row.passed, "cadre_id": row.cadre_id, "unit_id": row.unit_id}


def village_view(row):
    return {"village_id": row.village_id, "from": _iso(row.start_on), "until": _iso(row.until_on)}


def stationing_view(row):
    return {"stationing_id": row.stationing_id, "village_id": row.village_id, "role": row.role,
            "from": _iso(row.start_on), "until": _iso(row.until_on)}


def find(session, table, key, value):
    return session.execute(select(table).where(table.c[key] == value)).first()


def unit_villages_of(session, unit_id):
    return list(session.execute(select(unit_villages).where(unit_villages.c.unit_id == unit_id)
                                .order_by(unit_villages.c.village_id, unit_villages.c.start_on)))


def cadres_of_unit(session, unit_id):
    return list(session.execute(select(cadres).where(cadres.c.unit_id == unit_id).order_by(cadres.c.cadre_id)))


def pairings_where(session, column, value):
    return list(session.execute(select(pairings).where(pairings.c[column] == value)
                                .order_by(pairings.c.start_on, pairings.c.pairing_id)))


def as_domain_pairing(row):
    return domain.Pairing(row.pairing_id, row.cadre_id, row.unit_id, row.household_id, row.start_on, row.until_on,
                          row.end_reason)


def visit_days(session, column, value, until=None):
    """{pairing_id: [visited_on]} of the visits whose `column` is `value`, up to `until`."""
    query = select(visits.c.pairing_id, visits.c.visited_on).where(visits.c[column] == value)
    if until is not None:
        query = query.where(visits.c.visited_on <= until)
    days = {}
    for row in session.execute(query):
        days.setdefault(row.pairing_id, []).append(row.visited_on)
    return days


def cadre_visits(session, cadre_id, limit, after):
    """Up to limit+1 visits of the cadre, newest first, after the keyset (visited_on, visit_id)."""
    query = (select(visits).where(visits.c.cadre_id == cadre_id)
             .order_by(visits.c.visited_on.desc(), visits.c.visit_id.desc()).limit(limit + 1))
    if after is not None:
        day, visit_id = date.fromisoformat(after[0]), after[1]
        query = query.where(or_(visits.c.visited_on < day,
                                and_(visits.c.visited_on == day, visits.c.visit_id < visit_id)))
    return list(session.execute(query))


def rows_where(session, table, column, value, order_by):
    return list(session.execute(select(table).where(table.c[column] == value).order_by(*order_by)))


def village_visit_counts(session, unit_id, first, last):
    """{(cadre_id, village_id): count} of the unit's village visits between two dates."""
    query = (select(village_visits.c.cadre_id, village_visits.c.village_id, func.count())
             .where(village_visits.c.unit_id == unit_id, village_visits.c.visited_on >= first,
                    village_visits.c.visited_on <= last)
             .group_by(village_visits.c.cadre_id, village_visits.c.village_id))
    return {(cadre_id, village_id): count for cadre_id, village_id, count in session.execute(query)}


def last_inspections(session, unit_id, until):
    query = (select(inspections.c.cadre_id, func.max(inspections.c.inspected_on))
             .where(inspections.c.unit_id == unit_id, inspections.c.inspected_on <= until)
             .group_by(inspections.c.cadre_id))
    return dict(session.execute(query).all())


def last_inspection_of(session, cadre_id, until):
    return session.execute(select(func.max(inspections.c.inspected_on))
                           .where(inspections.c.cadre_id == cadre_id, inspections.c.inspected_on <= until)
                           ).scalar_one()
