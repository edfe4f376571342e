"""The gateway keeps a project's department (set when it is planned, never changed), per platform."""
from types import SimpleNamespace

from gateway.scopes import department_of_project


def context(amqp_uri, departments, calls):
    def call(service, method, kind, key):
        calls.append((service, method, kind, key))
        return {"project_id": key, "department": departments[key]}
    return SimpleNamespace(config={"AMQP_URI": amqp_uri}, call=call)


def test_a_projects_department_is_looked_up_once_per_platform():
    calls = []
    county = context("amqp://county-a", {"P-1": "transport"}, calls)
    assert department_of_project(county, "P-1") == "transport"
    assert department_of_project(county, "P-1") == "transport"
    assert len(calls) == 1
    # another platform (broker vhost) with a project of the same id: its own answer, not the kept one
    other = context("amqp://county-b", {"P-1": "water"}, calls)
    assert department_of_project(other, "P-1") == "water"
    assert len(calls) == 2
