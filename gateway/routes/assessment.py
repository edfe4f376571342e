"""Assessment: scores, rankings, ratings, vetoes, the rulebook and the weekly bulletin."""
import base64
from typing import Any

from marshmallow import fields, validate as v
from werkzeug.wrappers import Response


from ..app import ANY_SIGNED_IN, command, ListQuery, RequestContext, route
from ..contracts import assessment
from ..scopes import require_township, require_unit_of_cadre

JUDGES = ("admin", "leading_group")
NAMES_UNMASKED = ("admin", "leading_group", "township", "unit", "cadre")


class ScoreQuery(ListQuery, assessment.ScoreQuery):
    """Scores for a period as of a date, a page at a time."""


class BulletinQuery(ListQuery, assessment.BulletinQuery):
    pass


command("POST", "/api/v1/ratings", "assessment", "record_rating", roles=JUDGES)
command("POST", "/api/v1/vetoes", "assessment", "record_veto", roles=JUDGES)


# path parameters that are not ids: dispatch checks them, the OpenAPI document states them
SUBJECT_TYPE = {"subject_type": fields.String(validate=v.OneOf(assessment.SUBJECT_TYPES))}
MONTH = dict(assessment.MonthArgument().fields)


def _subject_type(ctx: RequestContext) -> Any:
    return ctx.path_values["subject_type"]  # one of SUBJECT_TYPES: dispatch checked it


@route("GET", "/api/v1/scores/<subject_type>", roles=ANY_SIGNED_IN, query=ScoreQuery, tag="assessment",
       path_params=SUBJECT_TYPE)
def rankings(ctx: RequestContext) -> Any:
    """Scores of every subject of a type for a period as of a date, best first, vetoed last."""
    return ctx.call("assessment", "rankings", _subject_type(ctx), ctx.query["period"],
                    ctx.query["as_of"].isoformat(), ctx.query["limit"], ctx.query["cursor"], ctx.query.get("version"))


@route("GET", "/api/v1/scores/<subject_type>/<subject_id>", roles=ANY_SIGNED_IN, query=ScoreQuery, tag="assessment",
       path_params=SUBJECT_TYPE)
def subject_score(ctx: RequestContext) -> Any:
    """One subject's score with every indicator and its evidence, and for cadres the pay."""
    subject_type, subject_id = _subject_type(ctx), ctx.path_values["subject_id"]
    if ctx.role not in ("admin", "leading_group", "inspector"):
        if subject_type == "cadre" and ctx.role in ("unit", "cadre"):
            require_unit_of_cadre(ctx, subject_id)
        elif subject_type == "unit" and ctx.role == "unit":
            ctx.require(subject_id == ctx.scope("unit_id"), "outside your scope: another unit")
        elif subject_type == "township" and ctx.role == "township":
            require_township(ctx, subject_id)
        else:
            ctx.require(False, "outside your scope")
    # Evidence names households by number and head: the head's name is for those who work with
    # the household (the office, its township, the pairing unit and cadre); others see 张*.
    mask_names = ctx.role not in NAMES_UNMASKED
    return ctx.call("assessment", "subject_score", subject_type, subject_id, ctx.query["period"],
                    ctx.query["as_of"].isoformat(), ctx.query.get("version"), mask_names)


# GET /api/v1/rulebook (the whole county rulebook, this one included) is in routes/rulebook.py.


@route("PUT", "/api/v1/rulebook", roles=JUDGES, body=("assessment", "publish_rulebook"), tag="assessment")
def publish_rulebook(ctx: RequestContext) -> Any:
    """A new version of the scoring rulebook, effective from `effective_from` (default `published_on`):
    a score dated before keeps the earlier values; any version can still be asked for (`?version=`).
    The same as PUT /api/v1/rulebook/assessment."""
    return ctx.command("assessment", "publish_rulebook", dict(ctx.raw_body))


@route("GET", "/api/v1/bulletins/weekly", roles=("admin", "leading_group", "department", "township"),
       query=BulletinQuery, tag="assessment", response="file")
def weekly_bulletin(ctx: RequestContext) -> Any:
    """The weekly bulletin (周通报) as JSON, CSV or XLSX."""
    result = ctx.call("assessment", "weekly_bulletin", ctx.query["week"], ctx.query["format"])
    if ctx.query["format"] == "json":
        return result
    return Response(base64.b64decode(result["content_base64"]), status=200, content_type=result["content_type"],
                    headers={"Content-Disposition": f'attachment; filename="{result["filename"]}"'})


# --- closing a month (月度考核定格) and the pay sheet -------------------------------------------------
MONTH_READERS = JUDGES + ("inspector",)


def _month(ctx: RequestContext) -> Any:
    return ctx.path_values["month"]  # checked by dispatch with assessment.MonthArgument's field


command("POST", "/api/v1/periods/<month>/close", "assessment", "close_month", roles=JUDGES, status=200)
command("POST", "/api/v1/periods/<month>/reopen", "assessment", "reopen_month", roles=JUDGES, status=200)


@route("GET", "/api/v1/periods", roles=MONTH_READERS, query=assessment.PeriodsQuery, tag="assessment")
def list_periods(ctx: RequestContext) -> Any:
    """Each month of a year: open or closed (月度考核定格), when, and its late corrections."""
    return ctx.call("assessment", "list_periods", ctx.query["year"])


@route("GET", "/api/v1/periods/<month>", roles=MONTH_READERS, tag="assessment", path_params=MONTH)
def period_report(ctx: RequestContext) -> Any:
    """A month's status, its closings and re-openings, and the events dated into it after it was closed."""
    return ctx.call("assessment", "period_report", _month(ctx))


@route("GET", "/api/v1/periods/<month>/pay-sheet", roles=JUDGES, query=assessment.InFormat, tag="assessment",
       response="file", path_params=MONTH)
def pay_sheet(ctx: RequestContext) -> Any:
    """The closed month's pay sheet (cadre, unit, score, grade, performance pay, rewards, withheld, restrictions)."""
    result = ctx.call("assessment", "pay_sheet", _month(ctx), ctx.query["format"])
    if ctx.query["format"] == "json":
        return result
    return Response(base64.b64decode(result["content_base64"]), status=200, content_type=result["content_type"],
                    headers={"Content-Disposition": f'attachment; filename="{result["filename"]}"'})
