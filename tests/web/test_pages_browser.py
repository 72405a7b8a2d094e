"""The pages in a real headless Chromium (Debian's chromium and chromium-driver, driven by
selenium; no browser is downloaded): a reviewer logs in, searches a matter, opens a message,
tags it and exports; a user looks at their dashboard, browses a folder as it was and
restores a deleted message, which the test then finds over IMAP in the real Cyrus. Each
page is saved as a screenshot into the artifacts directory ($VAULT_TEST_ARTIFACTS)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.web.site import MATTER, PASSWORDS, Site
from vault.testing.apt import AptError, apt_install

pytestmark = [pytest.mark.browser, pytest.mark.slapd, pytest.mark.cyrus]

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator:
    if not (CHROMIUM.exists() and DRIVER.exists()):
        try:
            apt_install("chromium", "chromium-driver")
        except AptError as e:
            pytest.fail(f"cannot install Debian's chromium and chromium-driver: {e}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.downloads = downloads  # type: ignore[attr-defined]
    # a click that posts a form returns before the next page has arrived (the service answers
    # it): every lookup waits up to 30 s for its element, instead of reading the old page
    driver.implicitly_wait(30)
    try:
        yield driver
    finally:
        driver.quit()


def shows(driver, element_id: str, text: str, seconds: float = 30) -> bool:
    """Whether element ``element_id`` comes to read ``text`` within ``seconds``: a click that
    posts a form returns while the old page (with its own such element) is still shown."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, seconds, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: d.find_element(By.ID, element_id).text == text
        )
    except TimeoutException:
        return False
    return True


def shot(site: Site, driver, name: str) -> None:
    driver.save_screenshot(str(site.artifacts / f"{name}.png"))


def login(site: Site, driver, user: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(f"http://127.0.0.1:{site.port}/login")
    driver.find_element(By.ID, "login").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(PASSWORDS[user])
    shot(site, driver, "login")
    driver.find_element(By.ID, "submit").click()
    assert user in driver.find_element(By.ID, "who").text


def test_a_reviewer_logs_in_searches_opens_tags_and_exports(pages_site, browser):
    from selenium.webdriver.common.by import By

    login(pages_site, browser, "wrev")
    shot(pages_site, browser, "home-reviewer")
    browser.find_element(By.LINK_TEXT, "Review").click()
    shot(pages_site, browser, "review-matters")
    browser.find_element(By.LINK_TEXT, MATTER).click()
    browser.find_element(By.ID, "q").send_keys("subject:contract OR subject:settlement")
    browser.find_element(By.ID, "search").click()
    assert "found within wbob" in browser.find_element(By.ID, "total").text
    shot(pages_site, browser, "review-hits")
    browser.find_element(By.PARTIAL_LINK_TEXT, "Scans of the contract").click()
    assert "Scans of the contract" in browser.find_element(By.TAG_NAME, "h1").text
    browser.find_element(By.ID, "tag-privileged").click()
    assert shows(browser, "current-tag", "Privileged")
    browser.find_element(By.ID, "tag-responsive").click()
    assert shows(browser, "current-tag", "Responsive")
    shot(pages_site, browser, "review-message")
    browser.get(f"http://127.0.0.1:{pages_site.port}/review/matter?matter={MATTER}")
    rows = browser.find_elements(By.CSS_SELECTOR, "#tagged tbody tr")
    assert any("Responsive" in r.text for r in rows)
    shot(pages_site, browser, "review-matter")
    browser.find_element(By.ID, "export").click()
    deadline = time.monotonic() + 60
    while not [p for p in browser.downloads.glob("*.zip")] and time.monotonic() < deadline:
        time.sleep(0.2)
    zips = list(browser.downloads.glob("*.zip"))
    assert zips and zips[0].name == f"{MATTER}-export.zip"
    shutil.copy(zips[0], pages_site.artifacts / zips[0].name)


def test_a_user_sees_the_dashboard_and_restores_a_deleted_message(pages_site, browser):
    from selenium.webdriver.common.by import By

    login(pages_site, browser, "wdora")
    browser.get(f"http://127.0.0.1:{pages_site.port}/dashboard")
    assert len(browser.find_elements(By.CSS_SELECTOR, "figure svg")) == 4
    shot(pages_site, browser, "dashboard")
    browser.find_element(By.LINK_TEXT, "Folders").click()
    at = browser.find_element(By.ID, "at")
    at.send_keys(pages_site.deleted_at)
    browser.find_element(By.ID, "at-go").click()
    shot(pages_site, browser, "folders-at")
    browser.find_element(By.LINK_TEXT, "user/wdora").click()
    rows = [r for r in browser.find_elements(By.CSS_SELECTOR, "tr.message") if "Trip plan" in r.text]
    assert rows, "the deleted message is in the folder as it was"
    shot(pages_site, browser, "folder-at")
    rows[0].find_element(By.CSS_SELECTOR, "a.restore").click()
    browser.find_element(By.ID, "password").send_keys(PASSWORDS["wdora"])
    shot(pages_site, browser, "restore")
    browser.find_element(By.ID, "restore").click()
    assert browser.find_element(By.ID, "restored").text.startswith("1 message of user/wdora ")
    shot(pages_site, browser, "restored")
    imap = pages_site.cyrus.imap("wdora")
    try:
        assert imap.select("INBOX/Restored")[0] == "OK"
        typ, data = imap.search(None, "HEADER", "Message-ID", "trip@example.org")
        assert typ == "OK" and data[0].split()
    finally:
        imap.logout()
    browser.find_element(By.LINK_TEXT, "Search").click()
    browser.find_element(By.ID, "q").send_keys("quarterly")
    browser.find_element(By.ID, "search").click()
    browser.find_element(By.PARTIAL_LINK_TEXT, "Quarterly numbers").click()
    body = browser.find_element(By.ID, "body").text
    assert "Numbers are up 12%." in body
    assert "<script" not in browser.page_source
    shot(pages_site, browser, "message")
