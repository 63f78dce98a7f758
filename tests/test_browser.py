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
    assert Select(browser.find_element(By.ID, "mode")).first_selected_option.text == "Content"

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
    assert not browser.find_element(By.ID, "metric").is_displayed()  # under "Advanced"
    Select(browser.find_element(By.ID, "mode")).select_by_visible_text("Colours")
    metrics = [o.get_attribute("value") for o in Select(browser.find_element(By.ID, "metric")).options]
    assert metrics[0] == "bhattacharyya" and "hamming" not in metrics
    wait_until(browser, lambda: "mode=rgb" in browser.current_url and result_paths(browser) != embeddings)
    Select(browser.find_element(By.ID, "mode")).select_by_visible_text("Layout / exact copies")
    assert [o.get_attribute("value") for o in Select(browser.find_element(By.ID, "metric")).options] == ["hamming"]
    wait_until(browser, lambda: "mode=phash" in browser.current_url)
    browser.find_element(By.CSS_SELECTOR, ".advanced summary").click()
    Select(browser.find_element(By.ID, "hash")).select_by_value("dhash")
    wait_until(browser, lambda: "mode=dhash" in browser.current_url)
    browser.refresh()  # the state is in the URL
    wait_until(browser, lambda: Select(browser.find_element(By.ID, "mode")).first_selected_option.text
               == "Layout / exact copies" and Select(browser.find_element(By.ID, "hash")).first_selected_option
               .get_attribute("value") == "dhash")
    wait_for_thumbnails(browser, "#results img", 4)
    assert console_errors(browser) == []


def test_viewer_opens_steps_and_closes(site, browser):
    browser.get(site + "/#/similar/1")
    wait_for_thumbnails(browser, "#results img", 4)
    hits = browser.execute_script("return current.hits.map(h => h.id)")
    browser.find_elements(By.CSS_SELECTOR, "#results .view")[0].click()
    viewer = browser.find_element(By.ID, "viewer")
    wait_until(browser, lambda: viewer.is_displayed() and f"view={hits[0]}" in browser.current_url)
    wait_for_thumbnails(browser, "#viewer-img", 1)
    wait_until(browser, lambda: "pixels" in browser.find_element(By.ID, "viewer-facts").text)
    first_name = browser.find_element(By.ID, "viewer-name").text
    assert browser.find_element(By.ID, "viewer-pos").text == f"1 of {len(hits)}"
    browser.find_element(By.TAG_NAME, "body").send_keys("\ue014")  # the right arrow
    wait_until(browser, lambda: f"view={hits[1]}" in browser.current_url)
    wait_until(browser, lambda: browser.find_element(By.ID, "viewer-name").text not in ("", first_name))
    assert browser.find_element(By.ID, "viewer-pos").text == f"2 of {len(hits)}"
    grid = result_paths(browser)
    browser.find_element(By.TAG_NAME, "body").send_keys("\ue00c")  # Esc
    wait_until(browser, lambda: not viewer.is_displayed() and "view=" not in browser.current_url)
    assert result_paths(browser) == grid  # closing did not search again
    browser.find_elements(By.CSS_SELECTOR, "#results .view")[2].click()
    wait_until(browser, lambda: viewer.is_displayed())
    browser.back()  # Back closes it too
    wait_until(browser, lambda: not viewer.is_displayed() and "#/similar/1" in browser.current_url)
    browser.find_elements(By.CSS_SELECTOR, "#results .view")[0].click()
    wait_until(browser, lambda: viewer.is_displayed())
    browser.find_element(By.ID, "viewer-more").click()  # "More like this" searches by it
    wait_until(browser, lambda: f"#/similar/{hits[0]}" in browser.current_url and not viewer.is_displayed())
    wait_until(browser, lambda: str(hits[0]) != "1" and browser.find_element(By.ID, "query").is_displayed())
    assert console_errors(browser) == []


def test_labels_the_similar_line_and_more_or_less_like_this(site, browser):
    browser.get(site + "/#/similar/3")
    wait_for_thumbnails(browser, "#results img", 4)
    labels = browser.execute_script(
        "return Array.from(document.querySelectorAll('#results .card .score')).map(e => e.textContent)")
    assert labels and set(labels) <= {"same picture", "edited copy", "similar", "loosely related", "unrelated",
                                      "in your collection"}
    assert "distance" in browser.find_element(By.CSS_SELECTOR, "#results .card .score").get_attribute("title")
    order = browser.execute_script(  # the line follows the last result that is at least "similar"
        "return Array.from(document.querySelectorAll('#results > li')).map(li => li.classList.contains('divider')"
        " ? '|' : li.querySelector('.score').textContent)")
    assert order.count("|") == 1
    line = order.index("|")
    assert all(label in ("same picture", "edited copy", "similar") for label in order[:line])
    assert all(label in ("loosely related", "unrelated") for label in order[line + 1:])
    first = result_paths(browser)
    browser.find_elements(By.CSS_SELECTOR, "#results .mark.minus")[0].click()
    wait_until(browser, lambda: "unlike=" in browser.current_url and result_paths(browser) != first)
    assert first[0] not in result_paths(browser)  # marked −: left out
    wait_for_thumbnails(browser, "#results img", 4)
    second = result_paths(browser)
    browser.find_elements(By.CSS_SELECTOR, "#results .mark.plus")[3].click()
    wait_until(browser, lambda: "like=" in browser.current_url.replace("unlike=", "")
               and result_paths(browser) != second)
    assert "marked +" in browser.find_element(By.ID, "status").text
    assert browser.find_elements(By.CSS_SELECTOR, '#results .mark.plus[aria-pressed="true"]')
    browser.back()  # Back undoes the last mark
    wait_until(browser, lambda: result_paths(browser) == second)
    assert console_errors(browser) == []


@pytest.fixture(scope="module")
def dated_site(mini_collection, tmp_path_factory):
    """The mini collection with EXIF dates: the even ids before 2010, the odd ones after."""
    from db import connect
    from db.connection import copy_database
    from db.exif import store_exif
    base = tmp_path_factory.mktemp("dated_site")
    copy_database(mini_collection["db"], base / "dated.db")
    conn = connect(base / "dated.db")
    ids = [i for (i,) in conn.execute("SELECT id FROM images")]
    store_exif(conn, [(i, (f"{2004 if i % 2 == 0 else 2016}-03-0{1 + i % 9}T09:00:00", "Canon", "EOS", None, None, 1))
                      for i in ids])
    conn.close()
    with serving(create_app(base / "dated.db", thumbs_dir=str(base / "thumbs"))) as url:
        yield url


def test_folder_and_date_filters_and_sort_change_the_results(dated_site, browser):
    browser.get(dated_site + "/#/similar/2?k=50")
    wait_for_thumbnails(browser, "#results img", 4)
    everything = result_paths(browser)
    assert len({p.split("/")[0] for p in everything}) > 2
    browser.find_element(By.CSS_SELECTOR, "#filters summary").click()
    folder = browser.find_element(By.ID, "folder")
    folder.send_keys("coffee\n")
    browser.execute_script("arguments[0].dispatchEvent(new Event('change'))", folder)
    wait_until(browser, lambda: "folder=coffee" in browser.current_url and result_paths(browser) != everything)
    wait_until(browser, lambda: result_paths(browser) and all(p.startswith("coffee/") for p in result_paths(browser)))
    folder.clear()
    browser.execute_script("arguments[0].dispatchEvent(new Event('change'))", folder)
    wait_until(browser, lambda: "folder=" not in browser.current_url and result_paths(browser) == everything)
    browser.execute_script("const e = document.getElementById('after'); e.value = '2010-01-01';"
                           "e.dispatchEvent(new Event('change'))")
    wait_until(browser, lambda: "after=2010-01-01" in browser.current_url and result_paths(browser) != everything)
    ids = browser.execute_script("return current.hits.map(h => h.id)")
    assert ids and all(i % 2 == 1 for i in ids)  # only the pictures dated after 2010
    Select(browser.find_element(By.ID, "sort")).select_by_value("date")
    wait_until(browser, lambda: "sort=date" in browser.current_url)
    dates = browser.execute_script("return current.hits.map(h => h.date)")
    wait_until(browser, lambda: browser.execute_script("return current.hits.map(h => h.date)") ==
               sorted(browser.execute_script("return current.hits.map(h => h.date)"), reverse=True))
    assert dates
    assert console_errors(browser) == []


def test_a_result_clicked_at_the_bottom_scrolls_to_the_top(site, browser):
    browser.get(site + "/#/similar/2?k=50")
    wait_for_thumbnails(browser, "#results img", 4)
    first = result_paths(browser)
    last = browser.find_elements(By.CSS_SELECTOR, "#results a.card")[-1]
    browser.execute_script("arguments[0].scrollIntoView()", last)
    assert browser.execute_script("return window.scrollY") > 300
    last.click()
    wait_until(browser, lambda: result_paths(browser) != first)
    assert browser.execute_script("return window.scrollY") == 0
    query_box = browser.find_element(By.ID, "query").rect
    assert query_box["y"] + query_box["height"] <= browser.execute_script("return window.innerHeight")


def test_searching_dims_the_grid_and_an_error_drops_the_old_query(site, browser, tmp_path):
    browser.get(site + "/#/similar/1")
    wait_for_thumbnails(browser, "#results img", 4)
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": 1500, "downloadThroughput": -1, "uploadThroughput": -1})
    browser.find_elements(By.CSS_SELECTOR, "#results a.card")[1].click()
    wait_until(browser, lambda: "busy" in browser.find_element(By.ID, "results").get_attribute("class"), 10)
    assert browser.find_element(By.ID, "spinner").is_displayed()
    wait_until(browser, lambda: "busy" not in browser.find_element(By.ID, "results").get_attribute("class"))
    assert not browser.find_element(By.ID, "spinner").is_displayed()
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
    assert browser.find_element(By.ID, "query").is_displayed()
    bad = tmp_path / "notes.jpg"
    bad.write_bytes(b"not a photo at all")
    browser.find_element(By.ID, "files").send_keys(str(bad))
    wait_until(browser, lambda: browser.find_element(By.ID, "error").is_displayed())
    assert not browser.find_element(By.ID, "query").is_displayed()  # not the previous query's bar


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


def test_similarity_map_legend_zoom_and_a_preview_beside_the_point(site, browser):
    browser.get(site + "/#/map")
    wait_until(browser, lambda: "of 60 images" in browser.find_element(By.ID, "map-status").text)
    assert browser.find_element(By.CSS_SELECTOR, '.tabs a[data-view="map"]').text == "Similarity map"
    legend = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#map-legend li")]
    assert 2 <= len(legend) <= 9 and all("·" in item for item in legend)
    point = browser.execute_script("const p = mapState.points[7]; return [p.sx, p.sy]")
    browser.find_element(By.ID, "map-zoom-in").click()
    assert browser.execute_script("const p = mapState.points[7]; return [p.sx, p.sy]") != point
    browser.find_element(By.ID, "map-reset").click()
    canvas = browser.find_element(By.ID, "map")
    for k in range(0, 60, 7):  # hover a few points: the preview is beside each, never over it
        x, y = browser.execute_script(f"const p = mapState.points[{k}]; return [p.sx, p.sy]")
        box = canvas.rect
        browser.execute_script("arguments[0].dispatchEvent(new PointerEvent('pointermove', {clientX: arguments[1],"
                               " clientY: arguments[2], pointerType: 'mouse', bubbles: true}))", canvas,
                               box["x"] + x, box["y"] + y)
        tip = browser.find_element(By.ID, "map-tip")
        assert tip.is_displayed()
        left, top = tip.rect["x"] - box["x"], tip.rect["y"] - box["y"]
        inside = left <= x <= left + tip.rect["width"] and top <= y <= top + tip.rect["height"]
        assert not inside, f"the preview covers point {k}"
    assert console_errors(browser) == []


def test_phone_taps_the_map_to_preview_then_to_search(site, tmp_path):
    driver = start_chromium(str(tmp_path / "phone-map"))
    try:
        emulate_phone(driver, 390, 844)
        driver.get(site + "/#/map")
        wait_until(driver, lambda: "of 60 images" in driver.find_element(By.ID, "map-status").text)
        canvas = driver.find_element(By.ID, "map")
        x, y = driver.execute_script("const p = mapState.points[3]; return [p.sx, p.sy]")
        tap = ("const [c, x, y] = arguments; const b = c.getBoundingClientRect();"
               "for (const t of ['pointerdown', 'pointerup']) c.dispatchEvent(new PointerEvent(t, {clientX: b.left + x,"
               " clientY: b.top + y, pointerType: 'touch', bubbles: true}));")
        driver.execute_script(tap, canvas, x, y)
        assert driver.find_element(By.ID, "map-tip").is_displayed() and "#/map" in driver.current_url
        assert "tap again" in driver.find_element(By.ID, "map-tip").text
        driver.execute_script(tap, canvas, x, y)
        wait_until(driver, lambda: "#/similar/" in driver.current_url)
        assert driver.execute_script("return document.documentElement.scrollWidth") <= 390
    finally:
        driver.quit()


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
        header = driver.find_element(By.CSS_SELECTOR, "header.bar").size["height"]
        assert header < 60, "the header is one line on a phone"
        clipped = driver.execute_script(
            "return Array.from(document.querySelectorAll('header.bar > *'))"
            ".filter(e => e.scrollWidth > e.clientWidth + 1"
            " || e.getBoundingClientRect().right > window.innerWidth).length")
        assert clipped == 0, "nothing in the header is cut off"
        small = driver.execute_script(
            "return Array.from(document.querySelectorAll("
            "'header a, header button, select, button.plain, #results .view'))"
            ".filter(e => e.offsetParent)"
            ".filter(e => { const r = e.getBoundingClientRect(); return r.width < 44 || r.height < 44; })"
            ".map(e => e.outerHTML.slice(0, 80))")
        assert small == [], "touch targets of at least 44 px"
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
