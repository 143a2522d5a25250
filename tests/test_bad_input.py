"""A catalog of hostile inputs, tried as a new user would: each is one line on stderr naming the
problem (and the fix), the exit code it should have, never a traceback; where a measurement
happened, the result is found afterwards (store, spool or --out)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from effbench.cli import _click_group
from effbench.harness.store import Store
from tests.conftest import TINY_CNN, bench, one_line

NULL = ["--model", "efficientvit_m0", "--backend", "null"]
# a network namespace of its own with loopback only: Ray would take this host's interface address otherwise
LOOPBACK_ONLY = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']
FAST = ["--duration", "0.1", "--warmup", "0.02", "--warmup-iters", "2", "--min-iters", "3"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The bad files of the catalog, made once."""
    import onnx
    import torch
    from onnx import TensorProto, helper

    d = tmp_path_factory.mktemp("bad-input")
    (d / "random.onnx").write_bytes(os.urandom(4096))
    (d / "empty.onnx").write_bytes(b"")
    (d / "random.db").write_bytes(os.urandom(8192))
    (d / "a-file").write_text("not a directory")
    (d / "weights.pth").write_bytes(b"not a state dict")
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Relu", ["y"], ["y"])],
        "dup",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    onnx.save(helper.make_model(graph), d / "fails-checker.onnx")  # one tensor produced twice
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    torch.save(model.state_dict(), d / "other-model.pth")  # the tiny CNN's names, other shapes
    whole = (d / "other-model.pth").read_bytes()
    (d / "cut.pth").write_bytes(whole[: len(whole) // 2])
    torch.save({"state_dict": model.state_dict(), "args": argparse.Namespace(lr=0.1)}, d / "pickle.pth")
    torch.onnx.export(model, (torch.randn(1, 3, 16, 16),), str(d / "fixed.onnx"), input_names=["x"], dynamo=False)
    with sqlite3.connect(d / "foreign.db") as conn:
        conn.execute("CREATE TABLE results (run INTEGER, score REAL)")
    with sqlite3.connect(d / "newer.db") as conn:
        conn.execute("CREATE TABLE effbench_schema (version INTEGER, written_by TEXT, updated_at TEXT)")
        conn.execute("INSERT INTO effbench_schema VALUES (99, '9.0', 'later')")
    (d / "bad.yaml").write_text("models: [efficientvit_m0\nbackends: null\n")
    (d / "zero-batch.yaml").write_text("models: [efficientvit_m0]\nbackends: [null]\nbatches: [1, 0]\n")
    (d / "devices-nokey.yaml").write_text(
        "devices:\n  pi5:\n    kind: cpu\n    ssh:\n      host: pi@pi5.local\n"
        f"      identity_file: {d / 'no-such-key'}\n"
    )
    (d / "devices-traversal.yaml").write_text("devices:\n  ../../boards/pi:\n    kind: cpu\n")
    (d / "devices-badhost.yaml").write_text("devices:\n  pi5:\n    kind: cpu\n    ssh:\n      host: pi 5.local\n")
    (d / "devices-typo.yaml").write_text(
        "devices:\n  pi5:\n    kind: cpu\n    ssh:\n      host: pi5.local\n      identityfile: ~/.ssh/id\n"
    )
    (d / "baseline.json").write_text(json.dumps({"schema": "effbench-baseline", "schema_version": 1, "cells": []}))
    return d


# (bench arguments, exit code, words the one line must hold); `{d}` is the folder of bad files
CASES = [
    (["run", "--model", "nosuchmodel_xyz", "--backend", "ort"], 2, ["unknown model 'nosuchmodel_xyz'"]),
    (["run", "--model", "efficientvit_m0", "--backend", "nosuchrt"], 2, ["unknown backend 'nosuchrt'"]),
    (["run", *NULL, "--opt", "busy_uss=5"], 2, ["unknown option 'busy_uss'", "did you mean 'busy_us'"]),
    (["run", "--model", "efficientvit_m0", "--backend", "ov", "--opt", "strems=4"], 2, ["did you mean 'streams'"]),
    (["run", "--model", "efficientvit_m0", "--backend", "ov", "--opt", "streams=x"], 2, ["--opt streams='x'"]),
    (["run", *NULL, "--opt", "exporter=bogus"], 2, ["--opt exporter='bogus'", "torchscript"]),
    (["run", *NULL, "--opt", "busy_us"], 2, ["--opt expects KEY=VALUE"]),
    (["run", *NULL, "--opt", "busy_us=-3"], 2, ["--opt busy_us='-3'"]),
    (["run", *NULL, "--batch", "1,,8"], 2, ["invalid --batch '1,,8'", "--batch 1,8,32"]),
    (["run", *NULL, "--batch", "-1"], 2, ["invalid --batch '-1'"]),
    (["run", *NULL, "--batch", "0"], 2, ["invalid --batch '0'"]),
    (["run", *NULL, "--batch", "eight"], 2, ["invalid --batch 'eight'"]),
    (["run", *NULL, "--batch", "1,1"], 2, ["listed twice"]),
    (["run", *NULL, "--batch", "5000"], 2, ["--batch"]),
    (["run", *NULL, "--target-ci", "abc"], 2, ["invalid --target-ci 'abc'", "1%"]),
    (["run", *NULL, "--target-ci", "150%"], 2, ["--target-ci"]),
    (["run", *NULL, "--duration", "nan"], 2, ["invalid --duration nan", "finite"]),
    (["run", *NULL, "--duration", "-1"], 2, ["--duration"]),
    (["run", *NULL, "--warmup", "inf"], 2, ["invalid --warmup inf"]),
    (["run", *NULL, "--timeout", "0"], 2, ["--timeout"]),
    (["run", *NULL, "--cpus", "99"], 2, ["--cpus", "not available here"]),
    (["run", *NULL, "--cpus", "1-0"], 2, ["invalid --cpus '1-0'"]),
    (["run", *NULL, "--threads", "0"], 2, ["--threads"]),
    (["run", *NULL, "--input-size", "100000"], 2, ["--input-size"]),
    (["run", *NULL, "--input-size", "4"], 2, ["--input-size"]),
    (["run", *NULL, "--precision", "fp64"], 2, ["--precision"]),
    (["run", *NULL, "--scenario", "fast"], 2, ["--scenario"]),
    (["run", *NULL, "--max-drop", "lots"], 2, ["invalid --max-drop 'lots'"]),
    (["run", "--model", "{d}/missing.onnx", "--backend", "ort"], 2, ["ONNX file not found"]),
    (["run", "--model", "{d}/random.onnx", "--backend", "ort"], 2, ["cannot read ONNX file"]),
    (["run", "--model", "{d}/empty.onnx", "--backend", "ort"], 2, ["empty.onnx is empty (0 bytes)", "re-export"]),
    (["run", "--model", "{d}/fails-checker.onnx", "--backend", "ort"], 2, ["fails the ONNX checker", "fix"]),
    (["run", "--model", "{d}/fixed.onnx", "--backend", "ort", "--batch", "4"], 2, ["fixed batch of 1", "--batch 1"]),
    (["run", "--model", "tiny_models:missing", "--backend", "ort"], 2, ["has no factory 'missing'"]),
    (["run", "--model", "tiny_models:not_a_module", "--backend", "ort"], 2, ["returned int", "nn.Module"]),
    (["run", "--model", "nosuchpkg.mod:net", "--backend", "ort"], 2, ["cannot import module 'nosuchpkg.mod'"]),
    (
        ["run", "--model", "tiny_models:tiny_cnn", "--backend", "ort", "--weights", "{d}/none.pth"],
        2,
        ["weights file not found"],
    ),
    (
        ["run", "--model", "tiny_models:tiny_cnn", "--backend", "ort", "--weights", "{d}/weights.pth"],
        2,
        ["weights.pth is corrupt", "neither a torch.save archive"],
    ),
    (
        ["run", "--model", "tiny_models:tiny_cnn", "--backend", "ort", "--weights", "{d}/cut.pth"],
        2,
        ["cut.pth is corrupt"],
    ),
    (
        ["run", "--model", "tiny_models:tiny_cnn", "--backend", "ort", "--weights", "{d}/other-model.pth"],
        2,
        ["does not fit the model", "tensor '0.weight'", "[4, 3, 3, 3] in the file", "[8, 3, 3, 3] in the model"],
    ),
    (
        ["run", "--model", "tiny_models:tiny_cnn", "--backend", "ort", "--weights", "{d}/pickle.pth"],
        2,
        ["holds more than tensors", "state_dict()"],
    ),
    (["run", "--model", "tiny_models:tiny_cnn", "--backend", "ort", "--pretrained"], 2, ["--pretrained"]),
    (["run", *NULL, "--out", "{d}/a-file/r.json"], 2, ["cannot write --out"]),
    (["run", *NULL, "--out", "{d}"], 2, ["is a directory"]),
    (["run", *NULL, "--db", "{d}/random.db"], 2, ["not a SQLite database"]),
    (["run", *NULL, "--db", "{d}/foreign.db"], 2, ["not effbench's"]),
    (["run", *NULL, "--db", "{d}/newer.db"], 2, ["newer effbench", "schema 99"]),
    (["run", *NULL, "--db", "{d}"], 2, ["is a directory"]),
    (["results", "--db", "{d}/random.db"], 2, ["not a SQLite database"]),
    (["results", "--db", "{d}/nothing-here.db"], 2, ["no results database"]),
    (["results", "--since", "garbage"], 2, ["invalid --since 'garbage'"]),
    (["results", "--format", "xml"], 2, ["unknown --format 'xml'"]),
    (["devices", "stability", "board", "--since", "garbage"], 2, ["invalid --since 'garbage'"]),
    (["results", "import", "{d}/random.db"], 2, ["not JSON Lines"]),
    (["report", "--db", "{d}/random.db"], 2, ["not a SQLite database"]),
    (["report", "--db", "{d}/nothing-here.db"], 2, ["no results database"]),
    (
        ["gate", "--baseline", "{d}/baseline.json", "--current", "db", "--db", "{d}/nothing-here.db"],
        2,
        ["no results database"],
    ),
    (
        ["gate", "--baseline", "{d}/baseline.json", "--current", "db", "--db", "{d}/random.db"],
        2,
        ["not a SQLite database"],
    ),
    (["results", "import", "{d}/no-such.jsonl"], 2, ["cannot read", "no-such.jsonl"]),
    (["results", "import", "{d}/bad.yaml"], 2, ["bad.yaml: line 1", "no effbench record"]),
    (["claims", "verify", "nosuchclaim"], 2, ["unknown claim 'nosuchclaim'"]),
    (
        ["claims", "verify", "efficientvit-m5-vs-mobilenetv3-large-cpu", "--json", "{d}/a-file/v.json"],
        2,
        ["cannot write --json"],
    ),
    (["claims", "list", "--format", "xml"], 2, ["unknown --format 'xml'; use table or json"]),
    (["ab", "--a", " ".join(NULL), "--b", " ".join(NULL), "--json", "{d}/a-file/v.json"], 2, ["cannot write --json"]),
    (["ab", "--a", " ".join(NULL), "--b", " ".join(NULL), "--markdown", "{d}"], 2, ["--markdown", "is a directory"]),
    (["claims", "show", "efficientvit-m5-vs-mobilenetv3-large-cpux"], 2, ["did you mean"]),
    (["claims", "list", "--claims-dir", "{d}/bad.yaml"], 2, ["not valid YAML"]),
    (
        ["claims", "verify", "efficientvit-m5-vs-mobilenetv3-large-cpu", "--backend", "nosuch"],
        2,
        ["unknown backend 'nosuch'"],
    ),
    (["predictor", "import", "{d}/no-such.json"], 2, ["predictor file", "not found"]),
    (["predictor", "import", "{d}/bad.yaml"], 2, ["is not a predictor file"]),
    (
        ["predict", "--model", "efficientvit_m0", "--backend", "ov", "--predictor", "{d}/bad.yaml"],
        2,
        ["not a predictor"],
    ),
    (["farm", "start", "192.0.2.1:6379"], 2, ["not an address of this host"]),
    (["farm", "start", "127.0.0.1:99999"], 2, ["port must be a number"]),
    (["farm", "start", "nosuchhost.invalid"], 2, ["cannot resolve host"]),
    (["farm", "join", "127.0.0.1:6379"], 2, ["no --device given"]),
    (["farm", "join", "127.0.0.1:1", "--device", "local-cpu"], 1, ["farm head 127.0.0.1:1 does not answer"]),
    (["sweep", "{d}/no-such.yaml"], 2, ["sweep file not found"]),
    (["sweep", "{d}/bad.yaml"], 2, ["not valid YAML"]),
    (["sweep", "{d}/zero-batch.yaml"], 2, ["batches[1]"]),
    (["devices", "list", "--devices-file", "{d}/devices-nokey.yaml"], 2, ["no-such-key", "ssh-keygen"]),
    (["devices", "list", "--devices-file", "{d}/devices-badhost.yaml"], 2, ["device 'pi5'", "'pi 5.local'"]),
    (["devices", "list", "--devices-file", "{d}/devices-traversal.yaml"], 2, ["device name '../../boards/pi'"]),
    (
        ["devices", "list", "--devices-file", "{d}/devices-typo.yaml"],
        2,
        ["unknown key 'ssh.identityfile'", "did you mean 'identity_file'"],
    ),
]


@pytest.mark.parametrize("args,code,needles", CASES, ids=[" ".join(c[0]).replace("{d}/", "") for c in CASES])
def test_catalog(args, code, needles, files, tmp_path, cli):
    args = [a.replace("{d}", str(files)) for a in args]
    if args[0] == "farm":
        # these must fail before Ray starts; should a check break, Ray must not start on this host's network
        if os.geteuid() != 0 or not shutil.which("unshare"):
            pytest.skip("farm cases run in a loopback-only network namespace (unshare -n): needs root and util-linux")
        r = bench(*args, prefix=LOOPBACK_ONLY, timeout=120)
        one_line(r, code, *needles)
        return
    if args[0] in ("run", "sweep") and "--db" not in args:
        args += ["--db", str(tmp_path / "r.db")]
    if args[0] == "run":
        args = [args[0], *FAST, *args[1:]]  # the case's own value of an option wins
    one_line(cli(*args), code, *[n.replace("{d}", str(files)) for n in needles])


def test_did_you_mean_lists_distinct_names(cli):
    line = one_line(cli("run", "--model", "efficientvit_m00", "--backend", "null"), 2, "did you mean")
    names = line.split("did you mean ")[1].rstrip("?").split(", ")
    assert len(names) == len(set(names)) >= 2 and "efficientvit_m0" in names


@pytest.mark.parametrize("device", ["pi5", "cpu"])
def test_a_bad_ssh_block_stops_a_run_before_any_work(device, files, tmp_path, cli):
    """The whole devices file is validated when it is loaded: exit 2 and nothing stored, whichever
    device the run names (not a `skipped` record once the cell runs)."""
    db = tmp_path / "r.db"
    r = cli(
        "run",
        *NULL,
        *FAST,
        "--device",
        device,
        "--db",
        db,
        env={"EFFBENCH_DEVICES": str(files / "devices-badhost.yaml")},
    )
    one_line(r, 2, "devices-badhost.yaml", "'pi 5.local'")
    assert not db.exists() or not Store(str(db)).records()


def test_catalog_cases_name_real_options_and_do_not_repeat():
    """A case whose option was renamed would still exit 2 (click's 'No such option: --x' even holds the
    needle '--x'): each option a case gives must be one its command declares, and no case is there twice."""
    root = _click_group()  # the very group `bench` runs, which lazy commands load into
    seen = set()
    for args, _, _ in CASES:
        assert tuple(args) not in seen, args
        seen.add(tuple(args))
        command, rest = root, list(args)
        while rest and not rest[0].startswith("-") and hasattr(command, "resolve_command"):
            ctx = command.make_context(command.name, [], resilient_parsing=True)
            _, sub, _ = command.resolve_command(ctx, rest)  # as `bench` does: a lazy command loads here
            if sub is None:
                break
            command = sub
            rest.pop(0)
        assert command is not root, args
        declared = {opt for p in command.params for opt in p.opts}
        named = {a.split("=", 1)[0] for a in rest if a.startswith("--") and " " not in a}  # not a quoted run line
        assert named <= declared, (args, sorted(declared))


def test_cache_directory_that_cannot_be_written_names_effbench_cache(files, tmp_path, cli):
    r = cli(
        "run",
        "--model",
        "tiny_models:tiny_cnn",
        "--backend",
        "ort",
        "--input-size",
        "32",
        *FAST,
        "--db",
        str(tmp_path / "r.db"),
        env={"EFFBENCH_CACHE": str(files / "a-file" / "cache")},
    )
    one_line(r, 2, "not writable", "EFFBENCH_CACHE")


def test_passwords_are_never_printed(tmp_path, cli):
    url = "postgresql+psycopg://alice:s3cret-pw@127.0.0.1:1/effbench"
    for args in (["run", *NULL, *FAST, "--db", url], ["results", "--db", url], ["report", "--db", url]):
        r = cli(*args)
        line = one_line(r, 2, "alice:***@127.0.0.1")
        assert "s3cret" not in r.output and "s3cret" not in line


def test_a_failed_cell_carries_canonical_names(tmp_path):
    out = tmp_path / "r.json"
    r = bench(
        "run",
        "--model",
        "tiny_models:svd_model",
        "--input-size",
        "16",
        "--backend",
        "ov",
        *FAST,
        "--db",
        str(tmp_path / "r.db"),
        "--out",
        out,
    )
    assert r.returncode == 1 and "Traceback" not in r.output
    (rec,) = json.loads(out.read_text())
    assert rec["status"] == "failed" and rec["backend"] == "openvino" and rec["model"] == "tiny_models:svd_model"
    r = bench("results", "--db", str(tmp_path / "r.db"), "--backend", "openvino", "--format", "json")
    assert [x["id"] for x in json.loads(r.stdout)] == [rec["id"]]


def test_gate_with_nothing_in_common_is_not_a_pass(tmp_path):
    from tests.gate.records import record

    base = tmp_path / "base.json"
    cur = tmp_path / "cur.json"
    assert bench("run", *NULL, *FAST, "--opt", "busy_us=50", "--out", cur, "--no-store").returncode == 0
    from effbench.gate import baseline
    from effbench.gate.cells import pooled_cells

    baseline.save(str(base), pooled_cells([record(model="some_other_model")]), source="test")
    for extra in ([], ["--fail-on", "inconclusive"]):
        one_line(bench("gate", "--baseline", base, "--current", cur, *extra), 2, "nothing compared")


def test_interrupted_bench_run_is_one_line_and_exit_130(tmp_path):
    db = tmp_path / "r.db"
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "bench"),
            "run",
            *NULL,
            "--duration",
            "60",
            "--warmup",
            "0",
            "--opt",
            "busy_us=100",
            "--db",
            str(db),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(4)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in out + err
    assert [ln for ln in err.splitlines() if ln.strip()] == ["error: interrupted"]


def _mount_small_tmpfs(path: Path) -> bool:
    path.mkdir()
    return (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(path)], capture_output=True).returncode
        == 0
    )


def test_a_store_on_a_full_filesystem_loses_nothing(tmp_path):
    """The store is created, the filesystem filled, then a measured result cannot be written: it is
    spooled, the run says where and how to import it, exit 1; the import brings it back."""
    small = tmp_path / "small"
    if os.geteuid() != 0 or not _mount_small_tmpfs(small):
        pytest.skip("needs root to mount a small tmpfs (no unprivileged way to fill a filesystem here)")
    try:
        db = small / "r.db"
        assert bench("run", *NULL, *FAST, "--max-iters", "100", "--db", db).returncode == 0  # the store works
        st = os.statvfs(small)  # leave room to open the store, not to write a record of 20,000 samples
        (small / "filler").write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - 96 * 1024))
        out = tmp_path / "r.json"
        spool = tmp_path / "spool"
        r = bench(
            "run",
            *NULL,
            "--duration",
            "0.05",
            "--warmup",
            "0",
            "--min-iters",
            "20000",
            "--max-iters",
            "20000",
            "--db",
            db,
            "--out",
            out,
            env={"EFFBENCH_SPOOL": str(spool)},
        )
        line = one_line(r, 1, "could not store 1 result(s)", "bench results import")
        (rec,) = json.loads(out.read_text())  # --out was written before the store
        (spooled,) = spool.glob("*.jsonl")
        assert str(spooled) in line and json.loads(spooled.read_text())["id"] == rec["id"]
        other = tmp_path / "other.db"
        assert bench("results", "import", spooled, "--db", other).returncode == 0
        again = bench("results", "import", spooled, "--db", other)
        assert "imported 0 record(s)" in again.stdout and "1 were already there" in again.stdout
        r = bench("results", "--db", other, "--format", "json")
        assert [x["id"] for x in json.loads(r.stdout)] == [rec["id"]]
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)


def test_a_segfaulting_factory_is_the_cells_crashed_record(tmp_path):
    """The model is built in a process of its own: `bench run` survives the crash, says so in one
    line, exits 1 and stores the record."""
    db = tmp_path / "r.db"
    r = bench(
        "run", "--model", "tiny_models:segfault_model", "--backend", "ort", "--input-size", "16", *FAST, "--db", db
    )
    line = one_line(r, 1, "crashed", "SIGSEGV")
    assert "tiny_models:segfault_model" in line
    (rec,) = Store(str(db)).records()
    assert rec["status"] == "crashed" and "SIGSEGV" in rec["error"] and rec["backend"] == "onnxruntime"


def test_a_module_that_crashes_on_import_is_the_cells_crashed_record(tmp_path):
    """`bench` never imports a factory's module itself (it is checked where its data config is
    learnt, in a process of its own), so a module that segfaults on import is a record, not a dead bench."""
    db = tmp_path / "r.db"
    r = bench("run", "--model", "crash_on_import:make", "--backend", "ort", "--input-size", "16", *FAST, "--db", db)
    one_line(r, 1, "crash_on_import:make", "crashed", "SIGSEGV")
    (rec,) = Store(str(db)).records()
    assert rec["status"] == "crashed" and "SIGSEGV" in rec["error"]


def test_a_sweep_measures_every_cell_beside_a_crashing_and_a_hanging_factory(tmp_path):
    """Failed cells are records, not a failed sweep (exit 0, as for a crashing runtime)."""
    sweep = tmp_path / "s.yaml"
    sweep.write_text(
        "models: [tiny_models:segfault_model, tiny_models:hanging_model, tiny_models:tiny_cnn]\n"
        "backends: [ort]\ninput_size: 32\nduration_s: 0.1\nwarmup_s: 0.02\nmin_iters: 3\ntimeout_s: 20\n"
    )
    db = tmp_path / "r.db"
    r = bench("sweep", sweep, "--db", db)
    assert r.returncode == 0 and "Traceback" not in r.output and "BrokenProcessPool" not in r.output, r.output
    recs = {x["model"]: x for x in Store(str(db)).records()}
    assert recs["tiny_models:segfault_model"]["status"] == "crashed"
    assert "SIGSEGV" in recs["tiny_models:segfault_model"]["error"]
    assert recs["tiny_models:hanging_model"]["status"] == "timeout"
    assert "20 s" in recs["tiny_models:hanging_model"]["error"]
    assert recs["tiny_models:tiny_cnn"]["status"] == "ok" and recs["tiny_models:tiny_cnn"]["iterations"] >= 3


def test_results_import_takes_every_complete_record_and_names_each_bad_line(tmp_path, cli):
    from effbench.harness.result import Result

    lines = [json.dumps(Result(model=f"m{i}", backend="null").to_dict()) for i in range(3)]
    cut = json.dumps(Result(model="m3", backend="null").to_dict())[:80]
    spooled = tmp_path / "unstored.jsonl"
    spooled.write_text("\n".join([lines[0], '{"id": "../../x", "model": "m"}', lines[1], cut, lines[2]]) + "\n")
    db = str(tmp_path / "r.db")
    r = cli("results", "import", spooled, "--db", db)
    assert r.returncode == 1 and "Traceback" not in r.output
    bad = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(bad) == 2 and "line 2:" in bad[0] and "line 4:" in bad[1] and "cut short" in bad[1]
    assert "imported 3 record(s)" in r.stdout and "2 skipped" in r.stdout
    assert sorted(x["model"] for x in Store(db).records()) == ["m0", "m1", "m2"]


def test_eval_on_class_folders_the_model_does_not_have_is_refused(tmp_path, cli):
    """cat/ and dog/ are not the tiny CNN's classes 0 and 1: exit 2 naming the folders and the fix,
    instead of a meaningless top-1."""
    from PIL import Image

    root = tmp_path / "pets"
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        Image.new("RGB", (40, 40)).save(root / name / "a.png")
    args = ["run", *TINY_CNN, "--backend", "ort", *FAST, "--db", str(tmp_path / "r.db"), "--eval", str(root)]
    one_line(cli(*args), 2, "2 class folders (cat, dog)", "10 outputs", "--eval-labels")
    labels = tmp_path / "labels.txt"
    labels.write_text("cat 3\ndog 5\n")
    r = cli(*args, "--eval-labels", str(labels))
    assert r.returncode == 0, r.output


def _files_under(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def test_a_shared_predictor_file_never_chooses_where_it_is_written(tmp_path, cli):
    """Hostile predictor files (a traversal id, an absolute id, a backend that is a path, a symlink
    planted where the predictor goes) install nothing outside the predictors folder."""
    from effbench.predict.predictor import new_data, predictor_id

    state, outside = tmp_path / "state", tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.json").write_text("keep me")
    env = {"EFFBENCH_STATE": str(state)}
    hostile = {
        "traversal": {"id": "../../outside/evil"},
        "absolute": {"id": str(outside / "evil")},
        "path-backend": {"backend": "../../outside/x", "id": predictor_id("../../outside/x", "cpu")},
    }
    for name, fields in hostile.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(new_data("openvino", "cpu", {"cpu": "y"}) | fields))
    before = _files_under(tmp_path)
    for name in hostile:
        one_line(cli("predictor", "import", tmp_path / f"{name}.json", env=env), 2, f"{name}.json")
    assert _files_under(tmp_path) == before  # nothing written anywhere
    predictors = state / "predictors"
    predictors.mkdir(parents=True)
    (predictors / "openvino-cpu.json").symlink_to(outside / "precious.json")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(new_data("openvino", "cpu", {"cpu": "y"})))
    assert cli("predictor", "import", good, "--force", env=env).returncode == 0
    assert (outside / "precious.json").read_text() == "keep me"
    installed = predictors / "openvino-cpu.json"
    assert not installed.is_symlink() and json.loads(installed.read_text())["id"] == "openvino-cpu"
    assert sorted(p.name for p in outside.iterdir()) == ["precious.json"]


def test_the_exit_code_rule_of_read_commands(tmp_path, cli):
    """README: a store that is not there is bad input (2, nothing created); an existing store where
    nothing matches is not (`bench results` says so, exit 0; `bench report` has nothing to draw, 1)."""
    missing, empty = tmp_path / "nowhere" / "r.db", tmp_path / "empty.db"
    for args in (["results"], ["report"], ["gate", "--baseline", "db:tag=a", "--current", "db:tag=b"]):
        one_line(cli(*args, "--db", missing), 2, "no results database")
    assert not missing.parent.exists()
    Store(str(empty))
    r = cli("results", "--db", empty)
    assert r.returncode == 0 and "no stored results match" in r.stdout
    one_line(cli("report", "--db", empty, "-o", tmp_path / "x.html"), 1, "no stored results")
