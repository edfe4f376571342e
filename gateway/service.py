"""The gateway: the only door for people and department systems, over nameko's web server."""
import logging
from typing import Any

from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from werkzeug.wrappers import Request

from services.common.chassis import HealthEndpoints
from services.common.db import Database
from services.common.rpc import TransientRpcProxy
from services.common.web import http

from . import openapi, routes, web  # noqa: F401 - importing registers the routes
from .app import RequestContext, build_map, dispatch
from .audit import AuditTrail, audit_row
from .auth import ensure_first_account, signing_key


log = logging.getLogger(__name__)
SERVICES = ("registry", "assistance", "projects", "credit", "assessment", "supervision")


class FirstAdmin(DependencyProvider):
    """At start: refuse to run without a signing key in production, or outside development with the
    first admin's password the published default or against the policy; create the first admin
    and the first auditor (三权分立: FUPIN_AUDITOR_PASSWORD, set by the security officer)."""

    def start(self) -> None:
        signing_key(self.container.config)
        db = next(ext for ext in self.container.dependencies if isinstance(ext, Database))
        with db.engine.begin() as conn:
            from sqlalchemy.orm import Session

            with Session(bind=conn) as session:
                config = self.container.config
                if ensure_first_account(session, "admin", "admin", config.get("ADMIN_PASSWORD"), config):
                    log.info("created the first admin user 'admin'")
                if ensure_first_account(session, "auditor", "auditor", config.get("AUDITOR_PASSWORD"), config):
                    log.info("created the first auditor user 'auditor'")
                session.flush()


class GatewayService(HealthEndpoints):
    name = "gateway"

    config = Config()
    db = Database()
    first_admin = FirstAdmin()
    audit_trail = AuditTrail()
    # requests transient and unconfirmed (services.common.rpc); `RequestContext.call` asks
    # `require_consumer` first, which stands in for nameko's unknown-service check
    registry = TransientRpcProxy("registry")
    assistance = TransientRpcProxy("assistance")
    projects = TransientRpcProxy("projects")
    credit = TransientRpcProxy("credit")
    assessment = TransientRpcProxy("assessment")
    supervision = TransientRpcProxy("supervision")

    url_map = build_map()

    def _rpc(self, service: str) -> Any:
        if service not in SERVICES:
            raise KeyError(service)
        return getattr(self, service)

    def _audit(self, ctx: RequestContext, request: Request, status: int) -> None:
        rows = []
        if ctx.principal is not None and request.method != "GET":
            rows.append(audit_row(ctx, request, status))
        for resource in ctx.audit_reads:  # e.g. who saw whose unmasked ID numbers
            rows.append({**audit_row(ctx, request, status), "resource": resource})
        self.audit_trail.record(rows)  # committed before the response leaves

    def _dispatch(self, request: Request) -> Any:
        return dispatch(self.url_map, request, rpc=self._rpc, config=self.config, db=self.db, audit=self._audit)

    @http("GET,POST,PUT,PATCH,DELETE,OPTIONS", "/api/v1/<path:path>")
    def api(self, request: Request, path: str) -> Any:
        return self._dispatch(request)

    # The leading group's pages (gateway/web): static files; they call the API above with a token.
    @http("GET", "/ui/")
    def ui_index(self, request: Request) -> Any:
        return web.serve()

    @http("GET", "/ui/<path:path>")
    def ui_file(self, request: Request, path: str) -> Any:
        return web.serve(path)
