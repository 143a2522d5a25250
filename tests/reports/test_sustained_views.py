"""The sustained and device-stability views, on records whose sustained summary a real (short)
sustained run of the null backend produced."""

from __future__ import annotations

import pytest

from effbench.backends.null_backend import NullSession
from effbench.core.probes import Telemetry
from effbench.core.scenarios import run_scenario
from effbench.core.settings import MeasureSettings
from effbench.reports.data import to_rows
from effbench.reports.html import render_html
from effbench.reports.views.device_stability import device_stability_section
from effbench.reports.views.sustained import sustained_section


@pytest.fixture(scope="module")
def sustained_record():
    settings = MeasureSettings(
        runtime="null", input_shape=[1], scenario="sustained", duration_s=0.4, window_s=0.1, warmup_s=0.0
    )
    m = run_scenario(NullSession(50_000), settings, telemetry=Telemetry())
    return {
        "id": "s" * 32,
        "model": "efficientvit_m0",
        "backend": "null",
        "device": "board",
        "scenario": "sustained",
        "batch_size": 1,
        "precision": "fp32",
        "status": "ok",
        "latency_ms": {"median": 0.05, "p99": 0.06},
        "created_at": "2026-12-07T10:00:00+00:00",
        "extra": {"scenario": m.summary},
    }


def test_the_sustained_view_draws_windows_with_telemetry_on_a_second_axis(sustained_record):
    s = sustained_section(to_rows([sustained_record]))
    assert len(s.figures) == 1
    fig = s.figures[0].to_json()
    med = fig["data"][0]
    assert len(med["x"]) == 4 and med["y"] == [w["median_ms"] for w in sustained_record["extra"]["scenario"]["windows"]]
    assert fig["data"][-1]["yaxis"] == "y2" and fig["layout"]["yaxis2"]["overlaying"] == "y"  # load on this VM
    assert "last/first" in s.body and ("steady" in s.body or "throttled" in s.body)
    empty = sustained_section(to_rows([dict(sustained_record, scenario="latency")]))
    assert not empty.figures and "No sustained runs" in empty.body


def test_device_stability_section_scores_devices_with_history(sustained_record):
    recs = [
        dict(
            sustained_record, id=f"{i}" * 32, scenario="latency", latency_ms={"median": 1.0 + 0.3 * (i % 2), "p99": 2.0}
        )
        for i in range(4)
    ]
    s = device_stability_section(to_rows(recs))
    assert "board" in s.body and "Poor" in s.body and "efficientvit_m0 | null" in s.body
    assert "No cell" in device_stability_section(to_rows(recs[:2])).body


def test_the_report_has_both_sections(sustained_record):
    html = render_html([sustained_record])
    assert 'id="sustained"' in html and 'id="device-stability"' in html and "fig-sustained-0" in html
