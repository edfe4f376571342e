"""nameko's web server with our error format on its own answers, and a cap on request bodies.

nameko answers an unknown path (also one with `%0A` in it) or a method the route lacks itself,
with werkzeug's HTML pages and, for a body of any size, reads it whole. Every process serves
its HTTP through `http` from here instead: 404 and 405 come back as `{"error": {...}}` (405
with `Allow`), and a body declared larger than MAX_REQUEST_BYTES is refused with 413 before
anyone reads it.
"""
import json
from collections.abc import Mapping
from typing import Any

from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Request, Response

DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024
# The media type of each download format (`?format=`): what a report is served as, and what the
# OpenAPI document says a download route answers.
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}

ERROR_CODES = {400: "validation_error", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


def max_request_bytes(config: Mapping[str, Any]) -> Any:
    return int(config.get("MAX_REQUEST_BYTES") or DEFAULT_MAX_REQUEST_BYTES)


def error_body(status: int, message: str, details: Any = None, headers: Any = None) -> Any:
    body = {"error": {"code": ERROR_CODES.get(status, "error"), "message": message, "details": details or {}}}
    return Response(json.dumps(body, ensure_ascii=False), status=status, headers=headers,
                    mimetype="application/json")


def too_large(limit: int) -> Any:
    return error_body(413, f"the request body is larger than {limit} bytes", {"max_bytes": limit})


def method_not_allowed(method: str, allowed: Any) -> Any:
    allowed = sorted(allowed)
    return error_body(405, f"{method} is not allowed here", {"allowed": allowed},
                      headers={"Allow": ", ".join(allowed)})


class JsonErrorsWsgiApp(WsgiApp):
    def __call__(self, environ: Any, start_response: Any) -> Any:
        limit = max_request_bytes(self.server.container.config)
        request = Request(environ, shallow=True)
        if request.content_length is not None and request.content_length > limit:
            response = too_large(limit)
            response.headers["Connection"] = "close"  # the body is left unread
            return response(environ, start_response)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
            request.path_values = values  # type: ignore[attr-defined]  # read by the entrypoints
            response = provider.handle_request(request)
        except RequestRedirect as exc:  # `/ui` -> `/ui/`: the redirect is an answer, not an error
            response = exc.get_response(environ)
        except MethodNotAllowed as exc:
            response = method_not_allowed(request.method, exc.valid_methods or [])
        except HTTPException as exc:
            status = exc.code or 500
            message = "no such endpoint" if status == 404 else (exc.description or exc.name)
            response = error_body(status, message, {"path": request.path} if status == 404 else {})
        return response(environ, start_response)


class JsonErrorsWebServer(WebServer):
    def get_wsgi_app(self) -> Any:
        return JsonErrorsWsgiApp(self)


class JsonErrorsHttpHandler(HttpRequestHandler):
    server = JsonErrorsWebServer()


http = JsonErrorsHttpHandler.decorator
