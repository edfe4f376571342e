"""Credit: subsidised household loans, from application to subsidy (贴息)."""
from typing import Any

from marshmallow import fields

from ..app import command, ListQuery, RequestContext, route
from ..contracts import credit
from ..scopes import require_township, require_township_of

STATION = ("admin", "township")
CREDIT_UNION = ("admin", "credit_union")
LOAN_READERS = ("admin", "leading_group", "township", "credit_union")


def own_township(ctx: RequestContext, data: dict[str, Any]) -> None:
    require_township(ctx, data.get("township_id"))


def loan_in_township(ctx: RequestContext, data: dict[str, Any]) -> None:
    require_township_of(ctx, lambda: ctx.call("credit", "owner", "loan", data["loan_id"])["township_id"],
                        "a loan of another township")


command("POST", "/api/v1/quotas", "credit", "allocate_quota", roles=("admin", "leading_group"))
command("POST", "/api/v1/loans", "credit", "apply_loan", roles=STATION, authorize=own_township)
command("POST", "/api/v1/loans/<loan_id>/village-review", "credit", "village_review", roles=STATION,
        authorize=loan_in_township, status=200)
command("POST", "/api/v1/loans/<loan_id>/township-recommendation", "credit", "township_recommendation",
        roles=STATION, authorize=loan_in_township, status=200)
command("POST", "/api/v1/loans/<loan_id>/county-approval", "credit", "county_approval",
        roles=("admin", "leading_group"), status=200)
command("POST", "/api/v1/loans/<loan_id>/decision", "credit", "decide_loan", roles=CREDIT_UNION, status=200)
command("POST", "/api/v1/loans/<loan_id>/disbursement", "credit", "disburse_loan", roles=CREDIT_UNION, status=200)
command("POST", "/api/v1/loans/<loan_id>/repayments", "credit", "record_repayment", roles=CREDIT_UNION)
command("POST", "/api/v1/subsidy-settlements", "credit", "settle_subsidies", roles=CREDIT_UNION)


class LoanQuery(ListQuery, credit.LoanFilters):
    """Loans by township, status and household, a page at a time."""


@route("GET", "/api/v1/loans", roles=LOAN_READERS, query=LoanQuery, tag="credit")
def list_loans(ctx: RequestContext) -> Any:
    """Loans by township, status and household; a township sees only its own."""
    filters = {k: ctx.query[k] for k in ("township_id", "status", "household_id") if k in ctx.query}
    if ctx.role == "township":
        require_township(ctx, filters.get("township_id", ctx.scope("township_id")))
        filters["township_id"] = ctx.scope("township_id")
    return ctx.call("credit", "list_loans", filters, ctx.query["limit"], ctx.query["cursor"])


@route("GET", "/api/v1/loans/<loan_id>", roles=LOAN_READERS, tag="credit")
def get_loan(ctx: RequestContext) -> Any:
    """One loan with its history and subsidy."""
    loan = ctx.call("credit", "get_loan", ctx.path_values["loan_id"])
    require_township(ctx, loan["township_id"], "a loan of another township")
    return loan


class YearQuery(ListQuery, credit.YearQuery):
    pass


class RecoveryQuery(YearQuery):
    as_of = fields.Date()  # default: today, county time (the credit service's clock)


@route("GET", "/api/v1/townships/<township_id>/recovery", roles=LOAN_READERS, query=RecoveryQuery, tag="credit")
def township_recovery(ctx: RequestContext) -> Any:
    """Recovery rate (回收率) for the year, with the quota recommendation."""
    township_id = ctx.path_values["township_id"]
    require_township(ctx, township_id)
    as_of = ctx.query.get("as_of")
    return ctx.call("credit", "township_recovery", township_id, ctx.query["year"],
                    as_of.isoformat() if as_of else None)


@route("GET", "/api/v1/townships/<township_id>/quota", roles=LOAN_READERS, query=YearQuery, tag="credit")
def quota_use(ctx: RequestContext) -> Any:
    """The township's loan quota for the year and how much of it is used."""
    township_id = ctx.path_values["township_id"]
    require_township(ctx, township_id)
    return ctx.call("credit", "quota_use", township_id, ctx.query["year"])


class MonthQuery(ListQuery, credit.MonthQuery):
    pass


@route("GET", "/api/v1/townships/<township_id>/loan-notice", roles=LOAN_READERS, query=MonthQuery, tag="credit")
def loan_public_notice(ctx: RequestContext) -> Any:
    """The month-end public notice (公示, 第十二条3): the township's loans approved in the month."""
    township_id = ctx.path_values["township_id"]
    require_township(ctx, township_id)
    return ctx.call("credit", "public_notice", township_id, ctx.query["month"])
