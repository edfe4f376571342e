"""Registry: townships, villages, households (建档立卡), members, income, assurances, exits,
monitoring."""
from typing import Any

from marshmallow import Schema, fields, validate as v

from ..app import ANY_SIGNED_IN, command, ListQuery, RequestContext, route
from ..contracts import registry
from ..scopes import (reveals_personal_data, require_township, require_township_of, township_of_household,
                      township_of_village)

STATIONS = ("admin", "township")


def in_village_township(ctx: RequestContext, data: dict[str, Any]) -> None:
    require_township_of(ctx, lambda: township_of_village(ctx, data["village_id"]))


def in_household_township(ctx: RequestContext, data: dict[str, Any]) -> None:
    require_township_of(ctx, lambda: township_of_household(ctx, data["household_id"]))


command("POST", "/api/v1/townships", "registry", "register_township", roles=("admin",))
command("POST", "/api/v1/villages", "registry", "register_village", roles=("admin",))
command("POST", "/api/v1/households", "registry", "register_household", roles=STATIONS,
        authorize=in_village_township)
for path, rpc_method, status in (
    ("members", "add_member", 201),
    ("income", "assess_income", 201),
    ("assurances", "assess_assurances", 201),
    ("exit", "exit_household", 200),
    ("monitoring", "flag_monitoring", 201),
    ("monitoring/clear", "clear_monitoring", 200),
    ("return-to-poverty", "return_to_poverty", 200),
    ("policy-informant", "name_policy_informant", 200),
):
    command("POST", f"/api/v1/households/<household_id>/{path}", "registry", rpc_method,
            roles=STATIONS, authorize=in_household_township, status=status)
command("POST", "/api/v1/households/<household_id>/members/<person_id>", "registry", "update_member",
        roles=STATIONS, authorize=in_household_township, status=200)
command("POST", "/api/v1/households/<household_id>/members/<person_id>/remove", "registry", "remove_member",
        roles=STATIONS, authorize=in_household_township, status=200)


class Erasure(Schema):
    reason = fields.String(required=True, validate=v.Length(min=2, max=500),
                           metadata={"description": "why (the data subject's request, its date and reference)"})


@route("POST", "/api/v1/households/<household_id>/erase-personal-data", roles=("admin",), body=Erasure,
       tag="registry")
def erase_personal_data(ctx: RequestContext) -> Any:
    """PIPL deletion: the household's ID and phone numbers become unreadable for good (its data key
    is destroyed); its history, statuses and scores stay."""
    household_id = ctx.path_values["household_id"]
    result = ctx.command("registry", "erase_personal_data", {"household_id": household_id,
                                                              "reason": ctx.body["reason"]})
    ctx.audit_resource = {"event": "personal_data_erased", "household_id": household_id}
    return result


class HouseholdQuery(ListQuery, registry.HouseholdFilters):
    """Households by village, township, status and monitoring, a page at a time."""


@route("GET", "/api/v1/households/<household_id>", roles=ANY_SIGNED_IN, tag="registry")
def get_household(ctx: RequestContext) -> Any:
    """One household with members, status, latest assurances and monitoring."""
    household = ctx.call("registry", "get_household", ctx.path_values["household_id"])
    require_township(ctx, household["township_id"], "a household of another township")
    if reveals_personal_data(ctx, household["township_id"]):
        household = ctx.call("registry", "get_household", household["household_id"], True)
        ctx.audit_reads.append({"event": "personal_data_revealed", "household_ids": [household["household_id"]]})
    return household


@route("GET", "/api/v1/households", roles=ANY_SIGNED_IN, query=HouseholdQuery, tag="registry")
def list_households(ctx: RequestContext) -> Any:
    """Households by village, township, status and monitoring; a township sees only its own."""
    filters = {k: ctx.query[k] for k in ("village_id", "township_id", "status", "monitored") if k in ctx.query}
    if ctx.role == "township":
        require_township(ctx, filters.get("township_id", ctx.scope("township_id")))
        filters["township_id"] = ctx.scope("township_id")
    reveal = reveals_personal_data(ctx, filters.get("township_id"))
    result = ctx.call("registry", "list_households", filters, ctx.query["limit"], ctx.query["cursor"], reveal)
    if reveal and result["items"]:  # 个人信息: who saw whose unmasked ID and phone numbers
        ctx.audit_reads.append({"event": "personal_data_revealed",
                                "household_ids": [item["household_id"] for item in result["items"]]})
    return result


@route("GET", "/api/v1/households/<household_id>/history", roles=ANY_SIGNED_IN, tag="registry")
def household_history(ctx: RequestContext) -> Any:
    """The household's events, oldest first."""
    household_id = ctx.path_values["household_id"]
    require_township(ctx, township_of_household(ctx, household_id), "a household of another township")
    return {"items": ctx.call("registry", "household_history", household_id), "next_cursor": None}


class StatisticsQuery(ListQuery, registry.YearQuery):
    pass


@route("GET", "/api/v1/villages/<village_id>/statistics", roles=ANY_SIGNED_IN, query=StatisticsQuery, tag="registry")
def village_statistics(ctx: RequestContext) -> Any:
    """Households and people by status, exits this year, monitored, assurance compliance."""
    village_id = ctx.path_values["village_id"]
    require_township(ctx, township_of_village(ctx, village_id), "a village of another township")
    return ctx.call("registry", "village_statistics", village_id, ctx.query["year"])


@route("GET", "/api/v1/townships/<township_id>/statistics", roles=ANY_SIGNED_IN, query=StatisticsQuery, tag="registry")
def township_statistics(ctx: RequestContext) -> Any:
    """The same figures for a whole township."""
    township_id = ctx.path_values["township_id"]
    require_township(ctx, township_id)
    return ctx.call("registry", "township_statistics", township_id, ctx.query["year"])
