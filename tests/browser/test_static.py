"""The pages are served by the gateway itself, with no other service running: the files, their
types and headers, no way out of gateway/web, and the sign-in page in both languages."""
from contextlib import ExitStack

import pytest
import requests

from tests.browser.conftest import ADMIN_PASSWORD, screenshot, start_gateway
from tests.browser.helpers import browser_errors, css, open_ui, sign_in, text_in


@pytest.fixture(scope="module")
def ui_only(browser_amqp_uri):
    with ExitStack() as stack:
        yield start_gateway(stack, browser_amqp_uri, "browser_ui_gateway")


def test_files_are_served_with_their_types_and_nothing_else(ui_only):
    page = requests.get(f"{ui_only}/ui/", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert "/ui/static/vendor/chart.umd.js" in page.text and "cdn" not in page.text.lower()
    redirect = requests.get(f"{ui_only}/ui", timeout=10, allow_redirects=False)
    assert redirect.status_code in (301, 308) and redirect.headers["Location"].endswith("/ui/")
    for path, kind in (("static/app.js", "text/javascript"), ("static/app.css", "text/css"),
                       ("static/vendor/chart.umd.js", "text/javascript")):
        response = requests.get(f"{ui_only}/ui/{path}", timeout=10)
        assert response.status_code == 200 and response.headers["Content-Type"].startswith(kind), path
    chart = requests.get(f"{ui_only}/ui/static/vendor/chart.umd.js", timeout=10).text
    assert chart.startswith("/*!\n * Chart.js v4")
    for bad in ("__init__.py", "static/../__init__.py", "..%2f..%2fservice.py", "static/nothing.js",
                "%2e%2e/%2e%2e/app.py"):
        assert requests.get(f"{ui_only}/ui/{bad}", timeout=10).status_code == 404, bad
    # the API beside the pages answers as before
    assert requests.get(f"{ui_only}/api/v1/scores/unit", timeout=10).status_code == 401
    assert requests.post(f"{ui_only}/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD},
                         timeout=30).status_code == 200


def test_sign_in_page_is_chinese_by_default_and_switches_to_english(ui_only, fresh_tab):
    driver = fresh_tab
    open_ui(driver, ui_only)
    assert css(driver, "#login-form h1").text == "登录"
    assert driver.find_element("css selector", "html").get_attribute("lang") == "zh-CN"
    css(driver, "#lang").click()
    text_in(driver, "#login-form h1", "Sign in")
    assert driver.find_element("css selector", "html").get_attribute("lang") == "en"
    screenshot(driver, "00-sign-in-english")
    css(driver, "#lang").click()
    text_in(driver, "#login-form h1", "登录")
    css(driver, "#username").send_keys("admin")
    css(driver, "#password").send_keys("wrong-password")
    css(driver, "#login-submit").click()
    message = text_in(driver, "#login-message .alert", "wrong username or password")
    assert "登录失败" in message
    screenshot(driver, "01-sign-in-refused")
    css(driver, "#password").clear()
    sign_in(driver, "admin", ADMIN_PASSWORD)
    assert "admin" in css(driver, "#who").text
    assert driver.execute_script("return !!window.sessionStorage.getItem('fupin.token')")
    assert driver.execute_script("return typeof window.Chart") == "function"
    css(driver, "#signout").click()
    css(driver, "#login-form")
    assert not driver.execute_script("return window.sessionStorage.getItem('fupin.token')")
    assert not browser_errors(driver)


def test_sign_out_revokes_the_token_and_an_idle_page_signs_itself_out(ui_only, fresh_tab):
    driver = fresh_tab
    open_ui(driver, ui_only)
    sign_in(driver, "admin", ADMIN_PASSWORD)
    token = driver.execute_script("return window.sessionStorage.getItem('fupin.token')")
    css(driver, "#signout").click()
    css(driver, "#login-form")
    revoked = requests.get(f"{ui_only}/api/v1/users", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]["message"]
    # idle: nothing touched for data-idle-minutes (shortened here to about two seconds)
    sign_in(driver, "admin", ADMIN_PASSWORD)
    token = driver.execute_script("return window.sessionStorage.getItem('fupin.token')")
    driver.execute_script("document.documentElement.setAttribute('data-idle-minutes', '0.03')")
    text_in(driver, "#idle-message", "长时间未操作")
    assert not driver.execute_script("return window.sessionStorage.getItem('fupin.token')")
    idle = requests.get(f"{ui_only}/api/v1/users", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert idle.status_code == 401
    screenshot(driver, "02-signed-out-when-idle")
    assert not browser_errors(driver)
