"""The stability score on hand-made histories, and `bench devices stability NAME` on a real SQLite
store."""

from __future__ import annotations

import uuid

import pytest

from effbench.harness.stability_score import device_stability, rating, score
from effbench.harness.store import Store
from tests.conftest import bench, one_line


def _rec(median, p99, model="m", backend="ort", day=1, device="board", status="ok"):
    return {
        "id": uuid.uuid4().hex,
        "created_at": f"2026-12-{day:02d}T10:00:00",
        "model": model,
        "backend": backend,
        "device": device,
        "scenario": "latency",
        "batch_size": 1,
        "precision": "fp32",
        "status": status,
        "latency_ms": {"median": median, "p99": p99},
    }


def test_a_steady_history_is_excellent_and_a_drifting_one_poor():
    s, cv, spread, tail = score([10.0, 10.05, 9.98, 10.02], [1.05, 1.04, 1.06, 1.05])
    assert s >= 90 and rating(s) == "Excellent" and cv < 0.01 and spread < 1.01 and tail == pytest.approx(1.05)
    s, cv, spread, tail = score([10.0, 13.0, 9.0, 15.0], [1.5, 2.5, 3.0, 2.0])
    assert s < 50 and rating(s) == "Poor" and spread == pytest.approx(15 / 9)
    moderate, *_ = score([10.0, 10.5, 9.8, 10.3], [1.4, 1.5, 1.6, 1.5])
    assert rating(moderate) in ("Good", "Moderate") and moderate < 90


def test_each_penalty_can_move_the_score_alone():
    flat = [10.0] * 5
    assert score(flat, [1.0] * 5)[0] == 100.0
    assert score(flat, [2.0] * 5)[0] == 70.0  # the tail alone: its full 30 points
    assert score([10.0, 10.0, 10.0, 13.0], [1.0] * 4)[0] < 70  # one slow day: spread and CV


def test_device_stability_groups_cells_and_skips_thin_ones():
    recs = [_rec(10 + 0.01 * i, 10.5, day=i + 1) for i in range(4)]
    recs += [_rec(5 * (1 + 0.2 * (i % 2)), 9, model="noisy", day=i + 1) for i in range(4)]
    recs += [_rec(3, 3.1, model="once"), _rec(3, 3.1, status="failed", model="m")]
    found = device_stability(recs)
    assert [c.model for c in found["cells"]] == ["noisy", "m"]  # worst first
    assert found["cells"][1].rating == "Excellent" and found["cells"][0].rating == "Poor"
    assert found["too_few"] == 1 and found["runs"] == 8 and 0 < found["score"] < 100


def test_bench_devices_stability(tmp_path):
    db = tmp_path / "r.db"
    store = Store(str(db))
    for i in range(4):
        store.add(_rec(10 * (1 + 0.15 * (i % 2)), 14, day=i + 1))
    r = bench("devices", "stability", "board", "--db", db)
    assert r.returncode == 0, r.output
    expected = device_stability(store.records(device="board"))
    assert f"Stability of board: {expected['score']} ({expected['rating']}) over 4 runs" in r.stdout
    one_line(bench("devices", "stability", "phone", "--db", db), 2, "no stored results for device 'phone'", "board")
