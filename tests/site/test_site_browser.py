"""The built site in headless Chromium (Debian's): a pasted URL opens the same filtered view, A|B compares
what it names, plots render, and nothing is fetched but the site's own files."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from tests.reports.test_report_browser import CHROMIUM, CHROMIUM_ARGS

sync_api = pytest.importorskip("playwright.sync_api")
if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} not installed (scripts/setup-system.sh installs it)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Opened:
    def __init__(self, browser, url: str):
        self.page = browser.new_page(viewport={"width": 1300, "height": 900})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(url)
        self.page.wait_for_selector("body[data-ready]", timeout=60_000)

    def shown(self) -> int:
        return int(self.page.get_attribute("body", "data-shown"))


def _url(site, path: str, suffix: str = "") -> str:
    return (site.path / path).resolve().as_uri() + suffix


def _commit(run: int) -> str:
    return hashlib.sha1(f"commit{run}".encode()).hexdigest()  # as benchmarks/site_scale.py writes them


def test_filters_in_the_url_open_the_same_view(built_site, browser):
    url = _url(built_site, "index.html", "?model=efficientvit_m0#backend=onnxruntime&device=cpu")
    o = Opened(browser, url)
    assert o.shown() == 1
    visible = o.page.locator("tr.cell:visible")
    assert visible.count() == 1 and visible.first.get_attribute("data-model") == "efficientvit_m0"
    assert o.page.locator('select[data-filter="model"]').input_value() == "efficientvit_m0"
    # a selection made on the page goes into the address, and that address reopens the same view
    o.page.select_option('select[data-filter="model"]', "")
    o.page.select_option('select[data-filter="batch"]', "1")
    assert o.shown() == len(built_site.store.cells)
    o.page.select_option('select[data-filter="model"]', "resnet50")
    pasted = o.page.url
    assert "model=resnet50" in pasted and "batch=1" in pasted
    again = Opened(browser, pasted)
    assert again.shown() == 1 and again.page.locator("tr.cell:visible").first.get_attribute("data-model") == "resnet50"
    assert o.errors == [] and again.errors == []


def test_date_range_filter_hides_older_cells(built_site, browser):
    o = Opened(browser, _url(built_site, "index.html", "#from=2030-01-01"))
    assert o.shown() == 0
    o = Opened(browser, _url(built_site, "index.html", "#to=2026-06-10"))
    assert o.shown() == len(built_site.store.cells)


def test_two_cells_compared_name_every_difference(built_site, browser):
    a, b = built_site.store.cells[0], built_site.store.cells[1]
    o = Opened(browser, _url(built_site, "index.html", f"#a={a['key']}&b={b['key']}"))
    o.page.wait_for_selector("#compare table", timeout=30_000)
    text = o.page.locator("#compare").inner_text()
    assert "difference(s)" in text and a["model"] in text and b["model"] in text
    rows = o.page.locator("#compare tbody tr").all_inner_texts()
    assert any(r.startswith("model") for r in rows)
    assert not any(r.startswith("device") for r in rows)  # the same device is no difference
    o = Opened(browser, _url(built_site, "index.html", f"#a={a['key']}&b=0000000000000000"))
    o.page.wait_for_function("document.getElementById('compare').textContent.includes('No cell')")
    assert "0000000000000000" in o.page.locator("#compare").inner_text()


def test_cell_history_a_b_and_date_range_from_the_url(built_site, browser):
    stepped = next(c for c in built_site.store.cells if c["step"] > 1)
    url = _url(built_site, f"cells/{stepped['key']}.html", f"#a={_commit(5)[:10]}&b={_commit(15)[:10]}&from=2026-06-03")
    o = Opened(browser, url)
    assert o.shown() == 16  # runs every 12 h from 2026-06-01: 4 before June 3rd are hidden
    assert o.page.locator("svg.history circle.run:visible").count() == 16
    text = o.page.locator("#ab").inner_text()
    ratio = float(text.split("B / A median ratio ")[1].split()[0])
    assert abs(ratio - stepped["step"]) < 0.08, text  # A before the generated step, B after it
    # and it is the ratio of exactly the two runs the URL names, as the cell's data file holds them
    points = json.loads((built_site.path / "data" / "cells" / f"{stepped['key']}.json").read_text())["points"]
    median = {p["commit"][:10]: p["median"] for p in points}
    assert ratio == round(median[_commit(15)[:10]] / median[_commit(5)[:10]], 3), text
    assert o.page.locator("tr.run.side-a").count() == 1 and o.page.locator("tr.run.side-b").count() == 1
    assert o.page.locator("svg.history line.change.slower").count() == 1
    assert o.errors == []


def test_model_page_plots_render_offline(built_site, browser):
    o = Opened(browser, _url(built_site, "models/efficientvit_m0.html"))
    assert int(o.page.get_attribute("body", "data-ready")) >= 1
    assert o.page.locator("#speed-accuracy .js-plotly-plot").count() >= 1
    root = built_site.path.resolve().as_uri()
    assert [u for u in o.requests if not u.startswith(root) and not u.startswith("data:")] == []
    assert o.errors == []
