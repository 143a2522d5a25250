"""The device farm with real parts: a Ray head and two nodes (one device each) and PostgreSQL, all on
loopback inside a network namespace (see lab.py). Cells use the null backend busy-waiting per
inference; their "model" is a one-node ONNX file, so no cell builds a torch model. The test devices
are this machine's CPU under two names: the one fake here is that two boards share one CPU."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time

import pytest

from effbench.harness.store import Store
from tests.conftest import interrupt_when
from tests.farm.lab import BENCH, PASSWORD, wait_for

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_onnx(farm):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["output"])], "tiny", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = farm.root / "tiny.onnx"
    onnx.save(model, str(path))
    return path


def sweep_file(
    farm,
    tiny_onnx,
    name: str,
    batches: int,
    duration: float = 0.4,
    backend: str = "null",
    devices=("farm-a", "farm-b"),
    extra: str = "",
) -> str:
    path = farm.root / f"{name}.yaml"
    path.write_text(f"""
models: [{tiny_onnx}]
backends: [{backend}]
devices: [{", ".join(devices)}]
batches: [{", ".join(str(b) for b in range(1, batches + 1))}]
{'options: {busy_us: "300"}' if backend == "null" else ""}
duration_s: {duration}
warmup_s: 0.05
warmup_iters: 3
min_iters: 5
{extra}""")
    return str(path)


def env_with_password(farm) -> dict:
    return farm.env(PGPASSWORD=PASSWORD)


def status(farm) -> dict:
    r = farm.bench("farm", "status", "--farm", farm.address, "--format", "json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def intervals(records, device):
    return sorted(
        (r["extra"]["farm"]["started_unix"], r["extra"]["farm"]["finished_unix"])
        for r in records
        if r["device"] == device
    )


@pytest.fixture(scope="module")
def first_sweep(farm, tiny_onnx, postgres):
    name = postgres.new_database()
    tcp, socket_url = postgres.tcp_url(name), postgres.socket_url(name)
    farm.ensure_nodes()
    path = sweep_file(farm, tiny_onnx, "eight", batches=4)
    t0 = time.monotonic()
    r = farm.bench(
        "sweep", path, "--farm", farm.address, "--db", tcp, "--tag", "farm-first", env=env_with_password(farm)
    )
    return r, Store(socket_url).records(), tcp, time.monotonic() - t0


def test_every_node_and_every_port_is_on_loopback(farm, postgres):
    view = status(farm)
    assert len(view["nodes"]) == 3
    assert {n["address"] for n in view["nodes"]} == {"127.0.0.1"}
    owners = {d["device"]: d["node_id"] for d in view["devices"]}
    assert set(owners) == {"farm-a", "farm-b"} and len(set(owners.values())) == 2
    assert all(d["capacity"] == 1 for d in view["devices"])
    listening = farm.ns.run(["ss", "-Hltn"]).stdout.split("\n")
    local = [line.split()[3] for line in listening if line.strip()]
    assert local, "nothing listens: the farm is not up"
    assert all(a.rsplit(":", 1)[0] in ("127.0.0.1", "[::ffff:127.0.0.1]") for a in local), local


def test_sweep_uses_both_devices_never_one_twice_and_lands_in_postgres(farm, first_sweep):
    r, records, _, _ = first_sweep
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(records) == 8 and {x["status"] for x in records} == {"ok"}
    assert len({x["config_hash"] for x in records}) == 8
    owners = {d["device"]: d["node_id"] for d in status(farm)["devices"]}
    for rec in records:  # each cell ran on the node that advertises its device
        assert rec["extra"]["farm"]["node_id"] == owners[rec["device"]]
        assert rec["extra"]["farm"]["node_ip"] == "127.0.0.1"
        assert rec["model"] == "tiny" and rec["tag"] == "farm-first"
    for device in ("farm-a", "farm-b"):
        spans = intervals(records, device)
        assert len(spans) == 4
        assert all(end <= nxt for (_, end), (nxt, _) in zip(spans, spans[1:])), f"{device} measured twice at once"
    a, b = intervals(records, "farm-a"), intervals(records, "farm-b")
    assert any(s1 < e2 and s2 < e1 for s1, e1 in a for s2, e2 in b), "the two devices never measured at once"
    for device in ("farm-a", "farm-b"):  # one lane per device in the log
        assert f"[{device}] start" in r.stderr and f"[{device}] ok" in r.stderr
    assert PASSWORD not in r.stdout + r.stderr


def test_results_report_and_gate_read_the_team_store(farm, first_sweep):
    _, records, tcp, _ = first_sweep
    env = env_with_password(farm)
    r = farm.bench("results", "--db", tcp, "--tag", "farm-first", "--format", "json", env=env)
    assert r.returncode == 0, r.stderr
    assert {x["id"] for x in json.loads(r.stdout)} == {x["id"] for x in records}
    r = farm.bench("report", "--db", tcp, "--tag", "farm-first", "--format", "md", "--out", farm.root / "r.md", env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "farm-a" in (farm.root / "r.md").read_text()
    r = farm.bench("gate", "--baseline", "db:tag=farm-first", "--current", "db:tag=farm-first", "--db", tcp, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "8" in r.stdout and "regress" in r.stdout.lower()
    assert PASSWORD not in r.stdout + r.stderr


def test_an_artifact_is_shipped_once_by_hash_and_a_node_with_it_is_not_sent_it_through_ray_client(
    farm, tiny_onnx, pg_db
):
    tcp, socket_url = pg_db
    farm.ensure_nodes()
    path = sweep_file(
        farm,
        tiny_onnx,
        "ship",
        batches=1,
        duration=0.2,
        backend="onnxruntime",
        devices=["farm-a"],
        extra="scenarios: [latency, throughput]\n",
    )
    # submitted as from a host that is not a farm node: through Ray Client on the head
    r = farm.bench("sweep", path, "--farm", "ray://127.0.0.1:10001", "--db", tcp, env=env_with_password(farm))
    assert r.returncode == 0, r.stdout + r.stderr + farm.head_log("ray_client_server*.err")
    records = Store(socket_url).records()
    assert len(records) == 2 and {x["status"] for x in records} == {"ok"}, [x.get("error") for x in records]
    shipped = [x["extra"]["farm"]["artifact"] for x in records]
    assert len({s["sha256"] for s in shipped}) == 1
    assert sorted(s["fetched"] for s in shipped) == [False, True]  # the second cell found it in the node's cache
    digest = shipped[0]["sha256"]
    assert (farm.node_cache("farm-a") / "farm" / digest / "model.onnx").is_file()
    assert not (farm.node_cache("farm-b") / "farm" / digest).exists()
    assert {x["model"] for x in records} == {"tiny"}


def test_a_foreground_node_joins_and_leaves_on_sigterm(farm):
    proc = farm.ns.popen(
        [
            BENCH,
            "farm",
            "join",
            farm.address,
            "--device",
            "farm-c",
            "--num-cpus",
            "0",
            "--devices-file",
            farm.devices_file,
            "--temp-dir",
            farm.root / "c",
            "--object-store-mb",
            "80",
        ],
        env=farm.env(),
        cwd=farm.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for("farm-c on the farm", lambda: "farm-c" in _devices(farm) or proc.poll() is not None, 120, every=1)
        assert proc.poll() is None, proc.communicate()[0]
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    wait_for("farm-c to leave", lambda: "farm-c" not in _devices(farm), 30, every=1)
    assert not list((farm.root / "state" / "farm").glob("*farm-c*.json"))


def _devices(farm) -> set[str]:
    return {d["device"] for d in status(farm)["devices"]}


def env_with_pgpass(farm) -> dict:
    """The password in a .pgpass file (libpq reads it; PGPASSFILE says where), not in the environment."""
    pgpass = farm.root / "pgpass"
    pgpass.write_text(f"127.0.0.1:*:*:bench:{PASSWORD}\n")
    pgpass.chmod(0o600)
    env = farm.env(PGPASSFILE=str(pgpass))
    env.pop("PGPASSWORD", None)
    return env


def _start_sweep(farm, path, tcp, env=None):
    return farm.ns.popen(
        [BENCH, "sweep", path, "--farm", farm.address, "--db", tcp],
        env=env or env_with_password(farm),
        cwd=farm.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_ctrl_c_cancels_the_queue_keeps_what_finished_and_resume_runs_the_rest(farm, tiny_onnx, pg_db):
    tcp, socket_url = pg_db
    farm.ensure_nodes()
    path = sweep_file(farm, tiny_onnx, "ctrlc", batches=2, duration=0.6)
    proc = _start_sweep(farm, path, tcp, env_with_pgpass(farm))
    out, err = interrupt_when(proc, lambda: len(_records(socket_url)) >= 1)
    assert proc.returncode == 130, out + err
    kept = len(Store(socket_url).records())
    # at least one is stored (the interrupt waited for it); not all four, or nothing was cancelled
    assert kept < 4, "the interrupt landed after the sweep had finished"
    assert f"{kept} cell(s) finished and stored" in out and "Traceback" not in out + err
    line = out[out.index("resume with: ") + len("resume with: ") :].strip()
    resume = shlex.split(line.replace("\n", ""))
    assert resume[:2] == ["bench", "sweep"] and "--resume" in resume and "--farm" in resume
    wait_for("the cancelled cells to leave the farm", lambda: _drained(status(farm)), 30)
    r = farm.bench(*resume[1:], env=env_with_pgpass(farm))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{kept} already stored" in r.stdout
    after = Store(socket_url).records()
    assert len(after) == 4 and len({x["config_hash"] for x in after}) == 4
    assert PASSWORD not in out + err + r.stdout + r.stderr


def _drained(view) -> bool:
    return not view["sweeps"] and not any(d["busy"] or d["queued"] for d in view["devices"])


def _records(url):
    try:
        return Store(url).records()
    except Exception:  # the sweep has not created the schema yet
        return []


def test_a_node_killed_mid_cell_loses_that_cell_the_sweep_completes_and_resume_reruns_it(farm, tiny_onnx, pg_db):
    tcp, socket_url = pg_db
    farm.ensure_nodes()
    path = sweep_file(farm, tiny_onnx, "kill", batches=2, duration=1.5)
    proc = _start_sweep(farm, path, tcp)
    try:
        wait_for("a result from farm-b", lambda: any(x["device"] == "farm-b" for x in _records(socket_url)), 120)
        time.sleep(0.3)  # the next farm-b cell is now measuring
        farm.kill_node("farm-b")
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out + err
    records = Store(socket_url).records()
    assert len(records) == 4 and len({x["config_hash"] for x in records}) == 4
    lost = [x for x in records if x["status"] == "lost"]
    assert lost and {x["device"] for x in lost} == {"farm-b"}
    assert all(x["status"] == "ok" for x in records if x["device"] == "farm-a")
    assert any("while measuring" in x["error"] and x["extra"]["farm"]["node_ip"] == "127.0.0.1" for x in lost), [
        x["error"] for x in lost
    ]
    assert f"{len(lost)} lost by the farm" in out and "--resume" in out
    farm.ensure_nodes()
    r = farm.bench("sweep", path, "--farm", farm.address, "--db", tcp, "--resume", env=env_with_password(farm))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(lost)} cell(s) to run" in r.stdout
    ok = [x for x in Store(socket_url).records() if x["status"] == "ok"]
    assert len(ok) == 4 and len({x["config_hash"] for x in ok}) == 4


def test_a_failing_store_spools_every_result(farm, tiny_onnx, postgres):
    name = postgres.new_database()
    Store(postgres.socket_url(name, user="postgres"))  # the schema, owned by the superuser ...
    postgres.sql(name, "GRANT SELECT ON effbench_schema TO PUBLIC")  # `bench` may read its version ...
    postgres.sql(name, "REVOKE ALL ON results FROM PUBLIC")  # ... but not write a result
    farm.ensure_nodes()
    path = sweep_file(farm, tiny_onnx, "spool", batches=1, duration=0.2)
    r = farm.bench("sweep", path, "--farm", farm.address, "--db", postgres.tcp_url(name), env=env_with_password(farm))
    assert r.returncode == 1, r.stdout + r.stderr  # measured, kept, but not stored: not a success
    assert r.stderr.count("could not store 2 result(s)") == 1 and "bench results import" in r.stderr
    spooled = [
        json.loads(line)
        for spool in (farm.root / "state" / "spool").glob("unstored-*.jsonl")
        for line in spool.read_text().splitlines()
    ]
    assert {(x["device"], x["status"]) for x in spooled} >= {("farm-a", "ok"), ("farm-b", "ok")}
    assert Store(postgres.socket_url(name, user="postgres")).records() == []


WRITER = """
import sys, time, uuid
from pathlib import Path
from effbench.harness.result import Result
from effbench.harness.store import Store
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.01)
store = Store(sys.argv[1])  # every writer creates the schema at the same moment
for i in range(25):
    store.add(Result(model="writer", backend="null", device=f"w{sys.argv[3]}", batch_size=i + 1,
                     config_hash=uuid.uuid4().hex[:16], tag="writers"))
"""


def test_eight_concurrent_writers_of_25_results_all_land(netns, farm, pg_db):
    tcp, socket_url = pg_db
    go = farm.root / "go-writers"
    go.unlink(missing_ok=True)
    procs = [
        netns.popen(
            [sys.executable, "-c", WRITER, tcp, go, i],
            env=env_with_password(farm),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(8)
    ]
    try:
        time.sleep(1.0)
        go.touch()
        outs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0] * 8, outs
    rows = Store(socket_url).records(tag="writers")
    assert len(rows) == 200 and len({x["id"] for x in rows}) == 200
    assert {x["device"] for x in rows} == {f"w{i}" for i in range(8)}


def test_bad_farm_input_is_one_line(farm, tiny_onnx, postgres):
    path = sweep_file(farm, tiny_onnx, "bad", batches=1, devices=["farm-z"])
    cases = [
        (["sweep", path, "--farm", farm.address, "--db", farm.root / "x.db"], ["farm-z", "bench farm join"]),
        (["sweep", path, "--farm", "127.0.0.1:1", "--db", farm.root / "x.db"], ["cannot reach the farm"]),
        (["farm", "join", farm.address, "--device", "a;rm -rf /"], ["bad device name"]),
        (
            ["farm", "join", farm.address, "--device", "not-in-catalog", "--devices-file", farm.devices_file],
            ["unknown device"],
        ),
        (
            ["results", "--db", f"postgresql+psycopg://bench:wrong-{PASSWORD}@127.0.0.1:5439/postgres"],
            ["cannot open results database", "***"],
        ),
    ]
    for args, needles in cases:
        r = farm.bench(*args)
        # Ray's core warns once that it found no route (there is none in a loopback-only namespace)
        lines = [ln for ln in r.stderr.splitlines() if ln.strip() and "network_util.cc" not in ln]
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert len(lines) == 1 and "Traceback" not in r.stderr, (args, r.stderr)
        for n in needles:
            assert n in lines[0], (args, lines[0])
        assert PASSWORD not in r.stdout + r.stderr
