"""The report's pieces on hand-made records: missing keys, escaping, downsampling, Pareto fronts.

These records are synthetic on purpose: they are the odd shapes (old, partial, hostile, huge) that real
runs rarely produce, so each rule can be checked in milliseconds.
"""

from __future__ import annotations

import json
import re

import pytest

from effbench.harness.result import Result, as_result
from effbench.harness.store import parse_since
from effbench.reports.common import downsample_series, h, p, quantile_sample, script_json
from effbench.reports.data import family_of, latest_per_cell, to_row, to_rows, top1_of
from effbench.reports.html import VIEW_IDS, render_html
from effbench.reports.markdown import md_escape, render_csv, render_markdown
from effbench.reports.views.roofline import roofline_figure
from effbench.reports.views.speed import pareto
from effbench.reports.views.stability import MAX_SERIES_POINTS, stability_section


def _rec(**kw):
    rec = {
        "id": kw.pop("id", "x" * 32),
        "model": "efficientvit_m0",
        "backend": "onnxruntime",
        "device": "cpu",
        "scenario": "latency",
        "batch_size": 1,
        "precision": "fp32",
        "status": "ok",
        "latency_ms": {"median": 2.0, "ci95_low": 1.9, "ci95_high": 2.1, "cv": 0.05, "n": 4},
        "throughput_per_s": 500.0,
        "samples_ms": [2.0, 2.1, 1.9, 2.0],
        "created_at": "2026-11-01T10:00:00+00:00",
    }
    rec.update(kw)
    return rec


def _figures(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="effbench-figures">(.*?)</script>', html, re.S)
    return json.loads(m.group(1))


def test_minimal_and_partial_records_render():
    records = [
        {"model": "m"},
        {"id": "1", "status": "failed", "error": None},
        {"latency_ms": "garbage"},
        _rec(latency_ms=None, samples_ms=None, env=None, parity="?", warnings=None, extra=None),
        _rec(batch_size="eight", latency_ms={"median": float("nan")}),
    ]
    html = render_html(records)
    for view in VIEW_IDS:
        assert f'id="{view}"' in html
    assert "No roofline data" in html and "bench devices calibrate" in html
    assert "No ideal latency" in html and "bench profile" in html


def test_no_analysis_sections_say_how_to_get_it():
    html = render_html([_rec()])
    roofline = html[html.index('id="roofline"') : html.index('id="efficiency-gap"')]
    assert "devices.yaml" in roofline and "bench run" in roofline
    assert "fig-roofline" not in _figures(html)


def test_script_json_cannot_close_the_script():
    s = script_json({"a": "</script><script>alert(1)</script>", "b": "<!--", "c": "\u2028"})
    assert "</" not in s and "<" not in s and "\u2028" not in s
    assert json.loads(s)["a"] == "</script><script>alert(1)</script>"


def test_escaping_helpers():
    assert h('<a href="x">&') == "&lt;a href=&quot;x&quot;&gt;&amp;"
    assert p("<b>x</b> & y") == "&lt;b&gt;x&lt;/b&gt; &amp; y"
    assert md_escape("a|b <i>`c`</i>\n[d](e)") == "a\\|b &lt;i&gt;\\`c\\`&lt;/i&gt; \\[d\\](e)"


def test_hostile_names_never_reach_the_page_raw():
    bad = "<img src=x onerror=alert(1)>"
    html = render_html(
        [
            _rec(model=bad, tag=bad, error=bad, status="failed", id="1"),
            _rec(model=bad, backend=bad, device=bad, id="2", extra={"measured_top1": 50}),
            _rec(id="3", warnings=[bad], env={"hostname": bad, "versions": {bad: bad}}),
        ]
    )
    assert bad not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_top1_and_family():
    assert top1_of(Result.from_dict({"model": "efficientvit_m0", "backend": "ort"}))[0] == 63.2
    assert top1_of(Result.from_dict({"model": "timm:efficientvit_m0", "backend": "ort"}))[0] == 63.2
    assert top1_of(Result("efficientvit_m0", "ort", extra={"measured_top1": 61.0})) == (61.0, "measured")
    assert top1_of(Result.from_dict({"model": "mystery_net", "backend": "ort"})) == (None, None)
    assert family_of("mobilenetv3_small_050") == "mobilenet"  # from the card
    assert family_of("timm:convnext_tiny") == "convnext"
    assert family_of("/models/lowformer_b1.onnx") == "lowformer"
    assert family_of("mypkg.models:lowformer_b3") == "lowformer"
    assert family_of("<script>alert(1)</script>") == "<script>alert(1)</script>"


def test_pareto_front():
    pts = [(1.0, 60.0), (2.0, 59.0), (3.0, 70.0), (4.0, 65.0), (5.0, 75.0)]
    assert pareto(pts) == [(1.0, 60.0), (3.0, 70.0), (5.0, 75.0)]
    # throughput: higher is better
    assert pareto([(100, 60.0), (50, 70.0), (80, 65.0), (10, 62.0)], lower_is_better=False) == [
        (50, 70.0),
        (80, 65.0),
        (100, 60.0),
    ]


def test_downsampling_keeps_spikes_and_bounds():
    values = [1.0] * 100_000
    values[54_321] = 50.0
    idx, vals = downsample_series(values, 1000)
    assert len(vals) <= 1000 and 50.0 in vals and 54_321 in idx
    assert idx == sorted(idx)
    q = quantile_sample(list(range(10_000)), 500)
    assert len(q) == 500 and q[0] == 0 and q[-1] == 9_999


def test_long_series_are_downsampled_and_say_so():
    samples = [1.0 + (i % 7) * 0.01 for i in range(20_000)]
    sec = stability_section(to_rows([_rec(samples_ms=samples)]))
    series = next(f for f in sec.figures if f.div_id == "fig-stability-series").data[0]
    assert len(series["y"]) <= MAX_SERIES_POINTS
    assert "downsampled" in series["hovertemplate"] and "of 20000 samples" in series["hovertemplate"]
    assert "downsampled" in sec.body


def test_roofline_with_bandwidth_draws_slope_and_ridge():
    analysis = {
        "device_spec": "h100-sxm",
        "peak_flops_per_s": 67e12,
        "bandwidth_bytes_per_s": 3.35e12,
        "flops": 2e9,
        "bytes": 1e8,
        "intensity": 20.0,
        "achieved_flops_per_s": 1e12,
        "layers": [
            {
                "name": "conv1",
                "op_type": "Conv",
                "flops": 1e9,
                "bytes": 1e7,
                "intensity": 100.0,
                "bound_ms": 0.02,
                "bound": "compute",
                "measured_ms": 0.05,
            }
        ],
    }
    row = to_row(as_result(_rec(device="cuda:0", extra={"analysis": analysis})))
    fig = roofline_figure("f", "h100-sxm", [(row, analysis)])
    roles = [t["meta"]["role"] for t in fig.data]
    assert roles.count("ridge") >= 1 and "layers" in roles and "models" in roles
    fp32 = next(t for t in fig.data if t["meta"]["role"] == "roof" and t["name"].startswith("fp32"))
    assert len(fp32["x"]) == 3 and fp32["x"][1] == pytest.approx(67e12 / 3.35e12)
    # the catalog adds the other precisions' ceilings of a datasheet device
    assert any(t["name"].startswith("fp16") for t in fig.data if t["meta"]["role"] == "roof")


def test_latest_per_cell_prefers_newest_ok():
    rows = to_rows(
        [
            _rec(id="new", status="failed", error="boom", created_at="2026-11-02"),
            _rec(id="old", created_at="2026-11-01"),
            _rec(id="older", created_at="2026-10-01"),
        ]
    )
    cells, older = latest_per_cell(rows)
    assert [c.id for c in cells] == ["old"] and older == 2


def test_markdown_and_csv_on_odd_records():
    md = render_markdown(
        [_rec(parity={"ok": False, "max_rel_err": 0.02}), _rec(status="timeout", error="a|b", precision="int8", id="2")]
    )
    assert "❌ FAIL (max rel err 0.02)" in md and "**timeout**: a\\|b" in md
    csv_text = render_csv([_rec(model='=HYPERLINK("http://x")')])
    assert "'=HYPERLINK" in csv_text


def test_parse_since():
    assert parse_since("2026-11-01") == "2026-11-01T00:00:00"
    assert parse_since("2026-11-01T12:00:00+02:00") == "2026-11-01T10:00:00"
    assert parse_since(None) is None


def test_devices_scenarios_and_energy_together():
    records = [
        _rec(id="1", device="cuda:0", backend="torch", energy={"available": True, "joules_per_image": 0.02}),
        _rec(
            id="2", device="cuda:0", backend="tensorrt", latency_ms={"median": 0.5}, energy={"joules_per_image": 0.01}
        ),
        _rec(id="3", model="efficientvit_m5", scenario="throughput", batch_size=32, throughput_per_s=9000.0),
        _rec(id="4", model="timm:efficientvit_m2", device="cpu", backend="torch"),
        _rec(id="5", model="efficientvit_m0", backend="openvino", status="crashed", error="segfault in plugin"),
    ]
    html = render_html(records)
    figs = _figures(html)
    assert {"fig-speed-latency", "fig-speed-throughput", "fig-speed-energy", "fig-matrix-latency"} <= set(figs)
    lat = figs["fig-speed-latency"]["data"]
    assert sum(len(t["x"]) for t in lat if t["meta"]["role"] == "points") == 3  # batch-1 latency, ok
    assert sum(t["meta"]["role"] == "pareto" for t in lat) == 2  # one frontier per device
    assert len({t["marker"]["symbol"] for t in lat if t["meta"]["role"] == "points"}) == 2  # symbol per device
    matrix = figs["fig-matrix-latency"]["data"][0]
    assert any("@ cuda:0" in c for c in matrix["x"])  # backend @ device columns when devices differ
    assert "crashed: segfault in plugin" in html
    speedup = figs["fig-matrix-speedup"]["data"][0]
    assert "speed-up vs torch" in speedup["colorbar"]["title"]["text"]  # torch is the default reference


def test_int8_without_measured_top1_is_not_drawn_at_the_fp32_card():
    fp32 = _rec()
    int8 = _rec(id="i" * 32, precision="int8", precision_ran="int8", latency_ms={"median": 1.0, "n": 4})
    top1, source = top1_of(as_result(int8))
    assert top1 is None and "fp32" in source and "--eval" in source
    html = render_html([fp32, int8])
    traces = [t for t in _figures(html)["fig-speed-latency"]["data"] if t.get("meta", {}).get("role") == "points"]
    assert [t["x"] for t in traces] == [[2.0]]  # only the fp32 point; the int8 one is not placed at 1.0 ms
    assert "Not placed: integer-precision results without a measured top-1" in html
    # measured on the timed session: drawn at its own top-1, its precision named in the legend
    int8["accuracy"] = {"top1": 70.1, "top1_ci": [69.0, 71.2], "images": 1000}
    traces = [
        t
        for t in _figures(render_html([fp32, int8]))["fig-speed-latency"]["data"]
        if t.get("meta", {}).get("role") == "points"
    ]
    by_precision = {t["meta"]["precision"]: t for t in traces}
    assert by_precision["int8"]["y"] == [70.1] and by_precision["fp32"]["y"] != [70.1]
    assert "int8" in by_precision["int8"]["name"] and "fp32" in by_precision["fp32"]["name"]


def test_placement_lists_what_fell_back():
    placement = {
        "requested": "XNNPACK",
        "nodes": 3,
        "macs": 100,
        "fallback_basis": "macs",
        "units": {
            "XNNPACK": {"nodes": 2, "macs": 90, "macs_share": 0.9},
            "reference kernels": {"nodes": 1, "macs": 10, "macs_share": 0.1},
        },
        "fallback": [{"op": "FULLY_CONNECTED", "unit": "reference kernels", "precision": "fp32", "why": ""}],
    }
    html = render_html([_rec(backend="litert", runtime={"placement": placement})])
    section = html[html.index('id="placement"') : html.index('id="claims"')]
    assert "90.0%" in section and "1× FULLY_CONNECTED on reference kernels (fp32)" in section
    assert "No result here says" in render_html([_rec()])
