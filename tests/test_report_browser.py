"""The default report as a reader's browser shows it: headless Chromium (Debian's chromium) driven by Playwright.

Checks: no console errors and no network requests; no horizontal overflow at 1280 px with every section open;
every figure and every table-of-contents target present and visible; the page under 2 MB.
"""

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
MAX_BYTES = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def report(default_run):
    return default_run / "results/report.html"


def test_default_report_is_lean(report):
    assert report.stat().st_size < MAX_BYTES


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("headless Chromium not found: apt-get install -y chromium (the browser test needs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (in the [test] extra)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser
        browser.close()


def test_default_report_in_chromium(report, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems, requests = [], []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []

    # the first screen answers the question: headline sentences and the atlas are visible without a click
    assert page.locator("#headline ul.lede li").count() >= 1
    assert page.locator("#headline figure svg").first.is_visible()

    # every table-of-contents link leads to a visible target (collapsed analyses open when linked to)
    links = page.locator("nav a[href^='#']")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    assert len(hrefs) >= 5
    for href in hrefs:
        page.locator(f"nav a[href='{href}']").click()
        target = page.locator(f"[id='{href[1:]}']")
        assert target.count() == 1, href
        assert target.is_visible(), href

    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    figures = page.locator("figure svg")
    assert figures.count() > 20
    for i in range(figures.count()):
        box = figures.nth(i).bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 50, i
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, f"horizontal overflow: page is {width} px wide"
    assert page.locator("script").count() == 1  # ours only: no user string became markup
    assert problems == []
