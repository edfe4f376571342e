"""A service puts its rulebook sections' defaults (version 0) on record as events, so a consumer
reads every value of a section from the owner's events: once at the first start, again only when
a release changed a default."""
from services.common import rulebook
from services.registry.domain import CountyRules, Rules
from services.registry.service import RegistryService
from tests import support


def declarations(cluster):
    return [(e["stream_id"], e["payload"]["defaults"]) for e in cluster.registry.events_since(0, 5000)
            if e["type"] == rulebook.DEFAULTS_DECLARED]


def test_the_defaults_go_on_record_once_and_again_when_a_release_changes_one(infra, amqp_uri, monkeypatch):
    database = support.fresh_database("registry", "registry_defaults")
    config = support.service_config("registry", amqp_uri, database)
    with support.running(RegistryService, config), support.rpc_client(amqp_uri) as cluster:
        first = declarations(cluster)
    assert sorted(first) == sorted([("registry", rulebook.defaults_of(Rules)),
                                    ("county", rulebook.defaults_of(CountyRules))])
    with support.running(RegistryService, config), support.rpc_client(amqp_uri) as cluster:
        assert declarations(cluster) == first  # the same defaults: nothing new on record

    release = {**RegistryService.rulebook_sections()}
    release["registry"] = {**release["registry"], "poverty_line": "4500"}
    monkeypatch.setattr(RegistryService, "rulebook_sections", classmethod(lambda cls: release))
    with support.running(RegistryService, config), support.rpc_client(amqp_uri) as cluster:
        after = declarations(cluster)
    assert after[:2] == first and after[2:] == [("registry", {**rulebook.defaults_of(Rules), "poverty_line": "4500"})]
