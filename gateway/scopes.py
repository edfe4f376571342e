"""Scope checks: a scoped role reads and writes only inside its scope (API.md).

Each check looks the owning township / department / unit up over RPC when the request does not
carry it, so a caller cannot claim a scope by naming it in the body."""
from services.common.errors import Forbidden

FULL_ACCESS = ("admin", "leading_group")


def _deny(ctx, what):
    raise Forbidden(f"outside your scope: {what}", {"role": ctx.role, "scope": ctx.principal.scope})


def township_of_village(ctx, village_id):
    return ctx.call("registry", "get_village", village_id)["township_id"]


def township_of_household(ctx, household_id):
    return ctx.call("registry", "get_household", household_id)["township_id"]


def unit_of_cadre(ctx, cadre_id):
    return ctx.call("assistance", "get_cadre", cadre_id)["unit_id"]


def require_township(ctx, township_id, what="another township"):
    if ctx.role == "township" and township_id != ctx.scope("township_id"):
        _deny(ctx, what)


def require_unit_of_cadre(ctx, cadre_id):
    """A unit acts for its own cadres; a cadre only for itself."""
    if ctx.role == "cadre" and cadre_id != ctx.scope("cadre_id"):
        _deny(ctx, "another cadre's work")
    if ctx.role == "unit" and unit_of_cadre(ctx, cadre_id) != ctx.scope("unit_id"):
        _deny(ctx, "a cadre of another unit")


def require_department(ctx, department):
    if ctx.role == "department" and department != ctx.scope("department"):
        _deny(ctx, f"a {department} project")


def reveals_personal_data(ctx, township_id):
    """ID and phone numbers: unmasked for admin, and for a township station in its own scope."""
    return ctx.role == "admin" or (ctx.role == "township" and township_id == ctx.scope("township_id"))
