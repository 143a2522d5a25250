"""The HTML report from a real store, opened in headless Chromium (Debian's, at /usr/bin/chromium).

The page must work offline (no request but the file itself), log no error, render every view, and
show hostile text as text without running it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from effbench.reports.html import VIEW_IDS
from tests.reports.conftest import XSS_MODEL, XSS_TAG, XSS_WARNING

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = pytest.mark.slow  # the store behind the page comes from real exports and runs (conftest)

PLOT_VIEWS = ["speed-accuracy", "roofline", "efficiency-gap", "where-time-goes", "backend-matrix", "stability"]

sync_api = pytest.importorskip("playwright.sync_api")
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} not installed (scripts/setup-system.sh installs it)", allow_module_level=True)


class Page:
    """The opened report and everything it did while loading."""

    def __init__(self, page, url: str):
        self.page = page
        self.url = url
        self.console: list[tuple[str, str]] = []
        self.requests: list[str] = []
        self.dialogs: list[str] = []


@pytest.fixture(scope="module")
def opened(report_html: Path):
    url = report_html.resolve().as_uri()
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        state = Page(page, url)
        page.on("console", lambda m: state.console.append((m.type, m.text)))
        page.on("pageerror", lambda e: state.console.append(("pageerror", str(e))))
        page.on("request", lambda r: state.requests.append(r.url))

        def on_dialog(d):
            state.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", on_dialog)
        page.goto(url)
        page.wait_for_selector("body[data-plots-ready]", timeout=60_000)
        page.wait_for_timeout(300)  # let anything that would fire late (an injected handler) fire
        yield state
        browser.close()


def test_no_console_errors_and_no_network(opened):
    errors = [m for m in opened.console if m[0] in ("error", "pageerror")]
    assert errors == []
    others = [u for u in opened.requests if u != opened.url and not u.startswith("data:")]
    assert others == [], "the report must not fetch anything"
    assert opened.url in opened.requests


def test_self_contained_file(report_html: Path):
    text = report_html.read_text()
    assert text.count("<script src") == 0 and 'rel="stylesheet"' not in text
    # plotly.js is embedded exactly once
    assert text.count("Plotly.newPlot") >= 1 and text.count("plotly.js v") <= 2


def test_every_view_present_and_rendered(opened):
    page = opened.page
    toc = page.eval_on_selector_all("nav.toc a", "as => as.map(a => a.getAttribute('href'))")
    assert toc == [f"#{v}" for v in VIEW_IDS]
    for view in VIEW_IDS:
        section = page.query_selector(f"section#{view}")
        assert section is not None, view
        assert section.query_selector("h2").inner_text().strip()
        assert section.query_selector("p.how").inner_text().strip()
    for view in PLOT_VIEWS:
        n = page.eval_on_selector_all(f"section#{view} .main-svg", "els => els.length")
        assert n > 0, f"{view}: no rendered plot"
    assert page.eval_on_selector_all("section#environment table tbody tr", "r => r.length") >= 1
    assert page.eval_on_selector_all("section#results table tbody tr", "r => r.length") >= 1


def test_header_summarises_the_runs(opened, report_store):
    header = opened.page.inner_text("header.top")
    assert f"{len(report_store.records)} run(s)" in header
    assert "cpu" in header and "UTC" in header


def test_speed_accuracy_has_one_point_per_result(opened, report_store):
    js = """id => document.getElementById(id).data
        .filter(t => t.meta && t.meta.role === 'points').reduce((n, t) => n + t.x.length, 0)"""
    assert opened.page.evaluate(js, "fig-speed-latency") == report_store.speed_points >= 5
    fronts = opened.page.evaluate(
        "() => document.getElementById('fig-speed-latency').data.filter(t => t.meta && t.meta.role === 'pareto').length"
    )
    assert fronts == 1  # one device


def test_matrix_shows_failed_cell_reason(opened, report_store):
    failed = next(r for r in report_store.records if r["status"] != "ok")
    section = opened.page.inner_text("section#backend-matrix")
    assert failed["error"] in section
    svg_text = opened.page.eval_on_selector_all(
        "section#backend-matrix svg text", "ts => ts.map(t => t.textContent).join('\\n')"
    )
    assert f"{failed['status']}: precision" in svg_text
    speedups = opened.page.evaluate(
        "() => document.getElementById('fig-matrix-speedup').data[0].text.flat().filter(t => t.includes('×'))"
    )
    assert "1× (reference)" in speedups


def test_analysis_views_drawn_from_analysis(opened, report_store):
    page = opened.page
    roles = page.evaluate("() => document.getElementById('fig-roofline-0').data.map(t => t.meta.role)")
    assert "roof" in roles and "models" in roles and "layers" in roles
    assert page.eval_on_selector_all("section#roofline .updatemenu-container", "e => e.length") == 1
    measured = page.evaluate(
        "() => document.getElementById('fig-timeshare').data.filter(t => t.meta.role === 'measured').length"
    )
    assert measured >= (1 if report_store.profiled else 0)
    bound = page.evaluate(
        "() => document.getElementById('fig-timeshare').data.filter(t => t.meta.role === 'bound').length"
    )
    assert bound >= 1
    assert page.eval_on_selector_all("section#where-time-goes details table tbody tr", "r => r.length") >= 10
    gap_roles = page.evaluate("() => document.getElementById('fig-gap').data.map(t => t.meta.role)")
    assert {"ideal", "measured", "connector"} <= set(gap_roles)


def test_stability_has_a_series_per_result(opened, report_store):
    with_samples = sum(
        r["status"] == "ok" and not r["profiled"] and bool(r.get("samples_ms")) for r in report_store.records
    )
    n = opened.page.evaluate("() => document.getElementById('fig-stability-series').data.length")
    assert n == with_samples
    assert opened.page.evaluate("() => document.getElementById('fig-stability-dist').data[0].type") == "violin"


def test_hostile_text_is_shown_not_run(opened):
    page = opened.page
    assert opened.dialogs == []
    body = page.inner_text("body")
    for payload in (XSS_MODEL, XSS_TAG, XSS_WARNING):
        assert payload in body
    svg_text = page.eval_on_selector_all("section#speed-accuracy svg text", "ts => ts.map(t => t.textContent)")
    assert XSS_MODEL in svg_text  # the point label in the plot, as literal text
    # only the report's own three scripts exist, and nothing became an <img>
    assert page.eval_on_selector_all("script", "s => s.length") == 3
    assert page.eval_on_selector_all("img", "i => i.length") == 0


def test_screenshots_of_each_view_are_not_blank(opened, tmp_path):
    from PIL import Image, ImageStat

    page = opened.page
    page.add_style_tag(content="nav.toc { position: static !important; }")  # no sticky bar over the shots
    for view in VIEW_IDS:
        path = tmp_path / f"{view}.png"
        page.query_selector(f"section#{view}").screenshot(path=str(path))
        img = Image.open(path).convert("RGB")
        assert img.width > 600 and img.height > 80, view
        colours = img.getcolors(maxcolors=1 << 20)
        assert colours is not None and len(colours) >= (40 if view in PLOT_VIEWS else 8), view
        assert max(ImageStat.Stat(img).stddev) > 8, view
