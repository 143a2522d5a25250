"""Cells on an emulated aarch64 board through the real ssh agent: a Debian arm64 root under qemu-user
with its own Python, numpy and onnxruntime wheels, reached over an sshd on 127.0.0.1
(`scripts/arm-device.sh`, which `make test` runs where it can: root and binfmt_misc).

Emulation is 300-500x slower than native, so these tests prove function, never speed: few cells,
tiny models, the shortest measurements.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from effbench.backends import registry
from effbench.harness.config import RunConfig
from effbench.harness.scheduler import run_cells
from effbench.harness.sink import ResultSink
from effbench.harness.store import Store
from tests.conftest import bench
from tests.devices.cells import SHORT, TINY

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).parents[2] / "scripts" / "arm-device.sh"
STATE = Path(os.environ.get("EFFBENCH_ARM_STATE", "/run/effbench-arm-device"))
BOARD = "arm-board"
KILL_TIMEOUT_S = 777  # the cell whose agent is killed: recognised on the board by its --deadline


@pytest.fixture(scope="module")
def board() -> str:
    """The devices.yaml written by scripts/arm-device.sh, once the board answers."""
    entry = STATE / "devices.yaml"
    if not entry.exists():
        pytest.skip(
            "the emulated aarch64 board is not running: start it as root with scripts/arm-device.sh "
            "(make test does where it runs as root with binfmt_misc)"
        )
    status = subprocess.run(["bash", str(SCRIPT), "status"], capture_output=True, text=True, timeout=120)
    if status.returncode != 0:
        pytest.skip(f"the emulated aarch64 board does not answer: {status.stderr.strip()}")
    return str(entry)


def test_devices_check_finds_aarch64_its_python_numpy_and_onnxruntime(board):
    r = bench("devices", "check", BOARD, "--devices-file", board, "--json", timeout=300)
    assert r.returncode == 0, r.output
    report = json.loads(r.stdout)
    env = report["env"]
    assert env["machine"] == "aarch64" and env["python"].startswith("3.11")
    assert env["python_executable"] == "/opt/effbench/venv/bin/python"
    assert env["versions"]["numpy"] and report["runtimes"]["onnxruntime"]["version"]
    assert "onnxruntime" in report["usable_backends"]
    # qemu-user shows the host's /proc/cpuinfo: the board must not claim the host's CPU
    assert env["cpu_model"].startswith("emulated, CPU unknown") and env["cpu_flags"] == []


def _refused_onnx(folder: Path) -> Path:
    """A well-formed ONNX file with an operator no runtime has: the board's runtime refuses it."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")],
        "refused",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 16, 16])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    path = folder / "refused.onnx"
    onnx.save(model, path)
    return path


class AgentKiller(threading.Thread):
    """Kills (SIGKILL) the board's agent of the cell whose --deadline marks it, once it runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.killed: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set() and not self.killed:
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                # the emulated python itself (qemu-aarch64 runs it), not the ssh client that started it
                if args[0].endswith(b"qemu-aarch64") and b"--run" in args and b"--deadline" in args:
                    deadline = args[args.index(b"--deadline") + 1]
                    if deadline.isdigit() and int(deadline) > KILL_TIMEOUT_S - 60:
                        os.kill(int(pid), signal.SIGKILL)
                        self.killed.append(int(pid))
            time.sleep(0.2)


def test_a_sweep_over_this_machine_and_the_board(board, tmp_path):
    """One sweep (one test: under pytest-xdist it runs once): this machine's cell; on the board an
    artifact its runtime refuses, a cell whose agent is killed, then a cell that must still run with
    parity and the board's own environment, all stored."""
    db = str(tmp_path / "results.db")
    on_board = dict(device=BOARD, devices_file=board, timeout_s=600)
    cells = [
        RunConfig(**TINY, **SHORT, tag="local"),
        RunConfig(
            model=str(_refused_onnx(tmp_path)),
            backend="onnxruntime",
            parity=False,
            options={"analysis": "0"},
            **SHORT,
            **on_board,
        ),
        RunConfig(**TINY, **SHORT, **{**on_board, "timeout_s": KILL_TIMEOUT_S}, tag="killed"),
        RunConfig(**TINY, **SHORT, **on_board, tag="after"),
    ]
    killer = AgentKiller()
    killer.start()
    try:
        results = run_cells(cells, on_result=ResultSink(None, Store(db), "arm board"), show_progress=False)
    finally:
        killer.done.set()
        killer.join(timeout=5)
    local, refused, killed, after = results

    assert local.status == "ok" and local.device == "cpu", local.error
    assert refused.status == "failed" and "Frobnicate" in (refused.error or ""), refused.error
    assert "\n" not in refused.error and "Traceback" not in refused.error
    assert killer.killed, "the killed cell's agent never appeared on the board"
    assert killed.status == "failed" and "killed by SIGKILL" in (killed.error or ""), killed.error
    assert "\n" not in killed.error

    r = after.to_dict()  # the sweep went on, on the same board
    assert r["status"] == "ok", r["error"]
    assert r["device"] == BOARD and r["runtime"]["remote"] is True and r["parity"]["ok"] is True
    env = r["env"]
    assert env["machine"] == "aarch64" and env["python"].startswith("3.11")
    assert env["python_executable"] == "/opt/effbench/venv/bin/python"
    assert env["versions"]["onnxruntime"] and env["versions"]["numpy"]
    assert env["cpu_model"].startswith("emulated, CPU unknown")
    assert env["remote"]["device"] == BOARD and env["remote"]["port"]

    stored = Store(db).records()
    assert sorted(x["status"] for x in stored) == ["failed", "failed", "ok", "ok"]
    assert all(x["error"] for x in stored if x["status"] == "failed")
    assert [x["env"]["machine"] for x in stored if x["status"] == "ok" and x["device"] == BOARD] == ["aarch64"]


def test_litert_cell_on_the_board(board, tmp_path):
    """LiteRT on the board: the backend is added in parallel (issue 25); this runs once it exists."""
    if "litert" not in registry.all_backends():
        pytest.skip("no LiteRT backend in effbench yet (issue 25 adds it); the board has ai-edge-litert installed")
    results = run_cells(
        [RunConfig(**{**TINY, "backend": "litert"}, **SHORT, device=BOARD, devices_file=board, timeout_s=600)],
        show_progress=False,
    )
    r = results[0].to_dict()
    assert r["status"] == "ok", r["error"]
    assert r["parity"]["ok"] is True and r["env"]["machine"] == "aarch64"
    assert r["env"]["versions"].get("ai-edge-litert")


def test_the_board_entry_describes_an_ssh_device_on_loopback(board):
    entry = yaml.safe_load(Path(board).read_text())["devices"][BOARD]
    assert entry["kind"] == "cpu" and entry["ssh"]["host"].endswith("@127.0.0.1")
    assert Path(entry["ssh"]["identity_file"]).exists()
