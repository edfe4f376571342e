"""Read models of the supervision service, updated in the append's transaction and rebuildable.

`campaigns` lists the campaigns (a campaign's actions are folded from its short stream),
`weekly_reports` keeps the latest submission of each (campaign, unit, week), and `problems` is
the rectification ledger, one row per problem with its current state.
"""
from datetime import date, datetime

from sqlalchemy import Boolean, Column, Date, DateTime, Index, Integer, MetaData, Table, Text, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert

READ_MODEL_TABLES = ("campaigns", "weekly_reports", "problems")

metadata = MetaData()

campaigns = Table(
    "campaigns", metadata,
    Column("campaign_id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date, nullable=False),
    Column("actions", Integer, nullable=False),
)

weekly_reports = Table(
    "weekly_reports", metadata,
    Column("campaign_id", Text, primary_key=True),
    Column("unit_id", Text, primary_key=True),
    Column("week", Text, primary_key=True),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("first_reported_at", DateTime(timezone=True), nullable=False),
    Column("late", Boolean, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("payload", JSONB, nullable=False),
)

problems = Table(
    "problems", metadata,
    Column("problem_id", Text, primary_key=True),
    Column("source", Text, nullable=False),
    Column("found_on", Date, nullable=False),
    Column("unit_id", Text, nullable=False),
    Column("township_id", Text),
    Column("household_id", Text),
    Column("deadline", Date, nullable=False),
    Column("status", Text, nullable=False),
    Column("closed_on", Date),
    Column("view", JSONB, nullable=False),
    Index("ix_problems_unit", "unit_id"),
    Index("ix_problems_township", "township_id"),
    Index("ix_problems_status_deadline", "status", "deadline"),
)


def project(session, event, state=None):
    payload = event.payload
    kind = event.type
    if kind == "campaign_launched":
        session.execute(pg_insert(campaigns).values(
            campaign_id=payload["campaign_id"], name=payload["name"], starts_on=date.fromisoformat(payload["starts_on"]),
            ends_on=date.fromisoformat(payload["ends_on"]), actions=0))
    elif kind == "action_added":
        session.execute(update(campaigns).where(campaigns.c.campaign_id == payload["campaign_id"])
                        .values(actions=campaigns.c.actions + 1))
    elif kind == "weekly_report_submitted":
        values = {"due_at": datetime.fromisoformat(payload["due_at"]),
                  "first_reported_at": datetime.fromisoformat(payload["first_reported_at"]),
                  "late": payload["late"], "revision": payload["revision"], "payload": payload}
        session.execute(pg_insert(weekly_reports).values(
            campaign_id=payload["campaign_id"], unit_id=payload["unit_id"], week=payload["week"], **values)
            .on_conflict_do_update(index_elements=["campaign_id", "unit_id", "week"], set_=values))
    elif kind == "problem_recorded":
        view = {**payload, "status": "open", "measures": [], "closure_requested_on": None, "closed_on": None,
                "closed_on_time": None, "sent_back": [], "note": None}
        session.execute(pg_insert(problems).values(
            problem_id=payload["problem_id"], source=payload["source"], found_on=date.fromisoformat(payload["found_on"]),
            unit_id=payload["unit_id"], township_id=payload.get("township_id"),
            household_id=payload.get("household_id"), deadline=date.fromisoformat(payload["deadline"]),
            status="open", view=view))
    elif kind in ("measures_recorded", "closure_requested", "problem_closed", "problem_sent_back"):
        _problem_step(session, event)


def _problem_step(session, event):
    """Apply one lifecycle step to the problem's row (its view is the JSON the API shows)."""
    payload = event.payload
    row = session.execute(select(problems.c.view).where(problems.c.problem_id == payload["problem_id"])
                          .with_for_update()).scalar_one()
    view = dict(row)
    if event.type == "measures_recorded":
        view["measures"] = view["measures"] + [{"on": payload["on"], "measures": payload["measures"]}]
    elif event.type == "closure_requested":
        view.update(status="awaiting_verification", closure_requested_on=payload["on"])
    elif event.type == "problem_closed":
        view.update(status="closed", closed_on=payload["on"], closed_on_time=payload["on_time"], note=payload["note"])
    elif event.type == "problem_sent_back":
        view.update(status="open", closure_requested_on=None, note=payload["note"],
                    sent_back=view["sent_back"] + [{"on": payload["on"], "note": payload["note"]}])
    session.execute(update(problems).where(problems.c.problem_id == payload["problem_id"]).values(
        view=view, status=view["status"],
        closed_on=date.fromisoformat(view["closed_on"]) if view["closed_on"] else None))


# --- reading --------------------------------------------------------------------------------------

def list_campaigns(session):
    rows = session.execute(select(campaigns).order_by(campaigns.c.starts_on.desc(), campaigns.c.campaign_id))
    return [{"campaign_id": r.campaign_id, "name": r.name, "starts_on": r.starts_on.isoformat(),
             "ends_on": r.ends_on.isoformat(), "actions": r.actions} for r in rows]


def campaign_reports(session, campaign_id):
    rows = session.execute(select(weekly_reports.c.payload).where(weekly_reports.c.campaign_id == campaign_id))
    return [row.payload for row in rows]


def find_problem(session, problem_id):
    return session.execute(select(problems.c.view).where(problems.c.problem_id == problem_id)).scalar()


def list_problems(session, filters, as_of, limit, after):
    """Up to limit+1 problems after the problem id `after`, by problem id; status `overdue`
    means not closed and past the deadline on `as_of`."""
    query = select(problems.c.view).order_by(problems.c.problem_id).limit(limit + 1)
    for name in ("unit_id", "township_id", "source"):
        if filters.get(name) is not None:
            query = query.where(problems.c[name] == filters[name])
    if filters.get("party") is not None:  # responsible for it, or it was found in that township
        query = query.where(or_(problems.c.unit_id == filters["party"], problems.c.township_id == filters["party"]))
    if filters.get("unit_ids") is not None:
        query = query.where(problems.c.unit_id.in_(filters["unit_ids"]))
    status = filters.get("status")
    if status == "overdue":
        query = query.where(problems.c.status != "closed", problems.c.deadline < as_of)
    elif status in ("open", "awaiting_verification"):
        query = query.where(problems.c.status == status, problems.c.deadline >= as_of)
    elif status == "closed":
        query = query.where(problems.c.status == "closed")
    if after is not None:
        query = query.where(problems.c.problem_id > after)
    return [row.view for row in session.execute(query)]
