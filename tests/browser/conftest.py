"""The web pages in a real headless Chromium (selenium + chromedriver), against the real platform.

The platform is tests/e2e's: the same service classes, admin password and clients. It runs on its
own databases (`<prefix>_browser_<component>`) and its own RabbitMQ vhost (`<prefix>_browser`),
because pytest keeps one session fixture per directory: re-using tests/e2e's `gateway_url` here
would start a second platform on the same databases and queues in a full `pytest` run and wreck
the first. Needs Chromium: `bash scripts/ensure-browser.sh`."""
import importlib
import os
import shutil
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest
import requests

from tests import support
from tests.e2e.conftest import ADMIN_PASSWORD, SERVICE_CLASSES, Client, sign_in

CHROMIUM = os.environ.get("FUPIN_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("FUPIN_CHROMEDRIVER", "/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
NAME = "browser"

__all__ = ["ADMIN_PASSWORD", "Client", "sign_in"]


def start_gateway(stack, amqp_uri, database_name):
    from gateway.service import GatewayService

    url = support.fresh_database("gateway", name=database_name)
    config = support.service_config("gateway", amqp_uri, url, ADMIN_PASSWORD=ADMIN_PASSWORD,
                                    AUDITOR_PASSWORD="browser-Auditor-pw1", JWT_SECRET="browser-signing-key",
                                    ENVIRONMENT="test")
    stack.enter_context(support.running(GatewayService, config))
    base = f"http://{config['WEB_SERVER_ADDRESS']}"
    support.wait_until(lambda: requests.get(f"{base}/healthz", timeout=5).ok, 30, message="gateway up")
    return base


def start_platform(stack, amqp_uri):
    """tests/e2e/conftest.py's start_platform on the browser databases."""
    for component, (module, cls_name) in SERVICE_CLASSES.items():
        service_cls = getattr(importlib.import_module(module), cls_name)
        url = support.fresh_database(component, name=f"{NAME}_{component}")
        stack.enter_context(support.running(service_cls, support.service_config(component, amqp_uri, url)))
    return start_gateway(stack, amqp_uri, f"{NAME}_gateway")


@pytest.fixture(scope="session")
def browser_amqp_uri(infra):
    return support.fresh_vhost(NAME)


@pytest.fixture(scope="module")
def gateway_url(browser_amqp_uri):
    """The whole platform, for this module only (stopped before the next starts)."""
    with ExitStack() as stack:
        base = start_platform(stack, browser_amqp_uri)
        support.wait_until(lambda: requests.get(f"{base}/readyz", timeout=5).ok, 30, message="gateway ready")
        yield base


@pytest.fixture(scope="module")
def admin(gateway_url):
    return sign_in(gateway_url, "admin", ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def user_factory(gateway_url, admin):
    """`user_factory("township", township_id="t1")` → (username, password, Client)."""
    made = {}

    def make(role, **scope):
        key = (role, tuple(sorted(scope.items())))
        if key not in made:
            username = f"ui-{role}-{uuid.uuid4().hex[:6]}"
            response = admin.post("/api/v1/users", {"username": username, "password": "password-123",
                                                    "role": role, "scope": scope})
            assert response.status_code == 201, response.text
            made[key] = (username, "password-123", sign_in(gateway_url, username, "password-123"))
        return made[key]

    return make


# --- the browser ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def downloads():
    path = ARTIFACTS / "downloads"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def browser(downloads):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: .venv/bin/pip install selenium (see requirements.lock)", pytrace=False)
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail(f"Chromium or chromedriver is missing ({CHROMIUM}, {CHROMEDRIVER}): run "
                    "`bash scripts/ensure-browser.sh` (Debian: apt-get install chromium chromium-driver)",
                    pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1366,900", "--lang=zh-CN", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False,
        "intl.accept_languages": "zh-CN,zh",
    })
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def fresh_tab(browser):
    """Each test starts signed out, in Chinese."""
    browser.get("about:blank")
    browser.delete_all_cookies()
    yield browser


def screenshot(driver, name, full=False):
    """test-artifacts/browser/<name>.png; `full` stretches the window to the whole page first."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    size = driver.get_window_size()
    if full:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(size["width"], min(max(height + 140, size["height"]), 4000))
        driver.execute_script("return new Promise(function (done) { requestAnimationFrame(function () { setTimeout(done, 300); }); });")
    try:
        driver.save_screenshot(str(path))
    finally:
        if full:
            driver.set_window_size(size["width"], size["height"])
    return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, keep what the browser showed: FAILED-<test>.png and the address in the report."""
    report = yield
    driver = item.funcargs.get("fresh_tab") if hasattr(item, "funcargs") else None
    if report.when == "call" and report.failed and driver is not None:
        try:
            path = screenshot(driver, f"FAILED-{item.name}")
            report.sections.append(("browser", f"url: {driver.current_url}\nscreenshot: {path}\n"
                                               f"console: {driver.get_log('browser')}"))
        except Exception as exc:  # noqa: BLE001 - the browser may be the thing that broke
            report.sections.append(("browser", f"no screenshot: {exc}"))
    return report
