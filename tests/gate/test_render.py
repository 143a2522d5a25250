import json
import re

from effbench.gate.cells import pooled_cells
from effbench.gate.render import notes, to_json, to_markdown
from effbench.gate.verdict import compare

from .records import ENV, record, samples


def _report(cur_env=None):
    base = pooled_cells([record(samples(1.0, seed=1), model="a"), record(samples(1.0, seed=2), model="b|c")])
    cur = pooled_cells(
        [record(samples(1.2, seed=3), model="a", env=cur_env), record(samples(1.0, seed=4), model="b|c", env=cur_env)]
    )
    return compare(base, cur, baseline="main.json", current="pr.json")


def test_markdown_table_and_geomean_row():
    report = _report()
    md = to_markdown(report)
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert rows[0] == "| cell | baseline | current | ratio [95% CI] | p | verdict |"
    assert rows[1].startswith("| `a/null/cpu/bs1/fp32/latency` | 0.9995 ms | 1.201 ms | 1.201 [1.200, 1.203] | 3e-11 |")
    assert rows[1].endswith("🔴 regression |")
    assert "`b\\|c/null" in rows[2]  # a pipe in a label must not split the row
    gm, n = report.geomean()
    assert rows[-1] == f"| **geometric mean over 2 compared cells** | | | **{gm:.3f}** | | |"
    assert all(len(re.split(r"(?<!\\)\|", r)) == 8 for r in rows)  # six columns in every row
    assert md.startswith("### effbench gate: ❌ 1 of 2 cells fail")


def test_same_environment_warning_on_many_cells_is_said_once():
    env = {**ENV, "versions": {**ENV["versions"], "torch": "2.5.0"}}
    lines = notes(_report(cur_env=env))
    assert "warning (2 cells): environment differs: torch: 2.4.0 -> 2.5.0" in lines
    assert "⚠️" in to_markdown(_report(cur_env=env))


def test_json_report_is_plain_data():
    data = json.loads(to_json(_report()))
    assert data["exit_code"] == 1 and data["geomean_cells"] == 2
    assert data["cells"][0]["verdict"] == "regression"
    assert data["cells"][0]["ci_low"] > 1.05
