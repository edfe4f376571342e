"""A small generated county loads through the gateway end to end and yields scores for every
unit and cadre; its 100-day sprint (seed 001) shows progress, milestones, late and missing
reports and the ledger, and lowers the scores of the units that reported late or let a problem
run overdue."""
from fupin import demo
from fupin.demo_county import AS_OF, YEAR, generate
from tests.e2e.conftest import ADMIN_PASSWORD


def test_a_small_county_loads_and_every_unit_and_cadre_is_scored(gateway_url, capsys):
    county = generate(seed=11, households=30, cadres=10)
    loader = demo.run(households=30, cadres=10, seed=11, base=gateway_url, admin_password=ADMIN_PASSWORD)
    assert loader.failures == []
    assert loader.sent == county.summary["requests"]
    headers = {"Authorization": f"Bearer {loader.tokens['leading-group']}"}
    params = {"period": str(YEAR), "as_of": AS_OF.isoformat(), "limit": 500}
    cadres = loader.session.get(f"{gateway_url}/api/v1/scores/cadre", headers=headers, params=params).json()["items"]
    units = loader.session.get(f"{gateway_url}/api/v1/scores/unit", headers=headers, params=params).json()["items"]
    expected = {scope["cadre_id"] for _, role, scope in county.users if role == "cadre"}
    # other tests of this package may have added cadres and units of their own to the platform
    cadres = [item for item in cadres if item["subject_id"] in expected]
    units = [item for item in units if item["subject_id"] in {"U01", "U02", "U03", "U04", "U05"}]
    assert {item["subject_id"] for item in cadres} == expected and len(expected) == 10
    assert all(item["score"] is not None for item in cadres)
    assert len(units) == 5 and all(item["score"] is not None for item in units)
    vetoed = [item for item in units if item["vetoed"]]
    assert [item["subject_id"] for item in vetoed] == ["U05"] and units[-1]["subject_id"] == "U05"
    # the demo closes October and November 2023 (月度考核定格): frozen, with a pay sheet
    november = loader.session.get(f"{gateway_url}/api/v1/periods/2023-11", headers=headers).json()
    assert november["status"] == "closed" and november["closed_on"] == "2023-12-05"
    sheet = loader.session.get(f"{gateway_url}/api/v1/periods/2023-11/pay-sheet", headers=headers).json()
    assert {row["cadre_id"] for row in sheet["rows"]} >= expected
    # the last cadre's province 差 of 2 November withholds November's pay
    withheld = [row for row in sheet["rows"] if row["withheld"] != "0.00"]
    assert withheld and all(row["performance_pay"] == "0.00" for row in withheld)
    october = loader.session.get(f"{gateway_url}/api/v1/periods/2023-10/pay-sheet", headers=headers).json()
    assert october["totals"]["rewards"] == "1000.00"  # the first cadre's county 好 of 8 October
    printed = capsys.readouterr().out
    assert "Units, 2023" in printed and "Loan recovery by township" in printed
    assert "Campaign 脱贫攻坚百日冲刺" in printed and "打通通组路" in printed and "✗ missed" in printed

    view = loader.session.get(f"{gateway_url}/api/v1/campaigns/sprint-2023", headers=headers,
                              params={"as_of": "2023-09-30"}).json()
    reports = {u["unit_id"]: u for u in view["reports"]["units"]}
    assert [late["week"] for late in reports["T04"]["late"]] == ["2023-W27", "2023-W31", "2023-W36"]
    assert reports["T04"]["missing"] == ["2023-W33"] and [late["week"] for late in reports["U01"]["late"]] == ["2023-W30"]
    assert all(not u["late"] and not u["missing"] for k, u in reports.items() if k not in ("T04", "U01"))
    roads = next(a for a in view["actions"] if a["action_id"] == "a19")
    assert roads["targets"][0]["done"] == roads["targets"][0]["quantity"] == "60"
    milestones = {m["what"]: m["status"] for action in view["actions"] for m in action["milestones"]}
    assert milestones["9月底前全部入住"] == "met" and "missed" in milestones.values()
    problems = loader.session.get(f"{gateway_url}/api/v1/problems", headers=headers,
                                  params={"as_of": "2023-09-30"}).json()["items"]
    status = {p["problem_id"]: p["status"] for p in problems if p["problem_id"].startswith("DC-2023-")}
    assert status == {"DC-2023-01": "closed", "DC-2023-02": "closed", "DC-2023-03": "closed",
                      "DC-2023-04": "overdue", "DC-2023-05": "closed"}

    def card(unit):
        return loader.session.get(f"{gateway_url}/api/v1/scores/unit/{unit}", headers=headers, params=params).json()

    def indicator(unit, name):
        return next(i for i in card(unit)["indicators"] if i["name"] == name)

    weekly = [e for e in indicator("U01", "report_timeliness")["evidence"] if e["kind"] == "weekly_report"]
    assert [(e["week"], e["status"]) for e in weekly] == [("2023-W30", "late")]
    overdue = indicator("U03", "rectification")
    assert (overdue["numerator"], overdue["denominator"]) == (0, 1) and overdue["evidence"][0]["problem_id"] == "DC-2023-04"
    assert indicator("U01", "rectification")["numerator"] == 1  # DC-2023-02, closed by its deadline after a send-back
    assert "Pay sheet 2023-11 (closed on 2023-12-05" in printed
    with capsys.disabled():  # the example pay sheet, for whoever runs this test with -s
        print(printed[printed.index("== Pay sheet"):printed.index("== Loan recovery")])
