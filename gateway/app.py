"""The gateway's own small web framework: a route table, one request context, one error format.

Each area module in gateway/routes declares its routes with `@route(...)`; the nameko service
hands every /api/v1 request to `dispatch`. Errors always come back as
`{"error": {"code", "message", "details"}}` with the status API.md fixes; nothing a caller
sends can produce a 500.
"""
from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import eventlet
from marshmallow import Schema, fields, validate as v
from amqp.exceptions import AMQPError
from kombu.exceptions import OperationalError as KombuOperationalError
from nameko.exceptions import RemoteError, UnknownService
from sqlalchemy.exc import InterfaceError as DBInterfaceError, OperationalError as DBOperationalError
from werkzeug.exceptions import MethodNotAllowed, NotFound as WerkzeugNotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Response
from werkzeug.wrappers import Request

from services.common.errors import Forbidden, FupinError, ServiceUnavailable, ValidationFailed
from services.common.metrics import HTTP_LATENCY, HTTP_REQUESTS
from services.common.pagination import CURSOR_PATTERN, MAX_LIMIT
from services.common.rpc import require_consumer
from services.common.validation import Pattern, identifier, refuse_unsafe_values, validate
from services.common.web import max_request_bytes, method_not_allowed, too_large

from .auth import Principal, Unauthorized, ensure_token_live_kept, principal_from_header
from .contracts import command_schema

log = logging.getLogger(__name__)


Handler = Callable[..., Any]  # (RequestContext) -> a JSON-able result or a Response


@dataclass(eq=False)
class Route:
    method: str
    path: str  # werkzeug syntax: /api/v1/households/<household_id>
    handler: Handler
    roles: frozenset  # who may call it at all; scope checks happen in the handler
    body: type | None = None  # marshmallow Schema class for the JSON body
    query: type | None = None  # marshmallow Schema class for the query string
    status: int = 200
    tag: str = ""
    summary: str = ""
    public: bool = False
    response: str = "json"  # or "file" for downloads
    body_has_path_ids: bool = False  # a service's command schema: the body is checked with the path ids
    path_params: dict[str, Any] = field(default_factory=dict)  # name -> marshmallow field; default an id
    errors: tuple = ()  # FupinError classes it answers beside every route's (for the OpenAPI document)

    @property
    def endpoint(self) -> Any:
        return f"{self.method} {self.path}"

    @cached_property
    def path_schema(self) -> type[Schema]:
        """What each path parameter must look like: the route's own field for it, else the body
        schema's field of that name (a command checks its path ids too), else an id. Checked by
        `dispatch` and stated by the OpenAPI document."""
        declared = self.body().fields if self.body_has_path_ids and self.body is not None else {}
        return Schema.from_dict({name: self.path_params.get(name) or declared.get(name) or identifier()
                                 for name in path_fields(self)}, name=f"Path_{self.handler.__name__}")


    # One instance of each schema per route, made on first use: a marshmallow schema keeps no state
    # between loads, and making one per request (three per request) was 4 % of the gateway's CPU.
    @cached_property
    def path_validator(self) -> Schema:
        return self.path_schema()

    @cached_property
    def query_validator(self) -> Schema | None:
        return self.query() if self.query is not None else None

    @cached_property
    def body_validator(self) -> Schema | None:
        return self.body() if self.body is not None else None


ROUTES: list[Route] = []
ANY_SIGNED_IN = frozenset({"admin", "leading_group", "township", "department", "unit", "cadre",
                           "credit_union", "inspector"})
# The auditor reads the audit trail only (三权分立); every role signs out and changes its password.
EVERY_ROLE = ANY_SIGNED_IN | {"auditor"}


def route(method: str, path: str, *, roles: Iterable[str], body: type | tuple[str, str] | None = None,
          query: type | None = None, status: int = 200, tag: str = "", public: bool = False,
          response: str = "json", path_params: dict[str, Any] | None = None,
          errors: tuple = ()) -> Callable[[Handler], Handler]:
    """Declare a route. `body` is a Schema class, or `(service, command)` for that service's
    command schema (gateway.contracts), which checks the body merged with the path ids.
    `path_params` names the field of a path parameter that is not an id (a month, a section);
    `errors` the error classes it may answer beside those of every route."""
    schema = command_schema(*body) if isinstance(body, tuple) else body

    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(method, path, handler, frozenset(roles), schema, query, status, tag,
                            (handler.__doc__ or "").strip().split("\n")[0], public, response,
                            body_has_path_ids=isinstance(body, tuple), path_params=dict(path_params or {}),
                            errors=tuple(errors)))
        return handler
    return register


def path_fields(route_: Any) -> Any:
    return re.findall(r"<(?:[a-z]+:)?([a-z_]+)>", route_.path)


def command(method: str, path: str, service: str, rpc_method: str, *, roles: Iterable[str],
            authorize: Callable[[RequestContext, dict[str, Any]], None] | None = None, status: int = 201,
            tag: str | None = None) -> Handler:
    """A route that forwards a command: body + path ids → `service.rpc_method(data, context)`.

    `authorize(ctx, data)` checks the caller's scope against the data (raising Forbidden)."""
    def handler(ctx: RequestContext) -> Any:
        data = dict(ctx.raw_body or {})
        data.update(ctx.path_values)
        if authorize is not None:
            authorize(ctx, data)
        return ctx.command(service, rpc_method, data)

    handler.__name__ = rpc_method
    handler.__doc__ = rpc_method.replace("_", " ").capitalize() + "."
    route(method, path, roles=roles, body=(service, rpc_method), status=status, tag=tag or service)(handler)
    return handler


class ListQuery(Schema):
    """Every list takes `limit` (default 50, max 500) and `cursor`."""

    limit = fields.Integer(load_default=50, validate=v.Range(1, MAX_LIMIT),
                           metadata={"description": f"1..{MAX_LIMIT}"})
    cursor = fields.String(load_default=None, validate=Pattern(CURSOR_PATTERN, error="not a cursor this API gave out"),
                           metadata={"description": "a next_cursor as a list answered it (opaque)"})


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def json_response(status: int, body: Any, headers: Any = None) -> Any:
    return Response(json.dumps(body, ensure_ascii=False, default=_json_default), status=status,
                    headers=headers, mimetype="application/json")


def error_response(error: Any) -> Any:
    headers = None
    if isinstance(error, ServiceUnavailable):  # every 503 says when to come back
        headers = {"Retry-After": str(int(error.details.get("retry_after") or 1))}
    return json_response(error.http_status, {"error": error.as_dict()}, headers)


@dataclass
class RequestContext:
    principal: Principal | None  # None on public routes only
    path_values: dict[str, str]
    query: dict[str, Any]
    body: Any  # the validated body (a dict) of a POST, PUT or PATCH; None otherwise
    raw_body: Any  # the body as sent (after the JSON and unsafe-value checks)
    headers: dict[str, str]
    rpc: Callable[[str], Any]  # service name -> nameko service proxy
    config: Mapping[str, Any]
    db: Any  # gateway.service's Database: .new_session()
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    audit_resource: dict[str, Any] | None = None
    audit_reads: list[Any] = field(default_factory=list)  # reads worth an audit row (unmasked personal data)
    client_address: str = "unknown"

    # --- authorisation helpers -------------------------------------------------------------
    @property
    def user(self) -> Principal:
        """The signed-in caller (every route but the public ones has one: dispatch checked it)."""
        if self.principal is None:
            raise Unauthorized("sign in first")
        return self.principal

    @property
    def role(self) -> Any:
        return self.principal.role if self.principal else None

    def scope(self, key: str) -> Any:
        return (self.principal.scope or {}).get(key) if self.principal else None

    def require(self, allowed: Any, message: str = "your role may not do this here") -> None:
        if not allowed:
            raise Forbidden(message, {"role": self.role, "scope": self.principal.scope if self.principal else {}})

    # --- calling services ---------------------------------------------------------------------
    def idempotency_key(self) -> str:
        """The client's Idempotency-Key (per user: two departments that both send "1" must not
        collide), or one of the gateway's own for this call: the RPC message then carries a key,
        so a message nameko redelivers after a crash between commit and ack replays the first
        result instead of running the command twice."""
        key = self.headers.get("idempotency-key")
        if key and self.principal is not None:
            return f"{self.user.user_id}:{key}"
        return f"gateway:{uuid.uuid4()}"

    def service_context(self) -> Any:
        """What every command carries into event metadata: who, which request, which key."""
        return {"actor": self.principal.as_actor() if self.principal else None,
                "correlation_id": self.correlation_id,
                "idempotency_key": self.idempotency_key()}

    def call(self, service: str, method: str, *args: Any, **kwargs: Any) -> Any:
        timeout = float(self.config.get("RPC_TIMEOUT_SECONDS") or 60)
        require_consumer(self.config["AMQP_URI"], service)  # nobody there: 503 now, not after `timeout`
        proxy = getattr(self.rpc(service), method)
        try:
            with eventlet.Timeout(timeout):
                return proxy.call_async(*args, **kwargs).result()
        except eventlet.Timeout:
            raise ServiceUnavailable(f"the {service} service did not answer within {timeout:.0f}s; try again",
                                     {"service": service}) from None
        except UnknownService:
            raise ServiceUnavailable(f"the {service} service is not running", {"service": service}) from None
        except (OSError, KombuOperationalError, AMQPError) as error:  # the broker restarts, or is unreachable
            log.warning("could not reach RabbitMQ to call %s.%s: %s", service, method, error)
            raise ServiceUnavailable("the message broker is unreachable just now; try again",
                                     {"service": service, "retry_after": 2}) from None

    def command(self, service: str, method: str, data: dict[str, Any]) -> Any:
        return self.call(service, method, data, self.service_context())


def build_map() -> Any:
    return Map([Rule(r.path, methods=[r.method], endpoint=r) for r in ROUTES], strict_slashes=False)


# A service's database that refuses connections (too many clients, a failover) or drops one
# mid-query is a passing condition, not a bug: 503 with Retry-After, like a busy service.
UNAVAILABLE_ERRORS = frozenset({"OperationalError", "InterfaceError", "DisconnectionError", "TimeoutError"})


class _PayloadTooLarge(Exception):
    """A body without a declared length that turned out longer than the limit."""


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _parse_body(request: Request, limit: int) -> Any:
    # A chunked body has no Content-Length for the web server to refuse (and werkzeug would see
    # it as empty): read it from the server's input, one byte past the limit and no more.
    if request.content_length is None and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        raw = request.environ["wsgi.input"].read(limit + 1)
    else:
        raw = request.get_data()
    if len(raw) > limit:
        raise _PayloadTooLarge()
    if not raw:
        return {}
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("the body is not valid JSON", {"_body": ["invalid JSON"]}) from None
    except RecursionError:
        raise ValidationFailed("the body is nested too deeply", {"_body": ["nested too deeply"]}) from None
    refuse_unsafe_values(body)
    return body


# Headers that end up stored (audit, idempotency keys) get the same checks as any text.
STORED_HEADERS = ("Idempotency-Key", "X-Correlation-Id")
MAX_HEADER_LENGTH = 200


def _check_stored_headers(request: Request) -> None:
    values = {name: value for name in STORED_HEADERS if (value := request.headers.get(name)) is not None}
    refuse_unsafe_values(values, name="headers")
    for name, value in values.items():
        if len(value) > MAX_HEADER_LENGTH:
            raise ValidationFailed(f"the {name} header is too long", {name: [f"at most {MAX_HEADER_LENGTH} characters"]})


def client_address(request: Request, config: Mapping[str, Any]) -> Any:
    """The caller's address for login throttling: the header a trusted proxy sets
    (CLIENT_ADDRESS_HEADER, e.g. X-Real-IP behind the county's ingress), else the peer."""
    header = config.get("CLIENT_ADDRESS_HEADER")
    value = request.headers.get(header) if header else None
    return (value or request.remote_addr or "unknown").split(",")[0].strip()[:100]


def dispatch(url_map: Any, request: Request, *, rpc: Any, config: Mapping[str, Any], db: Any, audit: Any) -> Any:
    """Find the route, authenticate, authorise by role, validate, run, map errors, record."""
    started = time.perf_counter()
    route_label, status = "unmatched", 500
    principal = None
    try:
        adapter = url_map.bind_to_environ(request.environ)
        try:
            matched, path_values = adapter.match()
        except WerkzeugNotFound:
            raise _NotFoundRoute("no such endpoint", {"path": request.path}) from None
        except MethodNotAllowed as exc:
            status = 405
            # /projects/import is also /projects/<project_id>: the literal route is the resource meant
            literal = {method for rule in url_map.iter_rules() if rule.rule.rstrip("/") == request.path.rstrip("/")
                       for method in (rule.methods or ())}
            return method_not_allowed(request.method, sorted(literal) or exc.valid_methods or [])
        route_label = matched.path
        refuse_unsafe_values(path_values, name="path")
        refuse_unsafe_values(request.args.to_dict(flat=False), name="query")
        _check_stored_headers(request)
        if not matched.public:
            principal = principal_from_header(request.headers.get("Authorization"), config)
            ensure_token_live_kept(db.engine, principal, config)
            if principal.role not in matched.roles:
                raise Forbidden(f"the {principal.role} role may not call {matched.method} {matched.path}",
                                {"role": principal.role})
        path_values = validate(matched.path_validator, path_values)  # the shapes the document states
        query = (validate(matched.query_validator, dict(request.args.items())) if matched.query_validator is not None
                 else dict(request.args.items()))
        raw_body = body = None
        if matched.method in ("POST", "PUT", "PATCH"):
            raw_body = _parse_body(request, max_request_bytes(config))
            schema = matched.body_validator
            if schema is None:
                body = raw_body
            elif matched.body_has_path_ids:
                # service command schemas cover the path ids too: check them together
                if not isinstance(raw_body, dict):
                    raise ValidationFailed("the request body must be a JSON object", {"_body": ["not an object"]})
                body = validate(schema, {**raw_body, **path_values})
            else:
                body = validate(schema, raw_body)
        ctx = RequestContext(
            principal, path_values, query, body, raw_body,
            {k.lower(): v for k, v in request.headers.items()}, rpc, config, db,
            correlation_id=request.headers.get("X-Correlation-Id") or str(uuid.uuid4()),
            client_address=client_address(request, config),
        )
        result = matched.handler(ctx)
        if isinstance(result, Response):
            status = result.status_code
            response = result
        else:
            status = matched.status
            response = json_response(status, result)
        if (principal is not None and matched.method != "GET") or ctx.audit_reads:
            audit(ctx, request, status)
        return response
    except FupinError as error:
        status = error.http_status
        response = error_response(error)
        if "retry_after" in error.details:
            response.headers["Retry-After"] = str(error.details["retry_after"])
        return response
    except _PayloadTooLarge:
        status = 413
        return too_large(max_request_bytes(config))
    except RemoteError as error:
        if error.exc_type in UNAVAILABLE_ERRORS:  # its database refused or dropped the connection
            log.warning("a service could not reach its database on %s %s: %s", request.method, request.path, error)
            status = 503
            return error_response(ServiceUnavailable(
                "a service cannot reach its database just now; try again",
                {"service_error": error.exc_type, "retry_after": 2}))
        log.error("a service failed on %s %s: %s", request.method, request.path, error)
        status = 500
        return json_response(500, {"error": {"code": "internal_error",
                                             "message": "a service failed; the operators have the details",
                                             "details": {"service_error": error.exc_type}}})
    except (DBOperationalError, DBInterfaceError) as error:  # the gateway's own database, gone for a moment
        log.warning("the gateway could not reach its database on %s %s: %s", request.method, request.path,
                    str(error).splitlines()[0])
        status = 503
        return error_response(ServiceUnavailable("the gateway cannot reach its database just now; try again",
                                                 {"retry_after": 2}))
    except Exception:  # noqa: BLE001 - last line: log it, answer in our format
        log.exception("gateway failure on %s %s", request.method, request.path)
        status = 500
        return json_response(500, {"error": {"code": "internal_error", "message": "unexpected failure",
                                             "details": {}}})
    finally:
        HTTP_REQUESTS.labels(route_label, request.method, str(status)).inc()
        HTTP_LATENCY.labels(route_label, request.method).observe(time.perf_counter() - started)


class _NotFoundRoute(FupinError):
    code = "not_found"
    http_status = 404


__all__ = ["ANY_SIGNED_IN", "ListQuery", "RequestContext", "Route", "ROUTES", "route", "dispatch",
           "build_map", "json_response", "Unauthorized"]
