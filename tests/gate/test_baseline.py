import json
from pathlib import Path

import pytest

from effbench.errors import UsageError
from effbench.gate import baseline
from effbench.gate.cells import newest_cells, pooled_cells

from .records import record, samples


def test_name_resolves_into_dir_and_paths_stay_paths(tmp_path):
    assert baseline.resolve("main", tmp_path) == tmp_path / "main.json"
    assert baseline.resolve("bench/baselines/main.json", tmp_path) == Path("bench/baselines/main.json")
    assert baseline.resolve("other.json", tmp_path) == Path("other.json")


def test_save_and_load_round_trip(tmp_path):
    cells = pooled_cells(
        [
            record(
                samples(1.0, n=100),
                parity={"ok": True, "cosine": 1.0},
                memory={"peak_rss_mb": 321.0},
                throughput_per_s=998.0,
                energy={"available": False, "reason": "no counters"},
            ),
            record(model="broken", status="failed", error="export failed"),
        ]
    )
    path = baseline.save("main", cells, directory=tmp_path, source="results file a.json")
    assert path == tmp_path / "main.json"
    data = json.loads(path.read_text())
    assert data["schema_version"] == baseline.SCHEMA_VERSION and data["name"] == "main"
    first = data["cells"][0]
    assert first["key"]["config_hash"] == "hash-resnet18-null"
    assert first["label"] == "resnet18/null/cpu/bs1/fp32/latency"
    assert first["summary"]["n"] == 100 and first["env"]["cpu_model"] == "Test CPU 9000"
    assert len(path.read_text().splitlines()) < 200  # samples on one line, not one line each

    loaded = baseline.load("main", tmp_path)
    assert loaded.source == "results file a.json"
    assert [c.label for c in loaded.cells] == [c.label for c in cells]
    assert loaded.cells[0].samples_ms == pytest.approx(cells[0].samples_ms, abs=1e-6)
    assert loaded.cells[0].memory == {"peak_rss_mb": 321.0}
    assert loaded.cells[1].status == "failed" and loaded.cells[1].error == "export failed"


def test_newest_record_per_cell_wins():
    old = record(samples(1.0), created_at="2024-01-01T00:00:00+00:00")
    new = record(samples(2.0), created_at="2024-02-01T00:00:00+00:00")
    (cell,) = newest_cells([old, new])
    assert cell.summary["median"] == pytest.approx(2.0, rel=0.01)


def _valid(tmp_path):
    path = baseline.save(
        "b", pooled_cells([record(samples(n=60)), record(model="x")]), directory=tmp_path, source="test"
    )
    return json.loads(path.read_text())


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (
            lambda d: d["cells"][1].__setitem__("samples_ms", [1.0, "fast"]),
            "cells[1].samples_ms must be a list of non-negative numbers",
        ),
        (lambda d: d.__setitem__("schema_version", 99), "schema_version 99 is not supported"),
        (lambda d: d.__setitem__("schema", "other"), "schema must be 'effbench-baseline'"),
        (lambda d: d.__setitem__("cells", {}), "cells must be a list"),
        (lambda d: d["cells"][0]["key"].pop("model"), "cells[0].key.model must be a string"),
        (lambda d: d["cells"][0].__setitem__("status", "great"), "cells[0].status must be one of"),
        (lambda d: d["cells"][0].pop("samples_ms"), "cells[0].samples_ms is missing"),
    ],
)
def test_malformed_baseline_names_the_field(tmp_path, corrupt, message):
    data = _valid(tmp_path)
    corrupt(data)
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(UsageError) as exc:
        baseline.load("bad", tmp_path)
    assert str(exc.value).startswith(f"baseline '{tmp_path / 'bad.json'}' is not valid: {message}")
