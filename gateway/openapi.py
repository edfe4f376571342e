"""The OpenAPI document, generated from the same route table and marshmallow schemas that
validate requests, so it cannot drift from what the gateway serves."""
import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from .app import ROUTES, RequestContext, Route, path_fields, route


ERROR_CODES = {"400": "validation_error", "401": "unauthorized", "403": "forbidden", "404": "not_found",
               "409": "conflict", "422": "rule_refused"}


def openapi_path(path: str) -> Any:
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", path)


def build_spec() -> Any:
    spec = APISpec(title="Fupin gateway", version="1.0.0", openapi_version="3.0.3",
                   plugins=[MarshmallowPlugin()])
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
            parameters = [{"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
                          for name in re.findall(r"{([a-z_]+)}", path)]
            if r.query is not None:
                parameters.append({"in": "query", "schema": r.query})
            responses: dict[str, Any] = {str(r.status): {"description": "success"}}
            for status, code in ERROR_CODES.items():
                if status == "401" and r.public:
                    continue
                responses[status] = {"description": code,
                                     "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            operation = {"summary": r.summary, "tags": [r.tag] if r.tag else [], "parameters": parameters,
                         "responses": responses, "operationId": f"{r.method.lower()}_{r.handler.__name__}"}
            schema = r.body
            if schema is not None:
                # path ids travel in the path, not the body
                instance = schema(exclude=[f for f in path_fields(r) if f in schema().fields])
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
    return build_spec()
