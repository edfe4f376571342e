"""The county rulebook, one door: every service's section (each owned by that service, as
events in its own store; the assessment's is the scoring rulebook), and the county's clock. Changes: admin or the leading group, effective from a date, audited like every command."""
from typing import Any

from marshmallow import Schema, fields, validate as v

from services.common.clock import clock_from_config
from services.common.errors import NotFound, ServiceUnavailable

from ..app import ANY_SIGNED_IN, ListQuery, RequestContext, route

RULE_MAKERS = ("admin", "leading_group")
# section -> (owning service, read method, change method)
SECTIONS = {
    "county": ("registry", "county_rulebook_section", "change_county_rules"),
    "registry": ("registry", "rulebook_section", "change_rules"),
    "assistance": ("assistance", "rulebook_section", "change_rules"),
    "projects": ("projects", "rulebook_section", "change_rules"),
    "credit": ("credit", "rulebook_section", "change_rules"),
    "supervision": ("supervision", "rulebook_section", "change_rules"),
    "assessment": ("assessment", "rulebook_section", "change_rules"),  # the scoring rulebook
}


READABLE = {"section": fields.String(validate=v.OneOf(list(SECTIONS)))}
CHANGEABLE = {"section": fields.String(validate=v.OneOf(list(SECTIONS)),
                                       metadata={"description": "`assessment` is the scoring rulebook (also "
                                                                "PUT /api/v1/rulebook with published_on)"})}


class RulebookQuery(ListQuery):
    as_of = fields.Date(metadata={"description": "the values in force on this date; default today, county time"})


class RulebookChange(Schema):
    section = fields.String(metadata={"description": "from the path"})
    effective_from = fields.Date(required=True, metadata={"description": "the first day the new values hold"})
    changes = fields.Dict(keys=fields.String(), required=True, validate=v.Length(min=1),
                          metadata={"description": "{key: new value}; keys as GET /api/v1/rulebook lists them"})
    reason = fields.String(load_default=None, allow_none=True, validate=v.Length(max=2000),
                           metadata={"description": "why (the county document that decided it)"})


def _section(name: str) -> tuple[str, str, str]:
    if name not in SECTIONS:
        raise NotFound(f"no rulebook section {name}", {"section": name, "known": sorted(SECTIONS)})
    return SECTIONS[name]


def county_today(ctx: RequestContext) -> tuple[Any, dict[str, Any]]:
    county = ctx.call("registry", "county_rules")
    clock = clock_from_config(ctx.config, county.get("timezone"))
    return clock, county


@route("GET", "/api/v1/rulebook", roles=ANY_SIGNED_IN, query=RulebookQuery, tag="rulebook")
def get_rulebook(ctx: RequestContext) -> Any:
    """The whole county rulebook: every section's values in force on `as_of` and its history."""
    clock, _ = county_today(ctx)
    as_of = ctx.query.get("as_of") or clock.today()
    sections: dict[str, Any] = {}
    for name, (service, read, _) in SECTIONS.items():
        try:
            sections[name] = ctx.call(service, read, as_of.isoformat())
        except ServiceUnavailable as exc:  # one service down must not hide the rest of the rulebook
            sections[name] = {"section": name, "unavailable": exc.message}
        except KeyError:  # a service this gateway has no proxy for
            sections[name] = {"section": name, "unavailable": f"the gateway does not reach the {service} service"}
    # `version` and `rules`: the assessment's rulebook as this route answered before the sections
    scoring = sections["assessment"]
    return {"as_of": as_of.isoformat(), "sections": sections,
            "version": scoring.get("version_in_force"), "rules": scoring.get("values")}


@route("GET", "/api/v1/rulebook/<section>", roles=ANY_SIGNED_IN, query=RulebookQuery, tag="rulebook",
       path_params=READABLE)
def get_rulebook_section(ctx: RequestContext) -> Any:
    """One section of the county rulebook: values in force on `as_of` and every version."""
    service, read, _ = _section(ctx.path_values["section"])
    as_of = ctx.query.get("as_of")
    try:
        return ctx.call(service, read, as_of.isoformat() if as_of else None)
    except KeyError:
        raise ServiceUnavailable(f"the gateway does not reach the {service} service", {"service": service}) from None


@route("PUT", "/api/v1/rulebook/<section>", roles=RULE_MAKERS, body=RulebookChange, tag="rulebook",
       path_params=CHANGEABLE)
def change_rulebook_section(ctx: RequestContext) -> Any:
    """A new version of a section, effective from a date: `{effective_from, changes, reason}`.
    Commands and scores dated before `effective_from` keep the earlier values."""
    service, _, change = _section(ctx.path_values["section"])
    try:
        return ctx.command(service, change, dict(ctx.raw_body))
    except KeyError:
        raise ServiceUnavailable(f"the gateway does not reach the {service} service", {"service": service}) from None


@route("GET", "/api/v1/today", roles=ANY_SIGNED_IN, tag="rulebook")
def county_clock(ctx: RequestContext) -> Any:
    """The county's date and time (rulebook `timezone`): what "today" means for business dates."""
    clock, county = county_today(ctx)
    now = clock.now()
    return {"today": now.date().isoformat(), "now": now.isoformat(timespec="seconds"),
            "timezone": str(clock.zone)}
