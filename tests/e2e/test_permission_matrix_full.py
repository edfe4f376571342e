"""The whole permission matrix: every route of the gateway × every role, reads included.

A role a route does not name is refused with 403 before anything else happens (no validation,
no call to a service); a role it names is never refused for its role (a scope check may still
say no, with its own message). The smaller matrix in test_gateway.py checks scopes with real
data; this one makes sure no route was forgotten. Signing out and changing one's password act on
the caller's own session: for the roles they name they are left to tests/e2e/test_gateway.py
(the shared clients' tokens must survive this test).
"""
import re

import requests

from gateway.app import ROUTES
from gateway.auth import ROLES

SCOPES = {"township": {"township_id": "matrix-t"}, "department": {"department": "transport"},
          "unit": {"unit_id": "matrix-u"}, "cadre": {"cadre_id": "matrix-c"}}


def clients(user_factory, admin, auditor):
    signed_in = {"admin": admin, "auditor": auditor}
    for role in ROLES:
        if role not in signed_in:
            signed_in[role] = user_factory(role, **SCOPES.get(role, {}))
    return signed_in


def test_every_route_refuses_every_role_it_does_not_name_and_no_other(gateway_url, user_factory, admin, auditor):
    by_role = clients(user_factory, admin, auditor)
    checked, wrongly = 0, []
    for route in ROUTES:
        if route.public:
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: f"matrix-{m.group(1)}", route.path)
        for role, client in by_role.items():
            if route.path.startswith("/api/v1/auth/") and role in route.roles:
                continue
            response = requests.request(route.method, gateway_url + path, json={} if route.method != "GET" else None,
                                        headers=client.headers(), timeout=60)
            refused_for_role = (response.status_code == 403
                                and "may not call" in response.json()["error"]["message"])
            if refused_for_role != (role not in route.roles):
                wrongly.append((role, route.method, route.path, response.status_code, response.text[:120]))
            assert response.status_code != 500, (role, route.method, path, response.text)
            checked += 1
    print(f"\npermission matrix: {checked} route × role pairs")
    assert wrongly == []
