"""The OpenAPI document, generated from the same route table and marshmallow schemas that
validate requests, so it cannot drift from what the gateway serves.

apispec reads marshmallow's own validators (Length, Range, OneOf, Regexp). What it cannot see
is taught here, once, from the definitions that enforce it: the text and number limits every
value obeys (`refuse_unsafe_values`), decimals written as text (`text_pattern` of money, rates,
quantities), dictionaries whose keys are a fixed list, schema rules (`exactly_one_of`, and a
rule that carries its own statement with `documented`), each route's path parameters
(`Route.path_schema`) and every status the gateway answers.
"""
import copy
import re
from collections.abc import Mapping
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.openapi import OpenAPIConverter
from marshmallow import Schema, fields, validate as v

from services.common.errors import (Conflict, Forbidden, NotFound, RuleRefused, ServiceUnavailable,
                                    ValidationFailed)
from services.common.validation import MAX_MAGNITUDE, SAFE_TEXT_PATTERN, Distinct
from services.common.web import ERROR_CODES as WEB_ERROR_CODES, MEDIA_TYPES

from .app import ROUTES, RequestContext, Route, route
from .auth import Unauthorized

# What any route may answer beside its success, by the error class that answers it.
EVERY_ROUTE_ERRORS = (ValidationFailed, Forbidden, NotFound, Conflict, RuleRefused, ServiceUnavailable)
BODY_TOO_LARGE = 413  # services.common.web refuses a body over MAX_REQUEST_BYTES before reading it
NUMBER_BOUND = int(MAX_MAGNITUDE)  # refuse_unsafe_values: every number is smaller than this


def openapi_path(path: str) -> Any:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", path)


def _limits_every_value_obeys(self: Any, field: fields.Field, ret: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """An apispec attribute function (runs after apispec's own): what the gateway refuses of any
    value whatever its schema says, and the shapes only a field's code knows."""
    text_pattern = getattr(field, "text_pattern", None)
    if text_pattern:  # a decimal the API writes as text ("20000.00"): the text's shape is the rule
        for key in ("format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            ret.pop(key, None)
        ret.update(type="string", pattern=text_pattern)
    elif isinstance(field, fields.Number):
        _bound_number(field, ret)
    elif isinstance(field, fields.String) and "enum" not in ret and "pattern" not in ret:
        ret["pattern"] = SAFE_TEXT_PATTERN  # a field's own pattern already leaves control characters out
    if isinstance(field, fields.Dict):
        _dict_limits(self, field, ret)
    if any(isinstance(validator, Distinct) for validator in field.validators):
        ret["uniqueItems"] = True
    statement = field.openapi_for(self.config) if hasattr(field, "openapi_for") else getattr(field, "openapi", None)
    if statement:  # a field that says itself what apispec cannot (a date or a date-time, a policy, a step)
        for key in ("type", "format", "pattern") if "anyOf" in statement else ():
            ret.pop(key, None)
        ret.update(statement)
    return {}


def _bound_number(field: fields.Number, ret: dict[str, Any]) -> None:
    """The field's Range validators (apispec copies their bounds as the field writes them, "0" for
    a decimal as text, and drops their exclusiveness) within the bound every number obeys."""
    whole = isinstance(field, fields.Integer)
    low = (-(NUMBER_BOUND - 1), True) if whole else (-NUMBER_BOUND, False)  # (bound, inclusive)
    high = (NUMBER_BOUND - 1, True) if whole else (NUMBER_BOUND, False)
    for validator in field.validators:
        if isinstance(validator, v.Range):
            if validator.min is not None and validator.min >= low[0]:
                low = (validator.min, validator.min_inclusive)
            if validator.max is not None and validator.max <= high[0]:
                high = (validator.max, validator.max_inclusive)
    for key, (bound, inclusive) in (("minimum", low), ("maximum", high)):
        ret[key] = int(bound) if bound == int(bound) else float(bound)
        exclusive = "exclusiveMinimum" if key == "minimum" else "exclusiveMaximum"
        if inclusive:
            ret.pop(exclusive, None)
        else:
            ret[exclusive] = True


def _dict_limits(converter: Any, field: fields.Dict, ret: dict[str, Any]) -> None:
    for validator in field.validators:  # Length of a dict counts its keys
        if isinstance(validator, v.Length):
            ret.pop("minLength", None)
            ret.pop("maxLength", None)
            if validator.min is not None:
                ret["minProperties"] = validator.min
            if validator.max is not None:
                ret["maxProperties"] = validator.max
    keys = field.key_field
    choices = [c for validator in (keys.validators if keys else []) if isinstance(validator, v.OneOf)
               for c in validator.choices]
    if choices:  # a fixed list of keys: each is a property, nothing else is
        value = ret.pop("additionalProperties", {})
        ret["properties"] = {choice: value for choice in choices}
        ret["additionalProperties"] = False


class Converter(OpenAPIConverter):
    """apispec's converter, plus the schema rules marshmallow runs as @validates_schema."""

    config: Mapping[str, Any] = {}  # the deployment's, for fields whose rule it sets (`openapi_for`)

    def schema2jsonschema(self, schema: Any) -> Any:
        jsonschema = super().schema2jsonschema(schema)
        instance = schema() if isinstance(schema, type) else schema
        rules = []
        for name in dir(type(instance)):
            method = getattr(type(instance), name, None)
            names = getattr(method, "exactly_one_of", None)
            if names:
                rules.append(self._exactly_one_of(instance, names))
            names = getattr(method, "all_or_none_of", None)
            if names:
                rules.append(self._all_or_none_of(instance, names))
            statement = getattr(method, "openapi", None)
            if statement:
                rules.append(copy.deepcopy(statement))  # closed below: the method's own stays as written
        if jsonschema.get("additionalProperties") is False:  # a branch names every property, or a
            for rule in rules:                                 # generator may take it as open
                for branch in rule.get("oneOf", []) + rule.get("anyOf", []):
                    branch["properties"] = {**{name: {} for name in jsonschema["properties"]},
                                            **branch.get("properties", {})}
                    branch["additionalProperties"] = False
        if len(rules) == 1:
            jsonschema.update(rules[0])
        elif rules:
            jsonschema["allOf"] = rules
        return jsonschema

    def _given(self, schema: Schema, name: str) -> dict[str, Any]:
        """A schema that holds when the field is present and not null."""
        field = schema.fields[name]
        prop = self.field2property(field)
        prop.pop("nullable", None)
        prop.pop("default", None)
        key = field.data_key or name
        return {"required": [key], "properties": {key: prop}}

    def _exactly_one_of(self, schema: Schema, names: tuple[str, ...]) -> dict[str, Any]:
        return {"oneOf": [{**self._given(schema, name),
                           "not": {"anyOf": [self._given(schema, other) for other in names if other != name]}}
                          for name in names]}

    def _all_or_none_of(self, schema: Schema, names: tuple[str, ...]) -> dict[str, Any]:
        return {"anyOf": [{"allOf": [self._given(schema, name) for name in names]},
                          {"not": {"anyOf": [self._given(schema, name) for name in names]}}]}


class Plugin(MarshmallowPlugin):
    Converter = Converter


def _error(cls: Any) -> dict[str, Any]:
    return {"description": cls.code, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _success(r: Route) -> dict[str, Any]:
    """JSON, or for a download the media type of each `?format=` it offers."""
    formats = ["json"]
    if r.response == "file" and r.query is not None and "format" in r.query().fields:
        formats = [c for validator in r.query().fields["format"].validators if isinstance(validator, v.OneOf)
                   for c in validator.choices]
    return {"description": "success", "content": {MEDIA_TYPES[f]: {} for f in formats}}


def _responses(r: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {str(r.status): _success(r)}
    errors = list(EVERY_ROUTE_ERRORS) + list(r.errors)
    if not r.public:
        errors.append(Unauthorized)
    for cls in sorted(errors, key=lambda cls: cls.http_status):
        responses[str(cls.http_status)] = _error(cls)
    if r.method in ("POST", "PUT", "PATCH"):
        responses[str(BODY_TOO_LARGE)] = {"description": WEB_ERROR_CODES[BODY_TOO_LARGE], "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    if ServiceUnavailable in errors:
        responses[str(ServiceUnavailable.http_status)]["headers"] = {
            "Retry-After": {"description": "seconds", "schema": {"type": "integer"}}}
    return responses


def build_spec(config: Mapping[str, Any] | None = None) -> Any:
    """The document for a deployment: `config` holds what its rules depend on (the password policy)."""
    plugin = Plugin()
    spec = APISpec(title="Fupin gateway", version="1.0.0", openapi_version="3.0.3", plugins=[plugin])
    converter = plugin.converter
    assert isinstance(converter, Converter)  # made by APISpec's init_spec
    converter.config = config or {}
    converter.add_attribute_function(_limits_every_value_obeys)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"})
    spec.components.schema("Error", {
        "type": "object",
        "properties": {"error": {"type": "object", "properties": {
            "code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}}}},
    })
    by_path: dict[str, list[Route]] = {}
    for r in ROUTES:
        by_path.setdefault(openapi_path(r.path), []).append(r)
    for path, routes in sorted(by_path.items()):
        operations = {}
        for r in routes:
            parameters: list[dict[str, Any]] = [
                {"in": "path", "name": name, "required": True, "schema": converter.field2property(field)}
                for name, field in r.path_schema().fields.items()]
            if r.query is not None:
                parameters.append({"in": "query", "schema": r.query})
            operation = {"summary": r.summary, "tags": [r.tag] if r.tag else [], "parameters": parameters,
                         "responses": _responses(r), "operationId": f"{r.method.lower()}_{r.handler.__name__}"}
            schema = r.body
            if schema is not None:
                # path ids travel in the path, not the body
                instance = schema(exclude=[f for f in r.path_schema().fields if f in schema().fields])
                operation["requestBody"] = {"required": True,
                                            "content": {"application/json": {"schema": instance}}}
            if not r.public:
                operation["security"] = [{"bearer": []}]
                operation["description"] = "Roles: " + ", ".join(sorted(r.roles))
            operations[r.method.lower()] = operation
        spec.path(path=path, operations=operations)
    return spec.to_dict()


@route("GET", "/api/v1/openapi.json", roles=(), public=True, tag="operations")
def openapi_document(ctx: RequestContext) -> Any:
    """This document."""
    return build_spec(ctx.config)
