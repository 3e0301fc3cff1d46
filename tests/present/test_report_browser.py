"""The default report as a reader's browser shows it: headless Chromium (Debian's chromium) driven by Playwright.

Checks: no console errors and no network requests; no horizontal overflow at 1280 px with every section open;
every figure and every table-of-contents target present and visible; the page under 2 MB. Printed (Chromium's
"save as PDF", read back with poppler's pdftotext): every analysis section is in the PDF, and in print layout at
A4's printable width every table, fit and figure fits the page.
"""

import shutil
import subprocess

import pytest

# the page of the default run (conftest.default_run: the whole workflow) in a browser
pytestmark = [pytest.mark.browser, pytest.mark.workflow]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip
MAX_BYTES = 2 * 1024 * 1024
PDFTOTEXT = shutil.which("pdftotext")
A4_PRINT_WIDTH = 718  # CSS px: 210 mm less Chromium's default 0.4 in margins (Letter's is wider, 740)


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


def test_default_report_prints_every_section(report, tmp_path):
    """Caught: printing or saving the report as PDF lost every analysis section (collapsed <details>, no print
    stylesheet): the PDF had the headline and the comparison only. Expected: one "Row account" and one fit
    ("Model Results:") per analysis section of the page, and the nested excluded-row tables."""
    if CHROMIUM is None:
        pytest.skip("headless Chromium not found: apt-get install -y chromium (the browser test needs it)")
    if PDFTOTEXT is None:
        pytest.skip("pdftotext not found: apt-get install -y poppler-utils (the print test reads the PDF with it)")
    pdf = tmp_path / "report.pdf"
    subprocess.run([CHROMIUM, "--headless", *ARGS, "--no-pdf-header-footer", f"--print-to-pdf={pdf}",
                    report.as_uri()], check=True, capture_output=True, timeout=600)  # fmt: skip
    text = subprocess.run([PDFTOTEXT, str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    page = report.read_text()
    sections = page.count('<details class="analysis"')
    assert sections >= 5
    assert text.count("Row account") == sections
    assert text.count("Model Results:") >= sections
    assert text.count(" excluded rows") == page.count(" excluded rows</summary>") > 0  # nested sections too


def test_print_layout_opens_every_section_and_fits_the_page(report, browser):
    """Caught: no print stylesheet, so wide tables (influence, row account) were cut at the page margin and every
    <details> printed closed. In print media at A4's printable width: the beforeprint handler opens every section
    (afterprint closes them again), nothing is wider than the page, figures and table rows are not split."""
    page = browser.new_page(viewport={"width": A4_PRINT_WIDTH, "height": 1000})
    page.emulate_media(media="print")
    page.goto(report.as_uri())
    closed = "document.querySelectorAll('details:not([open])').length"
    before = page.evaluate(closed)
    assert before > 0
    page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
    assert page.evaluate(closed) == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= A4_PRINT_WIDTH
    too_wide = page.evaluate("""[...document.querySelectorAll('table, pre, figure')]
        .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth + 0.5)
        .map(e => e.tagName + ': ' + e.textContent.slice(0, 80))""")
    assert too_wide == []
    for selector in ("figure", "tr", "pre"):
        assert page.evaluate(f"getComputedStyle(document.querySelector('{selector}')).breakInside") == "avoid"
    page.evaluate("window.dispatchEvent(new Event('afterprint'))")
    assert page.evaluate(closed) == before
