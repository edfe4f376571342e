"""The supervision service on real PostgreSQL and RabbitMQ: a campaign, a late report, a problem."""
import pytest

from services.common.errors import RuleRefused
from services.supervision.service import SupervisionService
from tests import support


@pytest.fixture(scope="module")
def supervision_db(infra):
    return support.fresh_database("supervision")


@pytest.fixture
def rpc(amqp_uri, supervision_db):
    support.truncate_all(supervision_db)
    config = support.service_config("supervision", amqp_uri, supervision_db, NOW="2018-08-02T09:00:00")
    with support.running(SupervisionService, config), support.rpc_client(amqp_uri) as cluster:
        yield cluster.supervision


def test_campaign_reports_and_the_ledger(rpc):
    rpc.launch_campaign({"campaign_id": "sprint", "name": "百日冲刺", "starts_on": "2018-06-11",
                         "ends_on": "2018-09-30", "phases": [{"name": "决战决胜", "from": "2018-06-11",
                                                              "until": "2018-08-31"}]})
    rpc.add_action({"campaign_id": "sprint", "action_id": "a19", "name": "村组道路畅通", "lead": "副县长",
                    "responsible_units": ["transport"], "targets": [
                        {"target_id": "roads", "name": "通组路", "unit_of_measure": "km", "quantity": "40"}]})
    late = rpc.submit_weekly_report({"campaign_id": "sprint", "unit_id": "transport", "week": "2018-W24",
                                     "signed_off_by": "c-head", "reported_at": "2018-06-15T15:00:00",
                                     "items": [{"action_id": "a19", "target_id": "roads", "progress": "12"}]})
    assert late["late"] is True and late["on_time"] is False
    view = rpc.get_campaign("sprint", "2018-06-25")
    transport = view["reports"]["units"][0]
    assert transport["missing"] == ["2018-W25"] and transport["late"][0]["week"] == "2018-W24"
    assert view["actions"][0]["targets"][0]["done"] == "12" and view["current_phase"] == "决战决胜"
    problem = rpc.record_problem({"source": "supervision", "found_on": "2018-07-01", "description": "台账不全",
                                  "unit_id": "transport", "deadline": "2018-07-31"})
    assert problem["status"] == "overdue"  # NOW is 2 August
    with pytest.raises(RuleRefused):
        rpc.verify_problem({"problem_id": problem["problem_id"], "on": "2018-07-05", "accepted": True})
    assert rpc.list_problems({"status": "overdue"})["items"][0]["problem_id"] == problem["problem_id"]
