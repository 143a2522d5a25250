"""The Claims view on hand-made records: odd or hostile `extra.claim` values are ignored or escaped."""

from __future__ import annotations

from effbench.reports.data import to_rows
from effbench.reports.html import render_html
from effbench.reports.markdown import render_markdown
from effbench.reports.views.claims import claim_results, claims_section

HOSTILE = "<script>alert(1)</script>"


def _rec(role: str, ms: float, run: str = "r1", created: str = "2026-11-01T10:00:00+00:00", **meta) -> dict:
    claim = {
        "name": "pair",
        "run": run,
        "side": role,
        "round": 0,
        "kind": "faster",
        "metric": "latency",
        "published_ratio": 2.0,
        "tolerance": 0.1,
        "paper": "P",
        "statement": "A is 2x B",
        "notes": ["n1"],
    }
    claim.update(meta)
    return {
        "id": f"{role}{run}{ms}",
        "model": f"m{role}",
        "backend": "onnxruntime",
        "device": "cpu",
        "scenario": "latency",
        "batch_size": 1,
        "precision": "fp32",
        "status": "ok",
        "created_at": created,
        "samples_ms": [ms + 0.001 * (i % 5) for i in range(100)],
        "extra": {"claim": claim},
    }


def test_newest_run_per_cell_is_judged_and_older_runs_counted():
    old = [_rec("A", 1.0, "old", "2026-10-01T00:00:00+00:00"), _rec("B", 1.1, "old", "2026-10-01T00:00:00+00:00")]
    new = [_rec("A", 1.0, "new", "2026-11-02T00:00:00+00:00"), _rec("B", 2.5, "new", "2026-11-02T00:00:00+00:00")]
    (g,) = claim_results(to_rows(new + old))
    assert g.run == "new" and g.older_runs == 1 and g.verdict.verdict == "holds"


def test_malformed_meta_is_ignored_and_hostile_text_escaped():
    junk = [
        _rec("A", 1.0, published_ratio="x"),
        _rec("B", 1.0, side="C"),
        {"extra": {"claim": "nope"}},
        _rec("A", 1.0, kind="quicker"),
    ]
    assert claim_results(to_rows(junk)) == []
    hostile = [
        _rec("A", 1.0, name=HOSTILE, notes=[HOSTILE], paper=HOSTILE),
        _rec("B", 2.0, name=HOSTILE, notes=[HOSTILE], paper=HOSTILE),
    ]
    html = render_html(hostile)
    assert HOSTILE not in html and "&lt;script&gt;" in html
    md = render_markdown(hostile)
    assert HOSTILE not in md and "#### Claims" in md


def test_no_claims_says_how_to_get_them():
    sec = claims_section(to_rows([{"model": "m", "status": "ok"}]))
    assert "bench claims verify NAME" in sec.body and not sec.figures
