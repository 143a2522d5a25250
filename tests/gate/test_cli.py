import json

import pytest
import typer
from typer.testing import CliRunner

from effbench.commands.gate import baseline_app, gate_command

from .records import record, samples

app = typer.Typer()
app.add_typer(baseline_app, name="baseline")
app.command("gate")(gate_command)


def bench(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def write(path, records):
    path.write_text(json.dumps(records))
    return path


@pytest.fixture
def base(tmp_path):
    """A committed baseline with two cells, saved through the CLI."""
    src = write(
        tmp_path / "main-run.json",
        [
            record(samples(1.0, seed=1), model="a"),
            record(samples(2.0, seed=2), model="b"),
        ],
    )
    r = bench("baseline", "save", "main", "--from", src, "--dir", tmp_path / "baselines")
    assert r.exit_code == 0, r.stderr
    assert "with 2 cells" in r.stdout
    return tmp_path / "baselines" / "main.json"


def test_baseline_save_from_a_file_ignores_a_store_named_in_the_environment(tmp_path, monkeypatch):
    """EFFBENCH_DB names the default store; it is not a --db given with --from (only that is refused)."""
    src = write(tmp_path / "run.json", [record(samples(1.0, seed=1), model="a")])
    monkeypatch.setenv("EFFBENCH_DB", str(tmp_path / "team.db"))
    r = bench("baseline", "save", "main", "--from", src, "--dir", tmp_path / "baselines")
    assert r.exit_code == 0, r.stderr
    r = bench("baseline", "save", "other", "--from", src, "--db", tmp_path / "x.db", "--dir", tmp_path / "b")
    assert r.exit_code == 2 and "go with --from-db" in r.stderr


def test_baseline_show(base):
    r = bench("baseline", "show", base)
    assert r.exit_code == 0, r.stderr
    assert "a/null/cpu/bs1/fp32/latency" in r.stdout and "Test CPU 9000" in r.stdout


def test_gate_passes_without_regression_and_prints_markdown(base, tmp_path):
    cur = write(
        tmp_path / "pr.json", [record(samples(1.0, seed=3), model="a"), record(samples(2.0, seed=4), model="b")]
    )
    r = bench("gate", "--baseline", base, "--current", cur)
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "| cell | baseline | current | ratio [95% CI] | p | verdict |" in r.stdout
    assert "**geometric mean over 2 compared cells**" in r.stdout
    assert "no regression" in r.stdout


def test_gate_fails_on_regression_and_writes_reports(base, tmp_path):
    cur = write(
        tmp_path / "pr.json",
        [record(samples(1.2, seed=3), model="a"), record(samples(2.0, seed=4), model="b"), record(model="c")],
    )
    md, js = tmp_path / "out" / "gate.md", tmp_path / "gate.json"
    r = bench("gate", "--baseline", base, "--current", cur, "--markdown", md, "--json", js, "--threshold", "10%")
    assert r.exit_code == 1, r.stdout + r.stderr
    assert "regression" in r.stdout and "| cell |" not in r.stdout  # rich table, not markdown
    text = md.read_text()
    assert "🔴 regression" in text and "🆕 new" in text
    report = json.loads(js.read_text())
    assert report["exit_code"] == 1 and report["threshold"] == pytest.approx(0.10)
    assert [c["verdict"] for c in report["cells"]] == ["regression", "no change", "new"]


def test_fail_on_inconclusive(base, tmp_path):
    cur = write(
        tmp_path / "pr.json", [record(samples(1.0, cv=0.3, seed=3), model="a"), record(samples(2.0, seed=4), model="b")]
    )
    assert bench("gate", "--baseline", base, "--current", cur).exit_code == 0
    r = bench("gate", "--baseline", base, "--current", cur, "--fail-on", "inconclusive")
    assert r.exit_code == 1
    assert "too noisy" in r.stdout


def test_current_from_store_takes_newest_per_cell(base, tmp_path):
    from effbench.harness.store import Store

    db = tmp_path / "pr.db"
    Store(str(db)).add_many(
        [
            record(samples(1.3, seed=5), model="a", tag="pr", created_at="2024-02-01T00:00:00+00:00"),
            record(samples(1.0, seed=6), model="a", tag="pr", created_at="2024-01-01T00:00:00+00:00"),
            record(samples(1.0, seed=8), model="a", tag="main", created_at="2024-03-01T00:00:00+00:00"),
            record(samples(2.0, seed=7), model="b", tag="pr", created_at="2024-02-01T00:00:00+00:00"),
        ]
    )
    r = bench("gate", "--baseline", base, "--current", "db:tag=pr,model=a", "--db", f"sqlite:///{db}")
    assert r.exit_code == 1  # the newest "a" tagged pr is 30% slower (the newer one tagged main is not read)
    assert "[tag=pr,model=a]" in r.stdout and "regression" in r.stdout.lower()


def _baseline_file(tmp_path, text):
    path = tmp_path / "x.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda t, b, c: ["--baseline", t / "nope.json", "--current", c], "baseline '"),
        (lambda t, b, c: ["--baseline", _baseline_file(t, "{not json"), "--current", c], "is not valid JSON"),
        (
            lambda t, b, c: [
                "--baseline",
                _baseline_file(t, '{"schema": "effbench-baseline", "schema_version": 7}'),
                "--current",
                c,
            ],
            "schema_version 7 is not supported",
        ),
        (
            lambda t, b, c: [
                "--baseline",
                _baseline_file(t, b.read_text().replace('"samples_ms": [', '"samples_ms": ["slow", ', 1)),
                "--current",
                c,
            ],
            "is not valid: cells[0].samples_ms must be a list of non-negative numbers",
        ),
        (lambda t, b, c: ["--baseline", b, "--current", t / "missing.json"], "results file"),
        (
            lambda t, b, c: ["--baseline", b, "--current", _baseline_file(t, '[{"model": 3}]')],
            "[0].model must be a string",
        ),
        (lambda t, b, c: ["--baseline", b, "--current", c, "--threshold", "five"], "is not a number"),
        (lambda t, b, c: ["--baseline", b, "--current", c, "--threshold", "150%"], "between 0 and 1"),
        (lambda t, b, c: ["--baseline", b, "--current", c, "--metric", "speed"], "unknown metric"),
        (lambda t, b, c: ["--baseline", b, "--current", c, "--fail-on", "never"], "--fail-on"),
        (lambda t, b, c: ["--baseline", b, "--current", "db:colour=red"], "bad store selection"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(base, tmp_path, make_args, message):
    cur = write(tmp_path / "pr.json", [record(model="a")])
    r = bench("gate", *make_args(tmp_path, base, cur))
    assert r.exit_code == 2, r.stdout + r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")
    assert message in r.stderr
    assert "Traceback" not in r.stdout + r.stderr and r.stdout == ""


def test_baseline_save_needs_one_source(tmp_path):
    r = bench("baseline", "save", "x", "--dir", tmp_path)
    assert r.exit_code == 2 and "--from FILE.json or --from-db" in r.stderr
    r = bench("baseline", "show", "absent", "--dir", tmp_path)
    assert r.exit_code == 2 and "not found" in r.stderr


def test_empty_current_run_is_an_error_not_a_pass(base, tmp_path):
    r = bench("gate", "--baseline", base, "--current", write(tmp_path / "empty.json", []))
    assert r.exit_code == 2 and "no results in" in r.stderr


def test_baseline_from_the_store_takes_every_tag_given(tmp_path):
    """--tag is the shared repeatable filter: one tag takes its cells, two take both."""
    from effbench.harness.result import Result
    from effbench.harness.store import Store

    db = str(tmp_path / "r.db")
    store = Store(db)
    for model, tag in (("a", "main"), ("b", "nightly"), ("c", "pr")):
        store.add(Result.from_dict(record(samples(1.0), model=model, tag=tag)))
    one = bench("baseline", "save", "one", "--from-db", "--db", db, "--tag", "main", "--dir", tmp_path)
    assert one.exit_code == 0, one.output
    assert [c["key"]["model"] for c in json.loads((tmp_path / "one.json").read_text())["cells"]] == ["a"]
    two = bench(
        "baseline", "save", "two", "--from-db", "--db", db, "--tag", "main", "--tag", "nightly", "--dir", tmp_path
    )
    assert two.exit_code == 0, two.output
    assert "[tag=main|nightly]" in json.loads((tmp_path / "two.json").read_text())["source"]
    assert sorted(c["key"]["model"] for c in json.loads((tmp_path / "two.json").read_text())["cells"]) == ["a", "b"]
