"""The max-qps view: each search's curve (p99 against offered QPS) with the bound and the answer."""

from __future__ import annotations

from effbench.harness.max_qps import Probe, search
from effbench.reports.data import to_rows
from effbench.reports.html import render_html
from effbench.reports.views.max_qps import max_qps_section


def _record(capacity: float) -> dict:
    def run(qps):
        qps = 64.0 if qps is None else qps
        ok = qps <= capacity
        return qps, Probe(qps, ok, ok, 2.0 + qps / 100, None, qps, "" if ok else "p99 over the bound")

    return {
        "id": "m" * 32,
        "model": "efficientvit_m0",
        "backend": "null",
        "device": "cpu",
        "scenario": "server",
        "batch_size": 1,
        "precision": "fp32",
        "status": "ok",
        "latency_ms": {"median": 1.0, "p99": 2.0},
        "created_at": "2026-12-07T10:00:00+00:00",
        "extra": {"max_qps": search(run, 15.0, None, 8, 0.1).to_dict()},
    }


def test_the_view_draws_the_curve_the_bound_and_the_answer():
    rec = _record(200.0)
    s = max_qps_section(to_rows([rec]))
    fig = s.figures[0].to_json()
    curve = rec["extra"]["max_qps"]["curve"]
    assert fig["data"][0]["x"] == [c["qps"] for c in curve]
    colours = fig["data"][0]["marker"]["color"]
    assert colours == ["#27ae60" if c["passed"] else "#c0392b" for c in curve] and "#c0392b" in colours
    shapes = fig["layout"]["shapes"]
    assert shapes[0]["y0"] == 15.0 and shapes[1]["x0"] == rec["extra"]["max_qps"]["max_qps"]
    assert "15 ms" in s.body and "bracketed" in s.body
    assert 'id="max-qps"' in render_html(to_rows([rec]))


def test_no_search_and_no_passing_rate_are_said():
    assert "No max-qps searches" in max_qps_section(to_rows([dict(_record(200.0), extra={})])).body
    assert "none passed" in max_qps_section(to_rows([_record(0.01)])).body
