"""The county's clock through a real service: at 23:30 UTC it is already tomorrow in Beijing, so a
visit dated tomorrow (UTC) is today for the county and is accepted; the day after is refused."""
import uuid

import pytest

from services.assistance.service import AssistanceService
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


def test_a_visit_dated_today_in_beijing_is_accepted_while_utc_is_still_on_yesterday(platform):
    registry, assistance = platform.registry, platform.assistance
    suffix = uuid.uuid4().hex[:8]
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

    recorded = assistance.record_visit({**body, "visited_on": "2024-01-01"}, ADMIN)
    assert recorded["events"] == ["visit_recorded"]
    with pytest.raises(RuleRefused) as refused:
        assistance.record_visit({**body, "visited_on": "2024-01-02"}, ADMIN)
    assert refused.value.details["rule"] == "not_in_future"
    assert refused.value.details["today"] == "2024-01-01"
