"""Supervision (督查督战): campaigns, weekly reports and the rectification ledger.

Who may do what (API.md): the leading group (and admin) run campaigns and verify problems; a
unit, a department or a township station reports for itself only and works on its own problems;
an inspector records the problems an inspection or a spot check found. A responsible party is
named by a unit id, a department code or a township id, so "its own" is whichever of these the
caller's scope holds.
"""
from typing import Any

from services.common.errors import Forbidden, NotFound
from services.common.validation import DateOrDateTime

from ..app import command, ListQuery, RequestContext, route
from ..contracts import supervision

JUDGES = ("admin", "leading_group")
REPORTERS = ("admin", "unit", "department", "township")
READERS = ("admin", "leading_group", "inspector", "unit", "department", "township")


def own_party(ctx: RequestContext) -> Any:
    """The responsible-party id a scoped caller stands for (None: not scoped to one)."""
    return {"unit": ctx.scope("unit_id"), "department": ctx.scope("department"),
            "township": ctx.scope("township_id")}.get(ctx.role)


def _deny(ctx: RequestContext, what: Any) -> None:
    raise Forbidden(f"outside your scope: {what}", {"role": ctx.role, "scope": ctx.user.scope})


def _signer(ctx: RequestContext, cadre_id: Any) -> Any:
    """The signing cadre as the service's rule needs it (rank, unit, department); looked up here,
    never taken from the caller."""
    try:
        cadre = ctx.call("assistance", "owner", "cadre", cadre_id)
    except NotFound:
        return {"cadre_id": cadre_id, "known": False}
    try:
        department = ctx.call("assistance", "owner", "unit", cadre["unit_id"]).get("department")
    except NotFound:
        department = None
    return {"cadre_id": cadre_id, "known": True, "rank": cadre.get("rank"), "unit_id": cadre.get("unit_id"),
            "department": department}


def own_report(ctx: RequestContext, data: dict[str, Any]) -> None:
    data.pop("signer", None)  # filled below from the registry of cadres, whatever the body said
    party = own_party(ctx)
    if party is not None and data.get("unit_id") != party:
        _deny(ctx, "a report of another unit")
    if data.get("signed_off_by"):
        data["signer"] = _signer(ctx, data["signed_off_by"])


def _problem_is_own(ctx: RequestContext, problem: Any) -> Any:
    party = own_party(ctx)
    return party is None or party in (problem.get("unit_id"), problem.get("township_id") if ctx.role == "township"
                                      else None)


def own_problem(ctx: RequestContext, data: dict[str, Any]) -> None:
    """The responsible party works on its own problems only."""
    if own_party(ctx) is None:  # the leading group and the admin: every problem, nothing to look up
        return
    problem = ctx.call("supervision", "owner", "problem", data["problem_id"])
    if not _problem_is_own(ctx, problem):
        _deny(ctx, "a problem of another unit")


command("POST", "/api/v1/campaigns", "supervision", "launch_campaign", roles=JUDGES)
command("POST", "/api/v1/campaigns/<campaign_id>/actions", "supervision", "add_action", roles=JUDGES)
# Beside API.md: a milestone without a target quantity is met when the leading group says so.
command("POST", "/api/v1/campaigns/<campaign_id>/actions/<action_id>/milestones/<milestone_id>/met",
        "supervision", "mark_milestone", roles=JUDGES, status=200)
command("POST", "/api/v1/campaigns/<campaign_id>/reports", "supervision", "submit_weekly_report",
        roles=REPORTERS, authorize=own_report)
command("POST", "/api/v1/problems", "supervision", "record_problem", roles=("admin", "leading_group", "inspector"))
command("POST", "/api/v1/problems/<problem_id>/measures", "supervision", "record_measures",
        roles=("admin", "unit", "department", "township"), authorize=own_problem)
command("POST", "/api/v1/problems/<problem_id>/closure-request", "supervision", "request_closure",
        roles=("admin", "unit", "department", "township"), authorize=own_problem, status=200)
command("POST", "/api/v1/problems/<problem_id>/verify", "supervision", "verify_problem", roles=JUDGES, status=200)


@route("GET", "/api/v1/campaigns", roles=READERS, tag="supervision")
def list_campaigns(ctx: RequestContext) -> Any:
    """The campaigns, newest first."""
    return ctx.call("supervision", "list_campaigns")


class CampaignQuery(ListQuery):
    as_of = DateOrDateTime(metadata={"description": "a date (its end, county time) or a date-time; default now"})


def _scoped_view(ctx: RequestContext, view: Any) -> Any:
    """A scoped caller sees every action's county-wide progress, but only its own reports and,
    for a township station, only its own township's shares."""
    party = own_party(ctx)
    if party is None:
        return view
    view = {**view, "reports": {**view["reports"],
                                "units": [u for u in view["reports"]["units"] if u["unit_id"] == party]}}
    if ctx.role == "township":
        actions = []
        for action in view["actions"]:
            targets = [{**t, "by_unit": {k: q for k, q in t["by_unit"].items() if k == party},
                        "by_township": [s for s in t["by_township"] if s["township_id"] == party]}
                       for t in action["targets"]]
            actions.append({**action, "targets": targets})
        view["actions"] = actions
    return view


@route("GET", "/api/v1/campaigns/<campaign_id>", roles=READERS, query=CampaignQuery, tag="supervision")
def get_campaign(ctx: RequestContext) -> Any:
    """Progress per action and township, milestones met or missed, late and missing reports by unit."""
    view = ctx.call("supervision", "get_campaign", ctx.path_values["campaign_id"], ctx.query.get("as_of"))
    return _scoped_view(ctx, view)


class ProblemQuery(ListQuery, supervision.ProblemFilters):
    as_of = DateOrDateTime(metadata={"description": "overdue as of this date; default today (county time)"})


@route("GET", "/api/v1/problems", roles=READERS, query=ProblemQuery, tag="supervision")
def list_problems(ctx: RequestContext) -> Any:
    """The rectification ledger (问题整改台账) by unit, township and status."""
    filters: dict[str, Any] = {k: ctx.query[k] for k in ("unit_id", "township_id", "source", "status")
                               if k in ctx.query}
    party = own_party(ctx)
    if party is not None:
        if ctx.role == "township":
            if filters.get("township_id", party) != party:
                _deny(ctx, "another township's problems")
            filters.pop("township_id", None)
            filters["party"] = party  # its own problems and those found in its township
        elif filters.setdefault("unit_id", party) != party:
            _deny(ctx, "another unit's problems")
    return ctx.call("supervision", "list_problems", filters, ctx.query["limit"], ctx.query["cursor"],
                    ctx.query.get("as_of"))


@route("GET", "/api/v1/problems/<problem_id>", roles=READERS, tag="supervision")
def get_problem(ctx: RequestContext) -> Any:
    """One problem with its measures, requests, verifications and history."""
    problem = ctx.call("supervision", "get_problem", ctx.path_values["problem_id"])
    if not _problem_is_own(ctx, problem):
        _deny(ctx, "a problem of another unit")
    return problem
