"""The page in a real browser: headless Chromium (Debian's chromium + chromium-driver) driven by
Selenium, against uvicorn on 127.0.0.1. Skipped, saying why, where Chromium is not installed
(`.ci/run` installs it first)."""
import shutil

import pytest

selenium = pytest.importorskip(
    "selenium", reason="selenium is not installed (pip install -r requirements-dev.txt; make test does)")

from selenium.webdriver.common.by import By  # noqa: E402  (after the skip above)
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

from tools.browser import console_errors, emulate_phone, find_browser, start_chromium, wait_for_thumbnails  # noqa: E402
from webapp.server import create_app, serving  # noqa: E402

BROWSER, DRIVER = find_browser()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not (BROWSER and DRIVER),
    reason="browser test skipped: Chromium or chromedriver missing; install them with "
           "`apt-get install -y chromium chromium-driver` (.ci/run does)")]


@pytest.fixture(scope="module")
def site(mini_collection, tmp_path_factory):
    app = create_app(mini_collection["db"], thumbs_dir=str(tmp_path_factory.mktemp("thumbs")), warm=True)
    with serving(app) as url:
        yield url


@pytest.fixture
def browser(tmp_path):
    driver = start_chromium(str(tmp_path / "profile"), 1280, 1000)
    yield driver
    driver.quit()


def result_paths(driver):
    """The paths shown in the grid, read in one script call (the grid may be re-rendered meanwhile)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#results .card .path')).map(e => e.textContent)")


def wait_until(driver, condition, timeout=60):
    return WebDriverWait(driver, timeout).until(lambda d: condition())


def test_upload_click_walk_and_back(site, browser, mini_collection, tmp_path):
    query = tmp_path / "my cat.jpg"  # from outside the collection, with a space in its name
    shutil.copy(mini_collection["images"] / "chelsea" / "original.jpg", query)
    browser.get(site + "/")
    wait_until(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#mode option"))
    assert Select(browser.find_element(By.ID, "mode")).first_selected_option.text == "embeddings"

    wait_for_thumbnails(browser, "#results img", 8)  # the start screen: a random pick to walk from
    assert len(result_paths(browser)) == 14 and "#/" not in browser.current_url.replace(site + "/", "")
    browser.find_element(By.ID, "files").send_keys(str(query))
    wait_until(browser, lambda: "#/upload" in browser.current_url and len(result_paths(browser)) == 20)
    wait_for_thumbnails(browser, "#results img", 8)
    first = result_paths(browser)
    assert len(first) == 20 and first[0] == "chelsea/original.jpg"
    assert "#/upload" in browser.current_url
    assert "my cat.jpg" in browser.find_element(By.ID, "query").text

    clicked = browser.find_elements(By.CSS_SELECTOR, "#results a.card")[6]
    clicked_path = clicked.find_element(By.CSS_SELECTOR, ".path").text
    clicked.click()
    wait_until(browser, lambda: "#/similar/" in browser.current_url and result_paths(browser) != first)
    wait_until(browser, lambda: clicked_path in browser.find_element(By.ID, "query").text)
    wait_for_thumbnails(browser, "#results img", 8)
    walked = result_paths(browser)
    assert clicked_path not in walked  # the query is left out of its own results
    assert walked != first

    browser.back()
    wait_until(browser, lambda: "#/upload" in browser.current_url and result_paths(browser) == first)
    browser.forward()
    wait_until(browser, lambda: result_paths(browser) == walked)
    assert console_errors(browser) == []


def test_metric_list_follows_the_mode_and_the_url_keeps_it(site, browser):
    browser.get(site + "/#/similar/1")
    wait_for_thumbnails(browser, "#results img", 4)
    embeddings = result_paths(browser)
    Select(browser.find_element(By.ID, "mode")).select_by_visible_text("rgb")
    metrics = [o.text for o in Select(browser.find_element(By.ID, "metric")).options]
    assert metrics[0] == "bhattacharyya" and "hamming" not in metrics
    wait_until(browser, lambda: "mode=rgb" in browser.current_url and result_paths(browser) != embeddings)
    Select(browser.find_element(By.ID, "mode")).select_by_visible_text("phash")
    assert [o.text for o in Select(browser.find_element(By.ID, "metric")).options] == ["hamming"]
    wait_until(browser, lambda: "mode=phash" in browser.current_url)
    browser.refresh()  # the state is in the URL
    wait_until(browser, lambda: Select(browser.find_element(By.ID, "mode")).first_selected_option.text == "phash")
    wait_for_thumbnails(browser, "#results img", 4)
    assert console_errors(browser) == []


def test_a_bad_upload_shows_the_servers_message(site, browser, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(b"not a photo at all")
    browser.get(site + "/")
    wait_until(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#mode option"))
    browser.find_element(By.ID, "files").send_keys(str(bad))
    error = browser.find_element(By.ID, "error")
    wait_until(browser, lambda: error.is_displayed() and "notes.jpg" in error.text)
    # the failed fetch (400) is the only console entry: the page itself raised nothing
    assert all("400" in message for message in console_errors(browser))


def test_duplicates_and_map_views(site, browser):
    browser.get(site + "/#/duplicates")
    status = browser.find_element(By.ID, "dup-status")
    wait_until(browser, lambda: "groups" in status.text or browser.find_element(By.ID, "error").is_displayed())
    if "groups" in status.text:
        wait_for_thumbnails(browser, "#dup-groups img", 4)
        groups = browser.find_elements(By.CSS_SELECTOR, "#dup-groups .group")
        assert groups and all(len(g.find_elements(By.CSS_SELECTOR, ".card.keep")) == 1 for g in groups)
    browser.find_element(By.CSS_SELECTOR, '.tabs a[data-view="map"]').click()
    wait_until(browser, lambda: "of 60 images" in browser.find_element(By.ID, "map-status").text)
    canvas = browser.find_element(By.ID, "map")
    painted = browser.execute_script(
        "const c = arguments[0]; const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n;", canvas)
    assert painted > 60 * 20  # 60 dots of a few dozen pixels each
    errors = console_errors(browser)
    assert errors == [] or all("/api/duplicates" in e and "503" in e for e in errors)


def test_phone_sized_screen(site, tmp_path, mini_collection):
    driver = start_chromium(str(tmp_path / "phone"))
    try:
        emulate_phone(driver, 390, 844)
        driver.get(site + "/#/similar/3")
        wait_for_thumbnails(driver, "#results img", 2)
        assert driver.execute_script("return window.innerWidth") == 390
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= 390, "no sideways scrolling on a phone"
        cards = driver.find_elements(By.CSS_SELECTOR, "#results .card")
        assert cards[0].size["width"] < 200  # two columns
        assert console_errors(driver) == []
    finally:
        driver.quit()


def test_api_page_renders_from_local_files(site, browser):
    browser.get(site + "/docs")
    wait_until(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, ".opblock")) >= 8)
    summaries = browser.execute_script(
        "return Array.from(document.querySelectorAll('.opblock-summary-path')).map(e => e.textContent)")
    assert any("/api/search" in s for s in summaries)
    assert console_errors(browser) == []
