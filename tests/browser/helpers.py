"""Small selenium helpers for the page tests."""
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 30


def wait(driver, condition, timeout=WAIT):
    return WebDriverWait(driver, timeout).until(condition)


def css(driver, selector, timeout=WAIT):
    """The first element matching, once it is there and visible."""
    return wait(driver, EC.visibility_of_element_located((By.CSS_SELECTOR, selector)), timeout)


def all_css(driver, selector):
    return driver.find_elements(By.CSS_SELECTOR, selector)


def text_in(driver, selector, text, timeout=WAIT):
    wait(driver, EC.text_to_be_present_in_element((By.CSS_SELECTOR, selector), text), timeout)
    return driver.find_element(By.CSS_SELECTOR, selector).text


def open_ui(driver, base, hash_=""):
    """Load the pages signed out and in Chinese (storage is per origin: clear it first)."""
    driver.get(f"{base}/ui/")
    driver.execute_script("window.sessionStorage.clear(); window.localStorage.clear();")
    driver.get(f"{base}/ui/{hash_}")
    driver.refresh()


def go(driver, hash_):
    driver.execute_script("window.location.hash = arguments[0];", hash_)


def set_value(driver, element, value):
    """Set an input's value the way a picker would (date inputs ignore typed text by locale)."""
    driver.execute_script(
        "arguments[0].value = arguments[1];"
        "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));"
        "arguments[0].dispatchEvent(new Event('change', {bubbles: true}));", element, value)


def type_into(element, value):
    element.clear()
    element.send_keys(value)


def sign_in(driver, username, password):
    type_into(css(driver, "#username"), username)
    type_into(css(driver, "#password"), password)
    css(driver, "#login-submit").click()
    css(driver, "#nav a[data-page='rankings']")
    wait(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, "#login-form"))


def browser_errors(driver):
    """Severe console messages (script errors, failed loads), ignoring the API's own 4xx answers."""
    try:
        entries = driver.get_log("browser")
    except Exception:  # noqa: BLE001 - not every driver keeps a log
        return []
    return [e["message"] for e in entries if e.get("level") == "SEVERE"
            and "/api/v1/" not in e["message"]]
