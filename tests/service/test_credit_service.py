"""The credit service on real PostgreSQL and RabbitMQ, next to the real registry service: the loan
workflow, refusals that write nothing, quota locking, overdue detection, subsidies, relay, rebuild."""
import uuid

import pytest
from kombu import Connection, Exchange, Queue

from services.common.errors import NotFound, RuleRefused, ValidationFailed
from services.credit.service import CreditService
from services.registry.service import RegistryService
from tests import support

STATION = {"actor": {"id": "station-t1", "role": "township"}}
UNION = {"actor": {"id": "credit-union", "role": "credit_union"}}


def id_number(body17):
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body17 + "10X98765432"[sum(int(d) * w for d, w in zip(body17, weights)) % 11]


@pytest.fixture(scope="module")
def households(amqp_uri, infra):
    """The real registry with its own fresh database: households with and without labour."""
    database = support.fresh_database("registry", name="credit_registry")
    config = support.service_config("registry", amqp_uri, database)
    with support.running(RegistryService, config), support.rpc_client(amqp_uri) as cluster:
        registry = cluster.registry
        registry.register_township({"township_id": "T1", "name": "龙泉乡"})
        registry.register_village({"village_id": "V1", "township_id": "T1", "name": "长岭村", "poor_village": True})
        made = {}
        labour = {"worker": ["full"], "worker2": ["weak", "none"], "worker3": ["full"], "worker4": ["full"],
                  "idle": ["none"], "wubao": ["none"]}
        for n, (name, capacities) in enumerate(labour.items()):
            household_id = registry.register_household(
                {"household_no": f"34240100{n}", "village_id": "V1", "head_name": "王伟", "poverty_causes": ["illness"],
                 "registered_on": "2023-01-05", "five_guarantees": name == "wubao"}, STATION)["household_id"]
            for m, capacity in enumerate(capacities):
                registry.add_member({"household_id": household_id, "name": "王伟",
                                     "relation": "head" if m == 0 else "spouse",
                                     "id_number": id_number(f"342401198002{n + 10}{m}13"),
                                     "birth_date": f"1980-02-{n + 10}",
                                     "sex": "male", "labor_capacity": capacity, "health": "healthy"}, STATION)
            made[name] = household_id
        yield made


@pytest.fixture(scope="module")
def credit_db(infra):
    return support.fresh_database("credit")


@pytest.fixture
def rpc(amqp_uri, credit_db, households):
    support.truncate_all(credit_db)
    config = support.service_config("credit", amqp_uri, credit_db)
    with support.running(CreditService, config), support.rpc_client(amqp_uri) as cluster:
        yield cluster.credit


def apply(rpc, household_id, amount="10000.00", applied_on="2023-09-25", **changes):
    body = {"household_id": household_id, "township_id": "T1", "amount": amount, "industry": "livestock",
            "term_months": 12, "applied_on": applied_on}
    body.update(changes)
    return rpc.apply_loan(body, STATION)["loan_id"]


def recommend(rpc, loan_id, reviewed="2023-09-28", on="2023-10-12"):
    rpc.village_review({"loan_id": loan_id, "on": reviewed, "passed": True, "note": "村委会初审通过"}, STATION)
    return rpc.township_recommendation({"loan_id": loan_id, "on": on, "recommended": True, "note": "符合条件"}, STATION)


def lend(rpc, household_id, amount="10000.00", decided="2023-10-20", disbursed="2023-10-25"):
    loan_id = apply(rpc, household_id, amount)
    recommend(rpc, loan_id)
    rpc.decide_loan({"loan_id": loan_id, "on": decided, "approved": True, "reason": ""}, UNION)
    rpc.disburse_loan({"loan_id": loan_id, "on": disbursed, "annual_rate": "0.0435"}, UNION)
    return loan_id


def bind_queue(amqp_uri):
    exchange = Exchange("credit.events", type="topic", durable=True)
    queue = Queue(f"credit-test-{uuid.uuid4().hex[:8]}", exchange=exchange, routing_key="#", durable=True,
                  auto_delete=True)
    with Connection(amqp_uri) as conn:
        queue(conn.channel()).declare()
    return queue


def test_the_whole_workflow_from_quota_to_subsidy(amqp_uri, rpc, households):
    queue = bind_queue(amqp_uri)
    assert rpc.allocate_quota({"township_id": "T1", "year": 2023, "amount": "100000.00"})["allocated"] == "100000.00"
    loan_id = apply(rpc, households["worker"], "30000.00")
    recommendation = recommend(rpc, loan_id)["township_recommendation"]
    # review 28 Sep; National Day 29 Sep–6 Oct; 7 Oct (Saturday) is a make-up working day
    assert (recommendation["due_by"], recommendation["working_days"], recommendation["within_limit"]) == \
        ("2023-10-11", 6, False)
    with pytest.raises(RuleRefused) as refused:
        rpc.decide_loan({"loan_id": loan_id, "on": "2023-10-20", "approved": True, "reason": ""}, UNION)
    assert refused.value.details["rule"] == "county_approval_required"
    rpc.county_approval({"loan_id": loan_id, "on": "2023-10-13", "approved": True})
    decision = rpc.decide_loan({"loan_id": loan_id, "on": "2023-10-20", "approved": True, "reason": ""}, UNION)
    # 10 working days from the county's approval (13 Oct), the later of it and the recommendation (12 Oct)
    assert decision["decision"]["due_by"] == "2023-10-27" and decision["decision"]["within_limit"] is True
    disbursed = rpc.disburse_loan({"loan_id": loan_id, "on": "2023-10-25", "annual_rate": "0.0435"}, UNION)
    assert disbursed["maturity_date"] == "2024-10-25"
    rpc.record_repayment({"loan_id": loan_id, "on": "2024-04-25", "principal": "10000.00", "interest": "220.00"},
                         UNION)
    settled = rpc.record_repayment({"loan_id": loan_id, "on": "2024-10-25", "principal": "20000.00",
                                    "interest": "880.00"}, UNION)
    assert (settled["status"], settled["on_time"], settled["events"]) == ("settled", True,
                                                                          ["loan_repaid", "loan_settled"])
    loan = rpc.get_loan(loan_id)
    assert (loan["township_id"], loan["household_id"], loan["outstanding"]) == ("T1", households["worker"], "0.00")
    # 10000 × 2.58 % × 183/360 + 20000 × 2.58 % × 366/360
    assert (loan["subsidy"]["eligible"], loan["subsidy"]["amount"], loan["subsidy"]["paid"]) == (True, "655.75", False)
    assert [item["type"] for item in loan["history"]] == [
        "loan_applied", "village_reviewed", "township_recommended", "county_approved", "loan_decided",
        "loan_disbursed", "loan_repaid", "loan_repaid", "loan_settled"]
    assert rpc.quota_use("T1", 2023) == {"township_id": "T1", "year": 2023, "allocated": "100000.00",
                                         "approved": "30000.00", "remaining": "70000.00", "loans_approved": 1}
    notice = rpc.public_notice("T1", "2023-10")
    assert ([item["loan_id"] for item in notice["items"]], notice["total_amount"]) == ([loan_id], "30000.00")
    assert rpc.public_notice("T1", "2023-11")["items"] == []
    not_yet_due = rpc.township_recovery("T1", 2024, "2024-10-24")  # matures 2024-10-25: not counted yet
    assert (not_yet_due["loans_due"], not_yet_due["rate"], not_yet_due["recommendation"]) == (0, None, None)
    recovery = rpc.township_recovery("T1", 2024, "2024-10-25")
    assert rpc.township_recovery("T1", 2024)["principal_due"] == "30000.00"  # today, county time, is later
    assert (recovery["principal_due"], recovery["principal_repaid_on_time"], recovery["rate"],
            recovery["recommendation"]) == ("30000.00", "30000.00", "1.0000", "raise_quota_and_reward")
    received = {}
    with Connection(amqp_uri) as conn, conn.SimpleQueue(queue) as simple:
        while "loan_settled" not in received:
            message = simple.get(timeout=20)
            received[message.delivery_info["routing_key"]] = message.payload["payload"]
            message.ack()
    assert received["township_recommended"] == {
        "loan_id": loan_id, "township_id": "T1", "on": "2023-10-12", "recommended": True, "note": "符合条件",
        "due_by": "2023-10-11", "working_days": 6, "within_limit": False,
        "decision_due_by": None}  # above 20,000 the credit union's clock starts at the county's approval
    assert received["county_approved"]["decision_due_by"] == "2023-10-27"
    assert received["loan_settled"] == {"loan_id": loan_id, "township_id": "T1", "on": "2024-10-25",
                                        "maturity_date": "2024-10-25", "on_time": True}


def test_an_enterprise_loan_goes_county_then_credit_union_outside_the_township_quota_and_recovery(rpc, households):
    rpc.allocate_quota({"township_id": "T1", "year": 2023, "amount": "10000.00"})
    loan_id = rpc.apply_loan({"enterprise_name": "县桑蚕合作社", "township_id": "T1", "amount": "80000.00",
                              "industry": "mulberry", "term_months": 6, "applied_on": "2023-03-01"}, STATION)["loan_id"]
    for refused_step, flag in ((rpc.village_review, "passed"), (rpc.township_recommendation, "recommended")):
        with pytest.raises(RuleRefused) as refused:
            refused_step({"loan_id": loan_id, "on": "2023-03-02", flag: True, "note": ""}, STATION)
        assert refused.value.details["rule"] == "household_loans_only"
    rpc.county_approval({"loan_id": loan_id, "on": "2023-03-02", "approved": True})
    decided = rpc.decide_loan({"loan_id": loan_id, "on": "2023-03-06", "approved": True, "reason": ""}, UNION)
    assert decided["status"] == "approved"  # 80,000 against a township quota of 10,000: not the township's
    assert rpc.quota_use("T1", 2023) == {"township_id": "T1", "year": 2023, "allocated": "10000.00",
                                         "approved": "0.00", "remaining": "10000.00", "loans_approved": 0}
    rpc.disburse_loan({"loan_id": loan_id, "on": "2023-03-10", "annual_rate": "0.0435"}, UNION)
    household_loan = lend(rpc, households["worker"], decided="2023-10-20", disbursed="2023-10-25")
    rpc.record_repayment({"loan_id": household_loan, "on": "2024-08-01", "principal": "10000.00", "interest": "0"},
                         UNION)
    # the enterprise matured on 2023-09-10 unpaid, yet the township's 2023 recovery has nothing due
    assert rpc.township_recovery("T1", 2023, "2023-12-31")["loans_due"] == 0
    assert rpc.township_recovery("T1", 2024, "2024-12-31")["rate"] == "1.0000"


def test_settling_subsidies_twice_pays_once(rpc, households):
    rpc.allocate_quota({"township_id": "T1", "year": 2023, "amount": "100000.00"})
    paid = lend(rpc, households["worker"])
    late = lend(rpc, households["worker2"])
    rpc.record_repayment({"loan_id": paid, "on": "2024-08-01", "principal": "10000.00", "interest": "0"}, UNION)
    rpc.record_repayment({"loan_id": late, "on": "2024-10-28", "principal": "10000.00", "interest": "0"}, UNION)
    assert rpc.settle_subsidies({"quarter": "2024-Q3", "settled_on": "2024-10-08"}, UNION)["payments"][0]["amount"] \
        == "201.38"  # 10000 × 2.58 % × 281 / 360
    assert rpc.settle_subsidies({"quarter": "2024-Q3", "settled_on": "2024-10-09"}, UNION)["payments"] == []
    assert rpc.settle_subsidies({"quarter": "2024-Q4", "settled_on": "2025-01-06"}, UNION)["payments"] == []
    loan = rpc.get_loan(paid)
    assert (loan["subsidy"]["paid"], loan["subsidy"]["quarter"]) == (True, "2024-Q3")
    assert [item["type"] for item in loan["history"]].count("subsidy_paid") == 1
    assert rpc.get_loan(late)["subsidy"]["reason"] == "repaid_late"


def test_overdue_detection_marks_once(rpc, households):
    rpc.allocate_quota({"township_id": "T1", "year": 2023, "amount": "100000.00"})
    loan_id = lend(rpc, households["worker"])  # maturity 2024-10-25
    assert rpc.detect_overdue("2024-10-25")["overdue"] == []
    marked = rpc.detect_overdue("2024-10-26")["overdue"]
    assert marked == [{"loan_id": loan_id, "township_id": "T1", "detected_on": "2024-10-26",
                       "maturity_date": "2024-10-25", "outstanding": "10000.00"}]
    assert rpc.detect_overdue("2024-11-30")["overdue"] == []
    assert [item["loan_id"] for item in rpc.list_loans({"status": "overdue"})["items"]] == [loan_id]
    with pytest.raises(ValidationFailed):
        rpc.detect_overdue("yesterday")


def test_borrowers_are_checked_against_the_real_registry(rpc, households):
    with pytest.raises(RuleRefused) as refused:
        apply(rpc, households["idle"])
    assert refused.value.details["rule"] == "no_labour_capacity"
    with pytest.raises(RuleRefused) as refused:
        apply(rpc, households["wubao"])
    assert refused.value.details["rule"] == "five_guarantees_without_labour"
    with pytest.raises(NotFound):
        apply(rpc, "no-such-household")
    first = apply(rpc, households["worker2"])  # one weak member is enough
    with pytest.raises(RuleRefused) as refused:
        apply(rpc, households["worker2"], applied_on="2023-10-01")
    assert refused.value.details["loans"] == [{"loan_id": first, "status": "applied"}]
    with pytest.raises(RuleRefused) as refused:
        apply(rpc, households["worker"], term_months=13)
    assert refused.value.details["rule"] == "term_within_limit"
    with pytest.raises(ValidationFailed) as invalid:
        apply(rpc, households["worker"], amount="0", industry="gambling")
    assert set(invalid.value.details) == {"amount", "industry"}
    assert [item["loan_id"] for item in rpc.list_loans({})["items"]] == [first]
    assert [e["type"] for e in rpc.events_since(0) if e["stream_type"] != "rulebook"] == ["loan_applied"]


def test_a_refused_step_writes_nothing(rpc, households):
    rpc.allocate_quota({"township_id": "T1", "year": 2023, "amount": "15000.00"})
    loan_id = apply(rpc, households["worker"])
    recommend(rpc, loan_id)
    other = apply(rpc, households["worker3"])
    recommend(rpc, other)
    rpc.decide_loan({"loan_id": loan_id, "on": "2023-10-20", "approved": True, "reason": ""}, UNION)
    before = len(rpc.events_since(0))
    with pytest.raises(RuleRefused) as refused:
        rpc.decide_loan({"loan_id": other, "on": "2023-10-20", "approved": True, "reason": ""}, UNION)
    assert refused.value.details["rule"] == "within_quota"
    with pytest.raises(RuleRefused):
        rpc.disburse_loan({"loan_id": other, "on": "2023-10-25", "annual_rate": "0.0435"}, UNION)
    with pytest.raises(ValidationFailed):
        rpc.township_recommendation({"loan_id": other, "on": "2023-13-01", "recommended": True}, STATION)
    with pytest.raises(NotFound):
        rpc.village_review({"loan_id": "nope", "on": "2023-10-01", "passed": True}, STATION)
    assert len(rpc.events_since(0)) == before
    assert rpc.get_loan(other)["status"] == "recommended"
    assert rpc.quota_use("T1", 2023)["approved"] == "10000.00"
    # outside the official calendar's years: a clear 400, not a crash
    late = apply(rpc, households["worker4"], applied_on="2030-01-02")
    with pytest.raises(ValidationFailed) as invalid:
        recommend(rpc, late, reviewed="2030-01-03", on="2030-01-04")
    assert "working days are known only" in invalid.value.message


def test_concurrent_approvals_never_exceed_the_quota(rpc, households):
    rpc.allocate_quota({"township_id": "T1", "year": 2023, "amount": "25000.00"})
    loans = [apply(rpc, households[name]) for name in ("worker", "worker2", "worker3", "worker4")]
    for loan_id in loans:
        recommend(rpc, loan_id)
    calls = [rpc.decide_loan.call_async({"loan_id": loan_id, "on": "2023-10-20", "approved": True, "reason": ""})
             for loan_id in loans]
    outcomes = []
    for call in calls:
        try:
            call.result()
            outcomes.append("approved")
        except RuleRefused:
            outcomes.append("refused")
    assert sorted(outcomes) == ["approved"] * 2 + ["refused"] * 2
    assert rpc.quota_use("T1", 2023)["remaining"] == "5000.00"


def test_an_idempotency_key_returns_the_first_result(rpc, households):
    context = {**STATION, "idempotency_key": "apply-once-1"}
    body = {"household_id": households["worker"], "township_id": "T1", "amount": "5000.00", "industry": "tobacco",
            "term_months": 10, "applied_on": "2023-03-01"}
    first = rpc.apply_loan(body, context)
    assert rpc.apply_loan(body, context) == first
    assert len(rpc.list_loans({"household_id": households["worker"]})["items"]) == 1


def test_lists_page_and_read_models_rebuild_to_the_same_answers(rpc, households):
    rpc.allocate_quota({"township_id": "T1", "year": 2023, "amount": "100000.00"})
    paid = lend(rpc, households["worker"])
    lend(rpc, households["worker2"])
    apply(rpc, households["worker3"])
    rpc.record_repayment({"loan_id": paid, "on": "2024-08-01", "principal": "10000.00", "interest": "0"}, UNION)
    rpc.settle_subsidies({"quarter": "2024-Q3", "settled_on": "2024-10-08"}, UNION)
    first = rpc.list_loans({"township_id": "T1"}, 2)
    second = rpc.list_loans({"township_id": "T1"}, 2, first["next_cursor"])
    assert len(first["items"]) + len(second["items"]) == 3 and second["next_cursor"] is None
    with pytest.raises(ValidationFailed):
        rpc.list_loans({"status": "lost"})

    def answers():
        return (rpc.list_loans({}), rpc.quota_use("T1", 2023), rpc.township_recovery("T1", 2024),
                rpc.public_notice("T1", "2023-10"), rpc.get_loan(paid)["subsidy"])

    before = answers()
    assert rpc.rebuild_read_models()["events_replayed"] == len(rpc.events_since(0))
    assert answers() == before


def test_a_scope_check_reads_the_owner_of_a_loan_not_the_whole_loan(rpc, households):
    rpc.allocate_quota({"township_id": "T1", "year": 2023, "amount": "100000.00"})
    loan_id = apply(rpc, households["worker"])
    assert rpc.owner("loan", loan_id) == {"loan_id": loan_id, "township_id": "T1"}
    with pytest.raises(NotFound):
        rpc.owner("loan", "no-such-loan")
