"""The leading group's supervision pages in headless Chromium: a campaign's progress bars per
action and township with its milestones and late/missing reports, and the rectification ledger
with an overdue problem. Screenshots go to test-artifacts/browser/."""
import uuid

import pytest

from tests.browser.conftest import screenshot
from tests.browser.helpers import all_css, browser_errors, css, go, open_ui, sign_in, text_in, wait


def _ok(response):
    assert response.status_code in (200, 201), f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()


@pytest.fixture(scope="module")
def sprint(admin):
    s = uuid.uuid4().hex[:4]
    ids = {"t1": f"T1{s}", "t2": f"T2{s}", "u1": f"U1{s}", "h1": f"H1{s}", "camp": f"sprint{s}"}
    _ok(admin.post("/api/v1/units", {"unit_id": ids["u1"], "name": "县交通运输局", "department": "transport",
                                     "parent_unit_id": None}))
    _ok(admin.post("/api/v1/cadres", {"cadre_id": ids["h1"], "unit_id": ids["u1"], "name": "王局长", "rank": "head",
                                      "deputy_section_or_above": True}))
    _ok(admin.post("/api/v1/campaigns", {"campaign_id": ids["camp"], "name": "脱贫攻坚百日冲刺", "starts_on": "2023-05-01",
                                         "ends_on": "2023-08-08", "phases": [{"name": "决战决胜", "from": "2023-05-01",
                                                                             "until": "2023-07-31"}]}))
    _ok(admin.post(f"/api/v1/campaigns/{ids['camp']}/actions", {
        "action_id": "a19", "name": "村组道路畅通行动", "lead": "副县长", "responsible_units": [ids["u1"], "all_townships"],
        "targets": [{"target_id": "roads", "name": "通组路硬化", "unit_of_measure": "km", "quantity": "40",
                     "by_township": {ids["t1"]: "25", ids["t2"]: "15"}}],
        "milestones": [{"what": "完成20公里", "due_on": "2023-05-20", "target_id": "roads", "quantity": "20"}]}))
    for unit, progress, at in ((ids["t1"], "10", "2023-05-05T10:00:00"), (ids["t2"], "3", "2023-05-05T14:00:00")):
        _ok(admin.post(f"/api/v1/campaigns/{ids['camp']}/reports", {
            "unit_id": unit, "week": "2023-W18", "signed_off_by": "镇长", "reported_at": at,
            "items": [{"action_id": "a19", "target_id": "roads", "progress": progress}]}))
    problem = _ok(admin.post("/api/v1/problems", {"source": "supervision", "found_on": "2023-05-06",
                                                  "description": "通组路养护台账缺失", "unit_id": ids["u1"],
                                                  "township_id": ids["t1"], "deadline": "2023-05-20"}))
    ids["problem"] = problem["problem_id"]
    return ids


def test_campaign_view_has_progress_bars_per_action_and_township(gateway_url, sprint, user_factory, fresh_tab):
    driver = fresh_tab
    username, password, _ = user_factory("leading_group")
    open_ui(driver, gateway_url)
    sign_in(driver, username, password)
    go(driver, f"#/campaigns/{sprint['camp']}?as_of=2023-05-31")
    text_in(driver, "#campaign-name", "脱贫攻坚百日冲刺")
    section = css(driver, "[data-action='a19']")
    assert "村组道路畅通行动" in section.text and "副县长" in section.text
    bars = {bar.get_attribute("data-bar"): bar.get_attribute("value") for bar in all_css(driver, "progress[data-bar]")}
    # 13 of 40 km county-wide; 10 of 25 in T1, 3 of 15 in T2
    assert float(bars["roads"]) == pytest.approx(32.5)
    assert float(bars[f"roads/{sprint['t1']}"]) == pytest.approx(40.0)
    assert float(bars[f"roads/{sprint['t2']}"]) == pytest.approx(20.0)
    assert css(driver, "[data-status='missed']").text.startswith("未按期")
    reports = text_in(driver, "#campaign-view", "迟报")
    assert "2023-W18" in reports and "2023-W19" in reports  # T2's W18 late; W19, W20 missing
    screenshot(driver, "50-campaign", full=True)
    assert not browser_errors(driver)


def test_ledger_lists_the_overdue_problem(gateway_url, sprint, user_factory, fresh_tab):
    driver = fresh_tab
    username, password, _ = user_factory("leading_group")
    open_ui(driver, gateway_url)
    sign_in(driver, username, password)
    go(driver, "#/ledger?status=overdue&as_of=2023-05-31")
    text_in(driver, "#ledger", "通组路养护台账缺失")
    row = css(driver, f"#ledger tr[data-id='{sprint['problem']}']")
    assert "逾期" in row.text and sprint["u1"] in row.text and "督查" in row.text
    go(driver, "#/ledger?status=closed&as_of=2023-05-31")
    wait(driver, lambda d: "通组路养护台账缺失" not in css(d, "#ledger").text and "没有数据" in css(d, "#ledger").text)
    screenshot(driver, "51-ledger")
    assert not browser_errors(driver)


def test_the_bulletin_page_shows_campaign_progress_and_lapses(gateway_url, sprint, user_factory, fresh_tab):
    driver = fresh_tab
    username, password, _ = user_factory("leading_group")
    open_ui(driver, gateway_url)
    sign_in(driver, username, password)
    go(driver, "#/bulletin?week=2023-W21")  # 22–28 May: the milestone of the 20th is missed, the problem overdue
    text_in(driver, "#bulletin-campaigns", "专项行动进展")
    table = text_in(driver, "#bulletin", "村组道路畅通行动")
    assert "完成20公里（2023-05-20）" in table and "13" in table
    lapses = text_in(driver, "#bulletin", "通组路养护台账缺失（2023-05-20）")
    assert "2023-W18" in lapses  # T2's late report, U1's missing one
    screenshot(driver, "52-bulletin-supervision", full=True)
    assert not browser_errors(driver)
