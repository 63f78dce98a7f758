"""Headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by Selenium: for the
real-browser test and the README screenshot, so both see the page as a person's browser does.

    python -m tools.browser --db demo_data/images.db --query demo_data/images/chelsea/original.jpg \\
        --out docs/figures/webapp.png
"""
from __future__ import annotations

import argparse
import io
import shutil
import tempfile
import time

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from fileio import atomic_write
from webapp.server import create_app, serving

# Flags that work in a container as root, offline: no sandbox (needs user namespaces),
# no GPU, and none of the background traffic a fresh profile would start.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars")
BINARIES = ("chromium", "chromium-browser", "google-chrome")


def find_browser() -> tuple[str | None, str | None]:
    """(browser, driver) executables, either None when missing."""
    browser = next((found for name in BINARIES if (found := shutil.which(name))), None)
    return browser, shutil.which("chromedriver")


def start_chromium(profile_dir: str, width: int = 1280, height: int = 900, scale: float = 1.0) -> webdriver.Chrome:
    """A headless Chromium with a fresh profile in ``profile_dir`` that records the console log."""
    browser, driver = find_browser()
    if not browser or not driver:
        raise FileNotFoundError("chromium or chromedriver is not installed: "
                                "apt-get install -y chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(f"--force-device-scale-factor={scale}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options=options, service=Service(driver))


def emulate_phone(driver: webdriver.Chrome, width: int = 390, height: int = 844) -> None:
    """A phone-sized viewport (headless windows cannot be narrower than about 500 px)."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": True})


def wait_for_thumbnails(driver: webdriver.Chrome, selector: str, count: int, timeout: float = 60) -> list:
    """The first ``count`` images matching ``selector``, once every one of them has loaded."""
    script = ("return Array.from(document.querySelectorAll(arguments[0])).slice(0, arguments[1])"
              ".map(img => img.complete && img.naturalWidth > 0)")

    def loaded(d):
        states = d.execute_script(script, selector, count)
        return len(states) >= count and all(states)

    WebDriverWait(driver, timeout).until(loaded)
    return driver.find_elements(By.CSS_SELECTOR, selector)[:count]


def console_errors(driver: webdriver.Chrome) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def screenshot(db: str, query: str, out: str, width: int = 1400, height: int = 1010, phone: bool = False) -> None:
    """Search the collection by ``query`` in the page and save a PNG of what the browser shows
    (``phone``: a 390x844 phone screen at twice the pixels)."""
    with serving(create_app(db, warm=True)) as url, tempfile.TemporaryDirectory() as profile:
        driver = start_chromium(profile, width, height)
        try:
            if phone:
                emulate_phone(driver, 390, 844)
            driver.get(url + "/")
            WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#mode option"))
            driver.find_element(By.ID, "files").send_keys(query)
            wait_for_thumbnails(driver, "#results img", 4 if phone else 12)  # lazy: a phone shows a few
            time.sleep(0.3)  # let the last paint settle
            png = driver.get_screenshot_as_png()
        finally:
            driver.quit()
    # A 256-colour palette (dithered) keeps the README's picture at a third of the size.
    picture = Image.open(io.BytesIO(png)).convert("RGB")
    picture = picture.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
    with atomic_write(out) as fh:
        picture.save(fh, "PNG", optimize=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Screenshot of the web app's result page")
    parser.add_argument("--db", required=True)
    parser.add_argument("--query", required=True, help="the photo to upload")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--phone", action="store_true", help="a 390x844 phone screen instead of a 1400 px window")
    args = parser.parse_args(argv)
    screenshot(args.db, args.query, args.out, phone=args.phone)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
