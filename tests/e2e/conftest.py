"""The whole platform in this process: every service and the gateway on the test databases and
vhost; tests talk to the gateway over real HTTP."""
import importlib
from contextlib import ExitStack

import pytest
import requests

from tests import support

ADMIN_PASSWORD = "e2e-admin-password"
AUDITOR_PASSWORD = "e2e-Auditor-password"
SERVICE_CLASSES = {
    "registry": ("services.registry.service", "RegistryService"),
    "assistance": ("services.assistance.service", "AssistanceService"),
    "projects": ("services.projects.service", "ProjectsService"),
    "credit": ("services.credit.service", "CreditService"),
    "assessment": ("services.assessment.service", "AssessmentService"),
    "supervision": ("services.supervision.service", "SupervisionService"),
}


def start_platform(stack, amqp_uri, overrides=None):
    overrides = overrides or {}
    for component, (module, cls_name) in SERVICE_CLASSES.items():
        service_cls = getattr(importlib.import_module(module), cls_name)
        url = support.fresh_database(component)
        config = support.service_config(component, amqp_uri, url, **overrides.get(component, {}))
        stack.enter_context(support.running(service_cls, config))
    from gateway.service import GatewayService

    url = support.fresh_database("gateway")
    config = support.service_config("gateway", amqp_uri, url, ADMIN_PASSWORD=ADMIN_PASSWORD,
                                    AUDITOR_PASSWORD=AUDITOR_PASSWORD, JWT_SECRET="e2e-signing-key",
                                    ENVIRONMENT="test")
    stack.enter_context(support.running(GatewayService, config))
    return f"http://{config['WEB_SERVER_ADDRESS']}"


@pytest.fixture(scope="package")
def e2e_amqp_uri(infra):
    return support.fresh_vhost("e2e")  # a platform of its own, as a fresh deployment has


@pytest.fixture(scope="package")
def gateway_url(e2e_amqp_uri):
    with ExitStack() as stack:
        base = start_platform(stack, e2e_amqp_uri)
        support.wait_until(lambda: requests.get(f"{base}/readyz", timeout=5).ok, 30, message="gateway ready")
        yield base


class Client:
    """A signed-in caller: `client.post(path, json)` → requests.Response."""

    def __init__(self, base, token=None):
        self.base, self.token = base, token

    def headers(self, extra=None):
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(extra or {})
        return headers

    def get(self, path, **params):
        return requests.get(self.base + path, params=params, headers=self.headers(), timeout=60)

    def post(self, path, body=None, key=None, raw=None):
        extra = {"Idempotency-Key": key} if key else {}
        if raw is not None:
            return requests.post(self.base + path, data=raw, headers=self.headers(
                {**extra, "Content-Type": "application/json"}), timeout=60)
        return requests.post(self.base + path, json=body, headers=self.headers(extra), timeout=60)

    def put(self, path, body):
        return requests.put(self.base + path, json=body, headers=self.headers(), timeout=60)


def sign_in(base, username, password):
    response = requests.post(f"{base}/api/v1/auth/token", json={"username": username, "password": password}, timeout=30)
    assert response.status_code == 200, response.text
    return Client(base, response.json()["access_token"])


@pytest.fixture(scope="package")
def admin(gateway_url):
    return sign_in(gateway_url, "admin", ADMIN_PASSWORD)


@pytest.fixture(scope="package")
def auditor(gateway_url):
    """The security officer's account: reads the audit trail and nothing else (三权分立)."""
    return sign_in(gateway_url, "auditor", AUDITOR_PASSWORD)


_users = {}


@pytest.fixture(scope="package")
def user_factory(gateway_url, admin):
    """`user_factory("township", township_id="t1")` → a signed-in Client with that role."""

    def make(role, **scope):
        key = (role, tuple(sorted(scope.items())))
        if key not in _users:
            username = f"{role}-{'-'.join(str(v) for v in scope.values()) or 'all'}"
            response = admin.post("/api/v1/users", {"username": username, "password": "password-123",
                                                    "role": role, "scope": scope})
            assert response.status_code == 201, response.text
            _users[key] = sign_in(gateway_url, username, "password-123")
        return _users[key]

    return make
