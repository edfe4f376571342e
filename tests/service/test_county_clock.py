"""The county's clock through a real service: at 23:30 UTC it is already tomorrow in Beijing, so a
visit dated tomorrow (UTC) is today for the county and is accepted; the day after is refused. A
change of the county's time zone reaches the services as an event, not at their next poll."""
import uuid

import pytest

from services.assistance.service import AssistanceService
from services.common import chassis
from services.common.errors import RuleRefused
from services.registry.service import RegistryService
from tests import support

ADMIN = {"actor": {"id": "admin", "role": "admin"}}
LATE_EVENING_UTC = "2023-12-31T23:30:00Z"  # 2024-01-01 07:30 in Asia/Shanghai


@pytest.fixture(scope="module")
def platform(infra, amqp_uri):
    registry_db = support.fresh_database("registry", "registry_clock")
    assistance_db = support.fresh_database("assistance", "assistance_clock")
    with support.running(RegistryService, support.service_config("registry", amqp_uri, registry_db)), \
            support.running(AssistanceService, support.service_config("assistance", amqp_uri, assistance_db,
                                                                      NOW=LATE_EVENING_UTC)), \
            support.rpc_client(amqp_uri) as cluster:
        yield cluster


def _paired(registry, assistance, suffix):
    """A household paired with a cadre since December 2023: (a visit's body, the household)."""
    registry.register_township({"township_id": f"T-{suffix}", "name": "长岭乡"}, ADMIN)
    registry.register_village({"village_id": f"V-{suffix}", "township_id": f"T-{suffix}", "name": "谢河村",
                               "poor_village": True}, ADMIN)
    household = registry.register_household({
        "household_no": f"430100-{suffix}", "village_id": f"V-{suffix}", "head_name": "王伟",
        "poverty_causes": ["illness"], "registered_on": "2023-01-05"}, ADMIN)["household_id"]
    assistance.register_unit({"unit_id": f"U-{suffix}", "name": "县交通运输局", "department": "transport",
                              "parent_unit_id": None}, ADMIN)
    assistance.register_cadre({"cadre_id": f"C-{suffix}", "unit_id": f"U-{suffix}", "name": "李强",
                               "rank": "staff", "deputy_section_or_above": False}, ADMIN)
    assistance.pair_household({"cadre_id": f"C-{suffix}", "household_id": household, "from": "2023-12-01"}, ADMIN)
    body = {"cadre_id": f"C-{suffix}", "household_id": household, "measures": ["产业指导"],
            "outcome": "收入稳定", "changes": "无", "policy_explained": True}
    return body, household


def test_a_visit_dated_today_in_beijing_is_accepted_while_utc_is_still_on_yesterday(platform):
    registry, assistance = platform.registry, platform.assistance
    body, _ = _paired(registry, assistance, uuid.uuid4().hex[:8])

    recorded = assistance.record_visit({**body, "visited_on": "2024-01-01"}, ADMIN)
    assert recorded["events"] == ["visit_recorded"]
    with pytest.raises(RuleRefused) as refused:
        assistance.record_visit({**body, "visited_on": "2024-01-02"}, ADMIN)
    assert refused.value.details["rule"] == "not_in_future"
    assert refused.value.details["today"] == "2024-01-01"


def test_a_change_of_the_countys_time_zone_reaches_the_next_command_without_waiting_for_a_poll(platform, monkeypatch):
    """The registry owns the county section; a change is announced as its `rules_changed` event and
    every process takes it in at once (not at its next minute's poll, switched off here)."""
    registry, assistance = platform.registry, platform.assistance
    monkeypatch.setattr(chassis, "COUNTY_REFRESH_SECONDS", 10**9)
    support.wait_until(lambda: assistance.rulebook_section()["as_of"] == "2024-01-01",
                       message="the assistance service reads the county section at start")
    suffix = uuid.uuid4().hex[:8]
    body, household = _paired(registry, assistance, suffix)
    utc = {"effective_from": "2023-01-01", "changes": {"timezone": "UTC"}, "reason": "a test of the clock"}
    registry.change_county_rules(utc, ADMIN)
    try:
        # 23:30 UTC on 31 December: in the county's new zone it is still 2023
        support.wait_until(lambda: assistance.rulebook_section()["as_of"] == "2023-12-31",
                           message="the assistance service takes the county's new time zone in")
        with pytest.raises(RuleRefused) as refused:
            assistance.record_visit({**body, "visited_on": "2024-01-01"}, ADMIN)
        assert refused.value.details["today"] == "2023-12-31"
    finally:
        registry.change_county_rules({**utc, "changes": {"timezone": "Asia/Shanghai"}}, ADMIN)
        support.wait_until(lambda: assistance.rulebook_section()["as_of"] == "2024-01-01",
                           message="the assistance service is back on Beijing time")
    assert assistance.record_visit({**body, "visited_on": "2024-01-01"}, ADMIN)["events"] == ["visit_recorded"]
