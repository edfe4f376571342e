"""Read models of the credit service, updated in the append's transaction and rebuildable.

`loans` is one row per loan with what lists, recovery and notices need; `quotas` is one row per
township and year: the quota allocated and the amount approved against it (the decision's
year). The quota check reads `quotas` under the township-year lock, so the row is current.
"""
from datetime import date
from decimal import Decimal

from sqlalchemy import Boolean, Column, Date, Index, Integer, MetaData, Numeric, Table, Text, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.common.values import iso as _iso

from . import domain

READ_MODEL_TABLES = ("loans", "quotas")

metadata = MetaData()

loans = Table(
    "loans", metadata,
    Column("loan_id", Text, primary_key=True),
    Column("household_id", Text),
    Column("enterprise_name", Text),
    Column("township_id", Text, nullable=False),
    Column("amount", Numeric(16, 2), nullable=False),
    Column("industry", Text, nullable=False),
    Column("term_months", Integer, nullable=False),
    Column("applied_on", Date, nullable=False),
    Column("status", Text, nullable=False),
    Column("recommended_on", Date),
    Column("decided_on", Date),
    Column("approved", Boolean),
    Column("disbursed_on", Date),
    Column("principal", Numeric(16, 2)),
    Column("maturity_date", Date),
    Column("principal_repaid", Numeric(16, 2), nullable=False),
    Column("principal_repaid_on_time", Numeric(16, 2), nullable=False),
    Column("outstanding", Numeric(16, 2)),
    Column("settled_on", Date),
    Column("on_time", Boolean),
    Column("overdue_on", Date),
    Column("subsidy_amount", Numeric(16, 2)),
    Column("subsidy_quarter", Text),
    Column("subsidy_paid_on", Date),
    Index("ix_loans_township", "township_id"),
    Index("ix_loans_household", "household_id"),
    Index("ix_loans_status", "status"),
    Index("ix_loans_maturity", "maturity_date"),
)

quotas = Table(
    "quotas", metadata,
    Column("township_id", Text, primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("allocated", Numeric(16, 2), nullable=False),
    Column("approved", Numeric(16, 2), nullable=False),
    Column("loans_approved", Integer, nullable=False),
)


def _on(payload, name="on"):
    return date.fromisoformat(payload[name])


def _set(session, loan_id, **values):
    session.execute(update(loans).where(loans.c.loan_id == loan_id).values(**values))


def _add_to_quota(session, township_id, year, allocated=Decimal(0), approved=Decimal(0), count=0):
    statement = pg_insert(quotas).values(township_id=township_id, year=year, allocated=allocated, approved=approved,
                                         loans_approved=count)
    session.execute(statement.on_conflict_do_update(
        index_elements=[quotas.c.township_id, quotas.c.year],
        set_={"allocated": quotas.c.allocated + allocated, "approved": quotas.c.approved + approved,
              "loans_approved": quotas.c.loans_approved + count}))


def _applied(session, p):
    session.execute(pg_insert(loans).values(
        loan_id=p["loan_id"], household_id=p["household_id"], enterprise_name=p["enterprise_name"],
        township_id=p["township_id"], amount=Decimal(p["amount"]), industry=p["industry"],
        term_months=p["term_months"], applied_on=_on(p, "applied_on"), status="applied",
        principal_repaid=Decimal(0), principal_repaid_on_time=Decimal(0)))


def _decided(session, p):
    _set(session, p["loan_id"], status="approved" if p["approved"] else "rejected", decided_on=_on(p),
         approved=p["approved"])
    if p["approved"]:
        row = session.execute(select(loans.c.amount, loans.c.household_id)
                              .where(loans.c.loan_id == p["loan_id"])).one()
        if row.household_id is not None:  # enterprise loans are outside the township quotas (第十三条)
            _add_to_quota(session, p["township_id"], _on(p).year, approved=row.amount, count=1)


def _repaid(session, p):
    row = session.execute(select(loans.c.maturity_date).where(loans.c.loan_id == p["loan_id"])).first()
    principal = Decimal(p["principal"])
    on_time = principal if _on(p) <= row.maturity_date else Decimal(0)
    session.execute(update(loans).where(loans.c.loan_id == p["loan_id"]).values(
        principal_repaid=loans.c.principal_repaid + principal,
        principal_repaid_on_time=loans.c.principal_repaid_on_time + on_time,
        outstanding=Decimal(p["outstanding_after"])))


def project(session, event):
    p, kind = event.payload, event.type
    if kind == "quota_allocated":
        _add_to_quota(session, p["township_id"], int(p["year"]), allocated=Decimal(p["amount"]))
    elif kind == "loan_applied":
        _applied(session, p)
    elif kind == "village_reviewed":
        _set(session, p["loan_id"], status="village_reviewed" if p["passed"] else "rejected")
    elif kind == "township_recommended":
        _set(session, p["loan_id"], status="recommended" if p["recommended"] else "rejected", recommended_on=_on(p))
    elif kind == "county_approved":
        _set(session, p["loan_id"], status="county_approved" if p["approved"] else "rejected")
    elif kind == "loan_decided":
        _decided(session, p)
    elif kind == "loan_disbursed":
        _set(session, p["loan_id"], status="disbursed", disbursed_on=_on(p), principal=Decimal(p["principal"]),
             maturity_date=_on(p, "maturity_date"), outstanding=Decimal(p["principal"]))
    elif kind == "loan_repaid":
        _repaid(session, p)
    elif kind == "loan_settled":
        _set(session, p["loan_id"], status="settled", settled_on=_on(p), on_time=p["on_time"])
    elif kind == "loan_overdue":
        _set(session, p["loan_id"], status="overdue", overdue_on=_on(p, "detected_on"))
    elif kind == "subsidy_paid":
        _set(session, p["loan_id"], subsidy_amount=Decimal(p["amount"]), subsidy_quarter=p["quarter"],
             subsidy_paid_on=_on(p, "paid_on"))


# --- reading --------------------------------------------------------------------------------------

def _money(value):
    return domain.money(value) if value is not None else None


def row_view(row):
    """A loan as lists show it (get_loan adds the steps, repayments, history and subsidy)."""
    return {
        "loan_id": row.loan_id, "household_id": row.household_id, "enterprise_name": row.enterprise_name,
        "township_id": row.township_id, "amount": domain.money(row.amount), "industry": row.industry,
        "term_months": row.term_months, "applied_on": _iso(row.applied_on), "status": row.status,
        "recommended_on": _iso(row.recommended_on), "decided_on": _iso(row.decided_on),
        "disbursed_on": _iso(row.disbursed_on), "principal": _money(row.principal),
        "maturity_date": _iso(row.maturity_date), "principal_repaid": domain.money(row.principal_repaid),
        "outstanding": _money(row.outstanding), "settled_on": _iso(row.settled_on), "on_time": row.on_time,
        "overdue_on": _iso(row.overdue_on), "subsidy_paid": _money(row.subsidy_amount),
    }


def list_loans(session, filters, limit, after):
    query = select(loans).order_by(loans.c.loan_id).limit(limit + 1)
    for name in ("township_id", "status", "household_id"):
        if filters.get(name) is not None:
            query = query.where(loans.c[name] == filters[name])
    if after is not None:
        query = query.where(loans.c.loan_id > after)
    return list(session.execute(query))


def household_loans(session, household_id):
    rows = session.execute(select(loans.c.loan_id, loans.c.status).where(loans.c.household_id == household_id)
                           .order_by(loans.c.loan_id))
    return [{"loan_id": row.loan_id, "status": row.status} for row in rows]


def quota_row(session, township_id, year):
    return session.execute(select(quotas).where(quotas.c.township_id == township_id, quotas.c.year == year)).first()


def remaining_quota(session, township_id, year):
    row = quota_row(session, township_id, year)
    return Decimal(0) if row is None else row.allocated - row.approved


def quota_view(session, township_id, year):
    row = quota_row(session, township_id, year)
    allocated = row.allocated if row else Decimal(0)
    approved = row.approved if row else Decimal(0)
    return {"township_id": township_id, "year": year, "allocated": domain.money(allocated),
            "approved": domain.money(approved), "remaining": domain.money(allocated - approved),
            "loans_approved": row.loans_approved if row else 0}


def maturing(session, township_id, year, as_of):
    """The household loans of the township maturing in the year on or before `as_of` (an
    enterprise loan is not the township's: 第十三条)."""
    rows = session.execute(select(loans.c.principal, loans.c.principal_repaid_on_time).where(
        loans.c.township_id == township_id, loans.c.household_id.isnot(None), loans.c.maturity_date >= date(year, 1, 1),
        loans.c.maturity_date <= min(date(year, 12, 31), as_of)))
    return [(row.principal, row.principal_repaid_on_time) for row in rows]


def overdue_candidates(session, as_of):
    rows = session.execute(select(loans.c.loan_id).where(loans.c.status == "disbursed", loans.c.maturity_date < as_of)
                           .order_by(loans.c.loan_id))
    return [row.loan_id for row in rows]


def subsidy_candidates(session, first, last, excluded_industries):
    rows = session.execute(select(loans.c.loan_id).where(
        loans.c.status == "settled", loans.c.on_time.is_(True), loans.c.overdue_on.is_(None),
        loans.c.subsidy_paid_on.is_(None), loans.c.settled_on >= first, loans.c.settled_on <= last,
        loans.c.industry.not_in(list(excluded_industries) or [""])).order_by(loans.c.loan_id))
    return [row.loan_id for row in rows]


def approved_in_month(session, township_id, first, last):
    rows = session.execute(select(loans).where(
        loans.c.township_id == township_id, loans.c.approved.is_(True), loans.c.decided_on >= first,
        loans.c.decided_on <= last).order_by(loans.c.decided_on, loans.c.loan_id))
    return list(rows)


def count_loans(session):
    return session.execute(select(func.count()).select_from(loans)).scalar_one()
