"""Assistance: units, cadres, village assignment, pairing, visits and the rest of the work."""
from typing import Any

from ..app import ANY_SIGNED_IN, command, ListQuery, RequestContext, route
from ..contracts import assistance
from ..scopes import require_township, require_unit_of_cadre, township_of_household

WORKERS = ("admin", "unit", "cadre")


def own_unit(ctx: RequestContext, data: dict[str, Any]) -> None:
    if ctx.role == "unit" and data.get("unit_id") != ctx.scope("unit_id"):
        from services.common.errors import Forbidden

        raise Forbidden("outside your scope: another unit", {"unit_id": data.get("unit_id")})


def own_cadre(ctx: RequestContext, data: dict[str, Any]) -> None:
    require_unit_of_cadre(ctx, data["cadre_id"])


def own_pairing(ctx: RequestContext, data: dict[str, Any]) -> None:
    if ctx.role in ("unit", "cadre"):  # the roles confined to their cadres: no lookup for the others
        require_unit_of_cadre(ctx, ctx.call("assistance", "owner", "pairing", data["pairing_id"])["cadre_id"])


command("POST", "/api/v1/units", "assistance", "register_unit", roles=("admin",))
command("POST", "/api/v1/cadres", "assistance", "register_cadre", roles=("admin", "unit"), authorize=own_unit)
command("POST", "/api/v1/units/<unit_id>/villages", "assistance", "assign_village", roles=("admin", "leading_group"))
command("POST", "/api/v1/pairings", "assistance", "pair_household", roles=("admin", "unit"), authorize=own_cadre)
command("POST", "/api/v1/pairings/<pairing_id>/end", "assistance", "end_pairing", roles=("admin", "unit"),
        authorize=own_pairing, status=200)
command("POST", "/api/v1/visits", "assistance", "record_visit", roles=WORKERS, authorize=own_cadre)
# Beside API.md: a cadre syncs the visits recorded offline in the villages, all or none.
command("POST", "/api/v1/visits/batch", "assistance", "record_visits", roles=WORKERS, authorize=own_cadre)
command("POST", "/api/v1/village-visits", "assistance", "record_village_visit", roles=WORKERS, authorize=own_cadre)
command("POST", "/api/v1/inspections", "assistance", "record_inspection", roles=WORKERS, authorize=own_cadre)
command("POST", "/api/v1/exam-scores", "assistance", "record_exam_score", roles=("admin", "unit"), authorize=own_cadre)
command("POST", "/api/v1/awareness-checks", "assistance", "record_awareness_check",
        roles=("admin", "inspector", "leading_group"))
command("POST", "/api/v1/stationings", "assistance", "station_cadre", roles=("admin", "unit"), authorize=own_cadre)
command("POST", "/api/v1/residency-reports", "assistance", "report_residency", roles=WORKERS, authorize=own_cadre)


class AsOfQuery(ListQuery, assistance.AsOfQuery):
    pass


def _can_read_cadre(ctx: RequestContext, cadre_id: Any) -> None:
    if ctx.role in ("admin", "leading_group", "inspector"):
        return
    require_unit_of_cadre(ctx, cadre_id)


@route("GET", "/api/v1/cadres/<cadre_id>/overdue-visits", roles=("admin", "leading_group", "unit", "cadre", "inspector"),
       query=AsOfQuery, tag="assistance")
def overdue_visits(ctx: RequestContext) -> Any:
    """Households of this cadre whose monthly visit is missing, this month or earlier."""
    cadre_id = ctx.path_values["cadre_id"]
    _can_read_cadre(ctx, cadre_id)
    return ctx.call("assistance", "overdue_visits", cadre_id, ctx.query["as_of"].isoformat())


@route("GET", "/api/v1/cadres/<cadre_id>", roles=("admin", "leading_group", "unit", "cadre", "inspector"), tag="assistance")
def get_cadre(ctx: RequestContext) -> Any:
    """A cadre with unit, rank and pairings."""
    cadre_id = ctx.path_values["cadre_id"]
    _can_read_cadre(ctx, cadre_id)
    cadre = ctx.call("assistance", "get_cadre", cadre_id)
    cadre["pairings"] = ctx.call("assistance", "cadre_pairings", cadre_id)
    return cadre


@route("GET", "/api/v1/cadres/<cadre_id>/visits", roles=("admin", "leading_group", "unit", "cadre", "inspector"),
       query=ListQuery, tag="assistance")
def cadre_visits(ctx: RequestContext) -> Any:
    """The cadre's visits, newest first."""
    cadre_id = ctx.path_values["cadre_id"]
    _can_read_cadre(ctx, cadre_id)
    return ctx.call("assistance", "cadre_visits", cadre_id, ctx.query["limit"], ctx.query["cursor"])


@route("GET", "/api/v1/units/<unit_id>", roles=("admin", "leading_group", "unit"), query=AsOfQuery, tag="assistance")
def unit_summary(ctx: RequestContext) -> Any:
    """A unit's cadres, villages and monthly visit compliance."""
    unit_id = ctx.path_values["unit_id"]
    if ctx.role == "unit" and unit_id != ctx.scope("unit_id"):
        own_unit(ctx, {"unit_id": unit_id})
    return ctx.call("assistance", "unit_summary", unit_id, ctx.query["as_of"].isoformat())


@route("GET", "/api/v1/households/<household_id>/help", roles=ANY_SIGNED_IN, tag="assistance")
def household_help(ctx: RequestContext) -> Any:
    """Who was paired with the household, and every visit and check."""
    household_id = ctx.path_values["household_id"]
    if ctx.role == "township":  # a station reads only its own township's households
        require_township(ctx, township_of_household(ctx, household_id), "a household of another township")
    return ctx.call("assistance", "household_help_history", household_id)
