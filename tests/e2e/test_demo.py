"""A small generated county loads through the gateway end to end and yields scores for every
unit and cadre."""
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
    assert "Pay sheet 2023-11 (closed on 2023-12-05" in printed
    with capsys.disabled():  # the example pay sheet, for whoever runs this test with -s
        print(printed[printed.index("== Pay sheet"):printed.index("== Loan recovery")])
