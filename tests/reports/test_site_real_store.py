"""`bench site build` over the report tests' real store (real sweeps, a real failed cell, a profile record and
one hostile record), opened in headless Chromium: every page loads without an error or a request beyond
the site, and hostile text is shown as text, never run."""

from __future__ import annotations

import json

import pytest

from tests.conftest import bench
from tests.reports.conftest import XSS_TAG
from tests.reports.test_report_browser import CHROMIUM, CHROMIUM_ARGS, sync_api

pytestmark = pytest.mark.slow  # the store comes from real exports and runs (conftest)


@pytest.fixture(scope="module")
def real_site(report_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("real-site") / "site"
    res = bench("site", "build", out, "--db", report_store.db)
    assert res.returncode == 0, res.output
    return out


def test_every_cell_of_the_store_has_its_history(real_site, report_store):
    index = json.loads((real_site / "data" / "index.json").read_text())
    hashes = {r["config_hash"] for r in report_store.records if not r["profiled"]}
    assert {c["key"] for c in index["cells"]} == hashes
    failed = [c for c in index["cells"] if c["latest"]["status"] != "ok"]
    assert failed and "fp16" in failed[0]["latest"]["error"]
    # the device page: this machine's fingerprint and the peaks its runs were analysed against
    device = next(r["device"] for r in report_store.records if r["status"] == "ok")
    html = next((real_site / "devices").glob("*.html")).read_text()
    assert f"device {device}" in html and "cpu_model" in html and "FLOP/s" in html


def test_pages_open_without_errors_and_show_hostile_text_as_text(real_site):
    pages = sorted(real_site.rglob("*.html"))
    root = real_site.resolve().as_uri()
    texts: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for path in pages:
            page = browser.new_page()
            errors: list[str] = []
            requests: list[str] = []
            dialogs: list[str] = []
            page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
            page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
            page.on("request", lambda r, requests=requests: requests.append(r.url))
            page.on("dialog", lambda d, dialogs=dialogs: (dialogs.append(d.message), d.dismiss()))
            page.goto(path.resolve().as_uri())
            page.wait_for_selector("body[data-ready]", timeout=60_000)
            page.wait_for_timeout(100)
            assert errors == [] and dialogs == [], path
            assert [u for u in requests if not u.startswith(root) and not u.startswith("data:")] == [], path
            texts.append(page.inner_text("body"))
            page.close()
        browser.close()
    # the hostile copy shares its cell (same configuration) with a real run: its tag is in that history's
    # runs, shown as text and run nowhere (no dialog above)
    assert any(XSS_TAG in t for t in texts)
