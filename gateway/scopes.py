"""Scope checks: a scoped role reads and writes only inside its scope (API.md).

Each check looks the owning township / department / unit up over RPC when the request does not
carry it, so a caller cannot claim a scope by naming it in the body."""
from collections.abc import Callable
from typing import Any

from services.common.errors import Forbidden

from .app import RequestContext


FULL_ACCESS = ("admin", "leading_group")


def _deny(ctx: RequestContext, what: Any) -> None:
    raise Forbidden(f"outside your scope: {what}", {"role": ctx.role, "scope": ctx.user.scope})


def township_of_village(ctx: RequestContext, village_id: Any) -> Any:
    return ctx.call("registry", "owner", "village", village_id)["township_id"]


def township_of_household(ctx: RequestContext, household_id: Any) -> Any:
    return ctx.call("registry", "owner", "household", household_id)["township_id"]


# A project's department is set when it is planned and never changes, so the gateway keeps it: a
# department posting its projects' progress made two RPCs per command, this lookup and the command.
_project_departments: dict[tuple[str, str], str] = {}  # (the broker's address, project) -> department
KEPT_PROJECTS = 50_000


def department_of_project(ctx: RequestContext, project_id: Any) -> Any:
    kept_as = (ctx.config["AMQP_URI"], project_id)  # a platform is its broker (vhost): tests run several
    department = _project_departments.get(kept_as)
    if department is None:
        department = ctx.call("projects", "owner", "project", project_id)["department"]
        if len(_project_departments) >= KEPT_PROJECTS:
            _project_departments.clear()
        _project_departments[kept_as] = department
    return department


def unit_of_cadre(ctx: RequestContext, cadre_id: Any) -> Any:
    return ctx.call("assistance", "owner", "cadre", cadre_id)["unit_id"]


def require_township(ctx: RequestContext, township_id: str | None, what: str = "another township") -> None:
    if ctx.role == "township" and township_id != ctx.scope("township_id"):
        _deny(ctx, what)


def require_township_of(ctx: RequestContext, owner: Callable[[], Any], what: str = "another township") -> None:
    """`require_township` with the township looked up only for a township station: the other roles
    that may call the route are not confined to one, and a lookup is an RPC round trip (it was
    half the RPCs of an income assessment sent by the admin)."""
    if ctx.role == "township":
        require_township(ctx, owner(), what)


def require_unit_of_cadre(ctx: RequestContext, cadre_id: Any) -> None:
    """A unit acts for its own cadres; a cadre only for itself."""
    if ctx.role == "cadre" and cadre_id != ctx.scope("cadre_id"):
        _deny(ctx, "another cadre's work")
    if ctx.role == "unit" and unit_of_cadre(ctx, cadre_id) != ctx.scope("unit_id"):
        _deny(ctx, "a cadre of another unit")


def require_department(ctx: RequestContext, department: str | None) -> None:
    if ctx.role == "department" and department != ctx.scope("department"):
        _deny(ctx, f"a {department} project")


def reveals_personal_data(ctx: RequestContext, township_id: str | None) -> Any:
    """ID and phone numbers: unmasked for admin, and for a township station in its own scope."""
    return ctx.role == "admin" or (ctx.role == "township" and township_id == ctx.scope("township_id"))
