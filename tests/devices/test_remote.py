"""Remote cells through a real sshd on loopback: happy path, artifact reuse and repair, and the
one-line errors (unreachable, refused key, missing runtime, dropped connection, disk full)."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import threading

import pytest
import yaml

from effbench.devices.remote import RemoteTarget
from effbench.harness.config import RunConfig
from effbench.harness.scheduler import run_cells

MODEL = "efficientvit_m0"
FAST = dict(duration_s=0.3, warmup_s=0.1, warmup_iters=3, min_iters=5, threads=1)


def cfg(**over) -> RunConfig:
    return RunConfig(**{"model": MODEL, "backend": "onnxruntime", "device": "loopback", **FAST, **over})


class Record:
    """A stored record, read with attribute access."""

    def __init__(self, rec: dict):
        self.__dict__.update(rec)


def run_remote(cell: RunConfig, device) -> Record:
    """One cell on `device` (a DeviceSpec) through the scheduler, as `bench run --device` runs it."""
    import tempfile

    folder = tempfile.mkdtemp(prefix="devices-")
    path = os.path.join(folder, "devices.yaml")
    entry = device.model_dump(exclude_none=True)
    name = entry.pop("name")
    with open(path, "w") as f:
        yaml.safe_dump({"devices": {name: entry}}, f)
    (result,) = run_cells([cell.model_copy(update={"device": name, "devices_file": path})], show_progress=False)
    return Record(result.to_dict())


def one_line(text: str | None) -> bool:
    return bool(text) and "\n" not in text and "Traceback" not in text


@pytest.fixture(scope="module")
def first_run(sshd):
    return run_remote(cfg(), sshd.device())


def test_remote_cell_is_ok_with_the_devices_fingerprint_and_parity(first_run, sshd):
    r = first_run
    assert r.status == "ok", r.error
    assert r.device == "loopback" and r.backend == "onnxruntime" and r.model == MODEL
    assert r.iterations == len(r.samples_ms) >= 5
    lat = r.latency_ms
    assert lat["min"] <= lat["ci95_low"] <= lat["median"] <= lat["ci95_high"] <= lat["max"]
    assert r.parity["ok"] is True and r.parity["cosine"] > 0.9999
    # env is the device's own fingerprint, reported by the agent
    assert r.env["python_executable"] == sshd.ssh_block()["python"]
    assert r.env["machine"] and r.env["cpu_model"] and r.env["os"]
    assert r.env["versions"]["onnxruntime"]
    assert r.env["remote"]["device"] == "loopback" and r.env["remote"]["port"] == sshd.port
    assert r.runtime["remote"] is True and r.runtime["artifact_copied"] is True
    assert r.runtime["intra_op_num_threads"] == 1 and r.runtime["runtime_version"]
    assert r.first_inference_ms > 0 and r.load_s > 0 and r.memory["peak_rss_mb"] > 0
    assert r.energy["available"] is False and "remote" in r.energy["reason"]
    assert r.params and r.params > 1_000_000


def test_second_run_reuses_the_copied_artifact(first_run, sshd):
    r = run_remote(cfg(), sshd.device())
    assert r.status == "ok", r.error
    assert r.runtime["artifact_copied"] is False
    assert r.artifact_cached is True  # the local export cache too


def test_corrupted_artifact_on_the_device_is_sent_again(first_run, sshd):
    remote_dir = first_run.runtime["artifact_remote_dir"]
    model = os.path.join(remote_dir, "model.onnx")
    with open(model, "r+b") as f:  # flip bytes in the middle of the copy on the "device"
        f.seek(os.path.getsize(model) // 2)
        f.write(b"\x00garbage\x00" * 8)
    r = run_remote(cfg(), sshd.device())
    assert r.status == "ok", r.error
    assert r.runtime["artifact_copied"] is True
    assert (
        "hash mismatch" in r.runtime["artifact_recopied_because"]
        and "model.onnx" in r.runtime["artifact_recopied_because"]
    )
    assert r.parity["ok"] is True


def test_unreachable_host(sshd):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    r = run_remote(cfg(), sshd.device(port=closed))
    assert r.status == "failed" and one_line(r.error)
    assert "cannot reach" in r.error and "Connection refused" in r.error and "loopback" in r.error
    assert r.extra["kind"] == "unreachable"
    assert r.device == "loopback"


def test_refused_key(sshd):
    r = run_remote(cfg(), sshd.device(identity_file=str(sshd.bad_key)))
    assert r.status == "failed" and one_line(r.error)
    assert "authentication refused" in r.error and "authorized_keys" in r.error
    assert r.extra["kind"] == "auth"


def test_missing_runtime_names_the_package(sshd):
    r = run_remote(cfg(), sshd.device(python="/usr/bin/python3", workdir=str(sshd.root / "sys-workdir")))
    if r.extra.get("kind") == "no_python":
        pytest.skip("no system python3 to play a device without onnxruntime")
    assert r.status == "skipped" and one_line(r.error), r.error
    assert "onnxruntime" in r.error and "pip install onnxruntime" in r.error
    assert r.extra["kind"] == "missing_runtime"
    # failed before any copy: nothing was sent
    assert not (sshd.root / "sys-workdir" / "artifacts").exists()


def test_dropped_connection_is_retried_once(first_run, sshd, tmp_path):
    """An ssh client that drops the first measurement run (exit 255) and then works."""
    marker = tmp_path / "dropped"
    wrapper = tmp_path / "flaky-ssh"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'case "$*" in *--run*) if [ ! -e "{marker}" ]; then touch "{marker}"; '
        'cat >/dev/null; echo "client_loop: send disconnect: Broken pipe" >&2; exit 255; fi;; esac\n'
        'exec ssh "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    r = run_remote(cfg(), sshd.device(client=str(wrapper)))
    assert r.status == "ok", r.error
    assert marker.exists() and r.runtime["ssh_retries"] == 1
    assert any("retried once" in w for w in r.warnings)


def test_connection_dropping_twice_fails_with_one_line(first_run, sshd, tmp_path):
    wrapper = tmp_path / "dead-ssh"
    wrapper.write_text(
        '#!/bin/sh\ncase "$*" in *--run*) cat >/dev/null; '
        'echo "Connection to 127.0.0.1 closed by remote host." >&2; exit 255;; esac\nexec ssh "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    r = run_remote(cfg(), sshd.device(client=str(wrapper)))
    assert r.status == "failed" and one_line(r.error)
    assert "dropped during the run" in r.error and r.extra["retries"] == 1


def test_disk_full_on_the_device(first_run, sshd, tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    mounted = (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(small)], capture_output=True).returncode
        == 0
    )
    if not mounted:
        pytest.skip("cannot mount a small tmpfs here to fill up")
    try:
        r = run_remote(cfg(), sshd.device(workdir=str(small / "workdir")))
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)
    assert r.status == "failed" and one_line(r.error), r.error
    assert "disk full" in r.error and "No space left on device" in r.error
    assert r.extra["kind"] == "disk_full"


def test_two_devices_in_threads(first_run, sshd):
    """One lane per device in threads (the scheduler's way): no shared state between them."""
    devices = [sshd.device("lane-a"), sshd.device("lane-b", workdir=str(sshd.root / "workdir-b"))]
    results = {}

    def lane(dev):
        results[dev.name] = run_remote(cfg(device=dev.name), dev)

    threads = [threading.Thread(target=lane, args=(d,)) for d in devices]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert {n: r.status for n, r in results.items()} == {"lane-a": "ok", "lane-b": "ok"}, {
        n: r.error for n, r in results.items()
    }
    assert results["lane-a"].device == "lane-a" and results["lane-b"].device == "lane-b"
    assert results["lane-b"].runtime["artifact_copied"] is True


def test_backend_the_agent_does_not_run_is_skipped(sshd):
    r = run_remote(cfg(backend="torch"), sshd.device())
    assert r.status == "skipped" and one_line(r.error)
    assert "cannot run on remote device" in r.error and "onnxruntime" in r.error


def test_target_from_a_device_entry_without_ssh_is_a_usage_error():
    from effbench.devices.catalog import DeviceSpec
    from effbench.errors import UsageError

    with pytest.raises(UsageError, match="no ssh: entry"):
        RemoteTarget.from_spec(DeviceSpec(name="plain", kind="cpu"))


def test_remote_target_shapes():
    t = RemoteTarget.from_spec(
        {
            "name": "pi5",
            "ssh": {
                "host": "raspberrypi.local",
                "user": "pi",
                "port": 2222,
                "python": "~/venv/bin/python",
                "options": "-o ProxyJump=gw",
            },
        }
    )
    assert t.host == "pi@raspberrypi.local" and t.port == 2222 and t.options == ("-o", "ProxyJump=gw")
    assert t.python_words() == ["venv/bin/python"]  # relative to the home directory ssh starts in
    with pytest.raises(Exception, match="unknown key"):
        RemoteTarget.from_spec({"host": "x", "pasword": "y"}, name="bad")
    with pytest.raises(Exception, match="not a host name"):
        RemoteTarget.from_spec({"host": "-oProxyCommand=evil"}, name="bad")


def test_devices_check_lists_python_arch_and_onnxruntime(sshd):
    from effbench.devices.check import check_device, render_check

    report = check_device(sshd.device())
    assert report["transport"] == "ssh" and report["device"] == "loopback"
    assert report["env"]["python_executable"] == sshd.ssh_block()["python"]
    assert report["runtimes"]["onnxruntime"]["version"]
    assert "onnxruntime" in report["usable_backends"]
    text = render_check(report)
    import platform

    import onnxruntime

    assert "python" in text and platform.python_version() in text
    assert "architecture" in text and platform.machine() in text
    assert f"onnxruntime    {onnxruntime.__version__}" in text or onnxruntime.__version__ in text


def test_devices_check_reports_missing_runtimes_and_errors(sshd):
    from effbench.devices.check import check_device, render_check
    from effbench.devices.remote import RemoteError

    report = check_device(sshd.device(python="/usr/bin/python3", workdir=str(sshd.root / "sys-workdir")))
    text = render_check(report)
    assert "not installed (pip install onnxruntime)" in text and report["usable_backends"] == []
    with pytest.raises(RemoteError, match="authentication refused"):
        check_device(sshd.device(identity_file=str(sshd.bad_key)))


def test_devices_check_command(sshd, tmp_path):
    """`bench devices check` over ssh, through the devices command group."""
    import json

    import yaml
    from typer.testing import CliRunner

    from effbench.commands.devices import app

    devices = tmp_path / "devices.yaml"
    devices.write_text(
        yaml.safe_dump(
            {
                "devices": {
                    "loop": {"kind": "cpu", "ssh": sshd.ssh_block()},
                    "gone": {"kind": "cpu", "ssh": sshd.ssh_block(identity_file=str(sshd.bad_key))},
                }
            }
        )
    )
    runner = CliRunner()
    r = runner.invoke(app, ["check", "loop", "--devices-file", str(devices)])
    assert r.exit_code == 0, r.output
    assert "loop: reached" in r.output and "onnxruntime" in r.output
    r = runner.invoke(app, ["check", "loop", "--devices-file", str(devices), "--json"])
    assert json.loads(r.output)["env"]["arch"]
    r = runner.invoke(app, ["check", "gone", "--devices-file", str(devices)])
    assert r.exit_code == 1 and "authentication refused" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["check", "nope", "--devices-file", str(devices)])
    assert r.exit_code == 2 and "unknown device" in r.output


def test_bench_run_on_a_remote_device_end_to_end(first_run, sshd, tmp_path):
    """`bench run --device NAME` with an ssh: entry goes through the scheduler to run_remote."""
    import yaml

    from tests.conftest import bench, read_records

    devices = tmp_path / "devices.yaml"
    devices.write_text(yaml.safe_dump({"devices": {"loopdev": {"kind": "cpu", "ssh": sshd.ssh_block()}}}))
    out = tmp_path / "r.json"
    r = bench(
        "run",
        "--model",
        MODEL,
        "--backend",
        "ort",
        "--device",
        "loopdev",
        "--duration",
        "0.3",
        "--warmup",
        "0.1",
        "--warmup-iters",
        "3",
        "--min-iters",
        "5",
        "--threads",
        "1",
        "--no-store",
        "--out",
        out,
        env={"EFFBENCH_DEVICES": str(devices)},
    )
    assert r.returncode == 0, r.output
    (rec,) = read_records(out)
    assert rec["status"] == "ok" and rec["device"] == "loopdev" and rec["runtime"]["remote"] is True
    assert rec["env"]["remote"]["device"] == "loopdev"


def test_sweep_with_a_local_and_a_remote_cell(first_run, sshd, tmp_path):
    """One lane per device: the local cell and the remote onnxruntime cell both land in the store."""
    import yaml

    from effbench.harness.store import Store
    from tests.conftest import bench

    devices = tmp_path / "devices.yaml"
    devices.write_text(yaml.safe_dump({"devices": {"loopdev": {"kind": "cpu", "ssh": sshd.ssh_block()}}}))
    sweep = tmp_path / "s.yaml"
    sweep.write_text(
        yaml.safe_dump(
            {
                "models": [MODEL],
                "backends": ["onnxruntime"],
                "devices": ["cpu", "loopdev"],
                "duration_s": 0.3,
                "warmup_s": 0.1,
                "min_iters": 5,
                "threads": 1,
            }
        )
    )
    db = str(tmp_path / "r.db")
    r = bench("sweep", sweep, "--db", db, env={"EFFBENCH_DEVICES": str(devices)})
    assert r.returncode == 0, r.output
    recs = {x["device"]: x for x in Store(db).records()}
    assert set(recs) == {"cpu", "loopdev"}
    assert all(x["status"] == "ok" for x in recs.values()), [x["error"] for x in recs.values()]
    assert recs["loopdev"]["runtime"]["remote"] is True and "remote" not in recs["cpu"]["runtime"]


def test_coreml_package_directory_travels_and_linux_devices_refuse_coreml(sshd):
    """A Core ML artifact is a directory (model.mlpackage/ + its manifest): it is copied whole and
    verified; a Linux device then says plainly that Core ML needs macOS."""
    pytest.importorskip("coremltools")
    from effbench.core.files import file_hashes
    from effbench.devices.remote import RemoteSession
    from effbench.export.pipeline import ModelSource, coreml_artifact
    from effbench.models.registry import resolve

    model = "tests.backends.bad_models:branchy_net"
    art = coreml_artifact(ModelSource(resolve(model, 16)), (1, 3, 16, 16))
    session = RemoteSession(RemoteTarget.from_spec(sshd.device("mac-ish", workdir=str(sshd.root / "wd-coreml"))))
    info = session.ensure_artifact(art.path.parent, art.key)
    assert info["artifact_copied"] is True
    remote = file_hashes(info["artifact_remote_dir"])
    assert remote == file_hashes(str(art.path.parent)) and any(k.startswith("model.mlpackage/Data/") for k in remote)
    assert session.ensure_artifact(art.path.parent, art.key)["artifact_copied"] is False

    r = run_remote(cfg(model=model, backend="coreml", input_size=16), sshd.device())
    assert r.status == "skipped" and one_line(r.error) and "needs macOS" in r.error, r.error


def test_a_run_past_the_cell_timeout_is_a_timeout_record(first_run, sshd):
    r = run_remote(cfg(duration_s=60, timeout_s=12), sshd.device())
    assert r.status == "timeout" and one_line(r.error), r.error
    assert "deadline" in r.error and "--timeout 12 s" in r.error


def test_remote_openvino_cell(first_run, sshd):
    pytest.importorskip("openvino")
    r = run_remote(cfg(backend="ov"), sshd.device())
    assert r.status == "ok", r.error
    assert r.backend == "openvino" and r.runtime["inference_num_threads"] == 1
    assert r.runtime["artifact_copied"] is True and r.parity["ok"] is True
    assert r.env["versions"]["openvino"]
