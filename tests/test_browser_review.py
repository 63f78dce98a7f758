"""The Duplicates page's actions in a real browser (headless Chromium, as tests/test_browser.py):
"Not duplicates", then a reload: the group is gone; "Move the copies to the review folder": the
files are there with the same checksums; "Undo": they are back. On a copy of the mini collection."""
import os
import shutil

import pytest

selenium = pytest.importorskip("selenium", reason="selenium is not installed (pip install -r requirements.txt)")
from selenium.webdriver.common.by import By  # noqa: E402  (after the skip above)
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from test_webapp import copy_db  # noqa: E402

from samples import checksums  # noqa: E402
from tools.browser import console_errors, find_browser, start_chromium, wait_for_thumbnails  # noqa: E402
from webapp.server import create_app, serving  # noqa: E402

BROWSER, DRIVER = find_browser()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not (BROWSER and DRIVER),
    reason="browser test skipped: Chromium or chromedriver missing; install them with "
           "`apt-get install -y chromium chromium-driver` (.ci/run does)")]


def wait_until(driver, condition, timeout=60):
    return WebDriverWait(driver, timeout).until(lambda d: condition())


def keepers(driver):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#dup-groups .group')).map(g => g.dataset.keep)")


def flipped_shown(driver):
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#dup-groups .card .path'))"
        ".filter(p => p.textContent.endsWith('flipped.jpg')).length")


def click_in_group(driver, keep, label):
    driver.execute_script(
        "const g = document.querySelector(`#dup-groups .group[data-keep='${arguments[0]}']`);"
        "Array.from(g.querySelectorAll(':scope > .dup-actions button'))"
        ".find(b => b.textContent === arguments[1]).click();",
        keep, label)


def test_not_duplicates_move_and_undo_in_the_page(mini_collection, tmp_path):
    photos = tmp_path / "photos"
    shutil.copytree(mini_collection["images"], photos)
    db_copy = copy_db(mini_collection["db"], tmp_path / "copy.db", photos)
    review = tmp_path / "review"
    before = checksums(photos)
    app = create_app(db_copy, thumbs_dir=str(tmp_path / "thumbs"), review_dir=str(review))
    driver = start_chromium(str(tmp_path / "profile"), 1280, 1000)
    try:
        with serving(app) as site:
            driver.get(site + "/#/duplicates")
            wait_until(driver, lambda: len(keepers(driver)) == 10)
            wait_for_thumbnails(driver, "#dup-groups img", 4)
            # Mirrored copies are copies when asked for (the checkbox): then all 10 join their groups.
            # Upright, only those of pictures too plain to align stay (the embeddings decide there).
            upright = flipped_shown(driver)
            assert upright < 5
            driver.find_element(By.ID, "dup-any-orientation").click()
            wait_until(driver, lambda: flipped_shown(driver) == 10 and len(keepers(driver)) == 10)
            driver.find_element(By.ID, "dup-any-orientation").click()
            wait_until(driver, lambda: flipped_shown(driver) == upright)
            first, second = keepers(driver)[:2]
            click_in_group(driver, first, "Not duplicates")
            wait_until(driver, lambda: "Remembered" in driver.find_element(By.ID, "dup-status").text)
            driver.refresh()
            wait_until(driver, lambda: len(keepers(driver)) == 9)
            assert first not in keepers(driver)
            click_in_group(driver, second, "Move the copies to the review folder")
            wait_until(driver, lambda: "Moved" in driver.find_element(By.ID, "dup-status").text)
            moved = checksums(review)
            assert len(moved) >= 4 and all(before[path] == digest for path, digest in moved.items())
            assert not any(os.path.exists(photos / path) for path in moved)
            undo = wait_until(driver, lambda: driver.find_elements(By.CSS_SELECTOR, "#dup-moves .dup-undo"))
            undo[0].click()
            wait_until(driver, lambda: "are back" in driver.find_element(By.ID, "dup-status").text)
            assert checksums(photos) == before and checksums(review) == {}
            wait_until(driver, lambda: second in keepers(driver))
            # Compare: two members side by side, then one at a time.
            driver.find_element(By.CSS_SELECTOR, "#dup-groups .group .dup-actions button[data-act='compare']").click()
            wait_until(driver, lambda: len(driver.find_elements(By.CSS_SELECTOR, "#dup-compare figure")) == 2)
            driver.find_element(By.CSS_SELECTOR, "#dup-compare button[data-act='swap']").click()
            wait_until(driver, lambda: len(driver.find_elements(By.CSS_SELECTOR, "#dup-compare figure")) == 1)
            driver.find_element(By.TAG_NAME, "body").send_keys("\ue00c")  # Esc closes the comparison
            wait_until(driver, lambda: not driver.find_element(By.ID, "dup-compare").is_displayed())
            # The viewer from a group: its members in turn, Esc closes it, the groups stay.
            groups = keepers(driver)
            driver.find_element(By.CSS_SELECTOR, "#dup-groups .group img.openable").click()
            wait_until(driver, lambda: driver.find_element(By.ID, "viewer").is_displayed())
            assert "view=" in driver.current_url and driver.find_element(By.ID, "viewer-pos").text.startswith("1 of ")
            driver.find_element(By.TAG_NAME, "body").send_keys("\ue014")  # →
            wait_until(driver, lambda: driver.find_element(By.ID, "viewer-pos").text.startswith("2 of "))
            driver.find_element(By.TAG_NAME, "body").send_keys("\ue00c")  # Esc
            wait_until(driver, lambda: not driver.find_element(By.ID, "viewer").is_displayed())
            assert keepers(driver) == groups and "#/duplicates" in driver.current_url
            assert console_errors(driver) == []
    finally:
        driver.quit()
