"""The GPU-path logic that needs no GPU: TensorRT's creation errors and optimisation profiles, the
per-GPU build lock, CUDA event creation outside the timed loop, NVML's power field, throttle bits
and idle window, ORT-GPU memory by UUID. Where a library object would need a GPU (a TensorRT
logger/builder, a CUDA event, an NVML handle) a small stand-in takes its place, and says so."""

from __future__ import annotations

import multiprocessing
import sys
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from effbench.backends import nvml
from effbench.backends.cuda_util import EventPool, cuda_timed_loop
from effbench.backends.tensorrt_backend import DRIVER_HINT, capturing_logger, create, creation_failure, runtime_probe
from effbench.core.gpu import cuda_device_uuid, gpu_build_lock, lock_name, nvml_uuid
from effbench.core.runtimes.onnxruntime import OnnxRuntimeSession
from effbench.errors import RunFailed
from effbench.export.tensorrt_export import shape_profile
from effbench.harness.meters import energy

# --- TensorRT: a Builder/Runtime that cannot be made says the logger's words ----------------------


class _ILogger:  # stands in for tensorrt.ILogger (no TensorRT wheel runs without a GPU)
    INTERNAL_ERROR, ERROR, WARNING, INFO = range(4)

    def __init__(self) -> None:
        pass


def _fake_trt(logged: str | None, raises: bool) -> Any:
    def factory(logger: Any) -> Any:
        if logged:
            logger.log(_ILogger.ERROR, logged)
        if raises:
            raise TypeError("pybind11::init(): factory function returned nullptr")
        return None

    return SimpleNamespace(ILogger=_ILogger, Runtime=factory, Builder=factory)


def test_a_runtime_that_cannot_initialise_cuda_raises_the_loggers_text():
    said = "CUDA initialization failure with error: 35. Please check your CUDA installation"
    trt = _fake_trt(said, raises=True)
    with pytest.raises(RunFailed) as e:
        create(trt, "Runtime", capturing_logger(trt))
    assert str(e.value) == f"TensorRT could not create its Runtime: {said}{DRIVER_HINT}"
    assert "nullptr" not in str(e.value)


def test_a_builder_that_returns_none_without_a_message_still_says_which():
    trt = _fake_trt(None, raises=False)
    with pytest.raises(RunFailed, match="could not create its Builder: no error message$"):
        create(trt, "Builder", capturing_logger(trt))
    logger = SimpleNamespace(errors=[])
    assert creation_failure("Runtime", logger, TypeError("factory function returned nullptr")).endswith("nullptr")


def test_the_usability_probe_creates_a_runtime_and_reports_why_it_could_not(monkeypatch):
    said = "CUDA initialization failure with error: 35"
    monkeypatch.setitem(sys.modules, "tensorrt", _fake_trt(said, raises=True))
    runtime_probe.cache_clear()
    try:
        assert runtime_probe() == f"TensorRT could not create its Runtime: {said}{DRIVER_HINT}"
        runtime_probe.cache_clear()
        monkeypatch.setitem(sys.modules, "tensorrt", SimpleNamespace(ILogger=_ILogger, Runtime=lambda log: object()))
        assert runtime_probe() is None
    finally:
        runtime_probe.cache_clear()


# --- TensorRT: optimisation and calibration profiles ---------------------------------------------


class _Recorder:  # stands in for a TensorRT network, builder, config and profile: records the calls
    def __init__(self, shapes: list[tuple[int, ...]]):
        self.inputs = [SimpleNamespace(name=f"in{i}", shape=s) for i, s in enumerate(shapes)]
        self.num_inputs = len(shapes)
        self.calls: list[tuple] = []

    def get_input(self, i: int) -> Any:
        return self.inputs[i]

    def create_optimization_profile(self) -> Any:
        calls = self.calls
        return SimpleNamespace(set_shape=lambda *a: calls.append(("set_shape", *a)))

    def add_optimization_profile(self, p: Any) -> None:
        self.calls.append(("add_optimization_profile",))

    def set_calibration_profile(self, p: Any) -> None:
        self.calls.append(("set_calibration_profile",))


def test_a_dynamic_input_gets_its_profile_and_int8_its_calibration_profile():
    net = _Recorder([(-1, 3, 32, 32)])
    got = shape_profile(net, net, net, (4, 3, 32, 32), calibrating=True)
    assert got == {"input": "in0", "shape": [4, 3, 32, 32], "calibration_profile": True}
    assert [c[0] for c in net.calls] == ["set_shape", "add_optimization_profile", "set_calibration_profile"]
    fp16 = _Recorder([(-1, 3, 32, 32)])
    assert (shape_profile(fp16, fp16, fp16, (1, 3, 32, 32), calibrating=False) or {})["calibration_profile"] is False
    assert ("set_calibration_profile",) not in fp16.calls
    static = _Recorder([(1, 3, 32, 32)])
    assert shape_profile(static, static, static, (1, 3, 32, 32), calibrating=True) is None and not static.calls
    with pytest.raises(RunFailed, match="more than one input"):
        two = _Recorder([(-1, 3, 8, 8), (1, 4)])
        shape_profile(two, two, two, (1, 3, 8, 8), calibrating=False)


# --- the per-GPU build lock (a real file lock across real processes) -----------------------------


def _hold(lock_dir: str, key: str, out: Any, hold_s: float) -> None:
    with gpu_build_lock(lock_dir, key) as rec:
        out.put(("start", time.monotonic(), rec["waited_s"]))
        time.sleep(hold_s)
        out.put(("end", time.monotonic(), 0.0))


def test_builds_for_one_gpu_take_turns_and_other_gpus_do_not_wait(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_hold, args=(str(tmp_path), "gpu-a", q, 0.6)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    events = sorted((q.get(timeout=5) for _ in range(4)), key=lambda e: e[1])
    assert [e[0] for e in events] == ["start", "end", "start", "end"]  # never two builds at once
    assert max(e[2] for e in events) > 0.3  # the second one waited, and its record says so
    with gpu_build_lock(str(tmp_path), "gpu-a") as a, gpu_build_lock(str(tmp_path), "gpu-b") as b:
        assert a["held"] and b["held"] and a["path"] != b["path"]
    assert lock_name("NVIDIA H100/80GB") == "gpu-NVIDIA-H100-80GB.lock"


# --- CUDA events: created before the timed region -------------------------------------------------


class _Event:  # stands in for torch.cuda.Event: only the order of calls matters here
    log: list[str] = []

    def __init__(self) -> None:
        self.recorded = 0

    def record(self, stream: Any = None) -> None:
        self.recorded += 1
        _Event.log.append("record")

    def synchronize(self) -> None:
        _Event.log.append("sync")

    def elapsed_time(self, end: Any) -> float:
        return 0.5


def test_events_are_created_and_recorded_once_before_the_loop_times_anything():
    _Event.log = []
    pool = EventPool(_Event)
    pool.ensure(3, stream="s")
    assert len(pool.starts) == 3 and all(e.recorded == 1 for e in pool.starts + pool.ends)
    assert _Event.log == ["record"] * 6 + ["sync"]
    _Event.log = []
    out = np.zeros(3, np.int64)
    cuda_timed_loop(lambda: _Event.log.append("launch"), "s", 3, out, 0, pool)
    assert "sync" not in _Event.log[:-1] and _Event.log.count("launch") == 3  # no new event in the loop
    assert (out == 500_000).all()
    pool.ensure(2)
    assert len(pool.starts) == 3  # big enough already: nothing made or recorded


# --- NVML: the power field, unknown throttle bits, idle time --------------------------------------


def _fake_nvml(instant_ok: bool) -> Any:  # stands in for pynvml on a GPU (no driver here)
    def field_values(handle: Any, ids: list[int]) -> list[Any]:
        assert ids == [186]
        return [SimpleNamespace(nvmlReturn=0 if instant_ok else 3, value=SimpleNamespace(uiVal=123_000))]

    return SimpleNamespace(
        NVML_FI_DEV_POWER_INSTANT=186,
        nvmlDeviceGetFieldValues=field_values,
        nvmlDeviceGetPowerUsage=lambda h: 250_000,
        nvmlDeviceGetTotalEnergyConsumption=lambda h: 1_000,
    )


def test_the_meter_reads_instantaneous_power_where_the_field_exists():
    meter = nvml.NvmlMeter(_fake_nvml(True), "h", 0, 0, "u")
    assert meter.power_field == "instant" and meter.read_power_mw() == 123_000.0
    old = nvml.NvmlMeter(_fake_nvml(False), "h", 0, 0, "u")
    assert old.power_field == "average" and old.read_power_mw() == 250_000.0


def test_unknown_throttle_bits_are_printed_as_such():
    assert nvml.decode_throttle_reasons(0x4 | 0x200 | 0x400) == ["sw_power_cap", "unknown_0x200", "unknown_0x400"]
    assert nvml.decode_throttle_reasons(0x1) == ["gpu_idle"]


def test_idle_power_covers_at_least_the_meters_minimum():
    plan = energy.EnergyPlan("cuda:0", "torch", 1, idle_s=1.0)
    assert energy.idle_seconds(plan, SimpleNamespace(min_idle_s=nvml.MIN_IDLE_S)) == 5.0
    assert energy.idle_seconds(plan, SimpleNamespace()) == 1.0  # RAPL: no minimum
    off = energy.EnergyPlan("cuda:0", "torch", 1, idle_s=0.0)
    assert energy.idle_seconds(off, SimpleNamespace(min_idle_s=5.0)) == 0.0
    default = energy.EnergyPlan("cuda:0", "torch", 1)
    assert energy.idle_seconds(default, SimpleNamespace()) >= 5.0


# --- ONNX Runtime GPU memory: by UUID, never by NVML index ----------------------------------------


def test_ort_gpu_memory_is_matched_by_uuid_or_not_at_all():
    assert nvml_uuid("000102030405060708090a0b0c0d0e0f") == "GPU-00010203-0405-0607-0809-0a0b0c0d0e0f"
    assert cuda_device_uuid(0) is None  # no CUDA driver on this machine
    session = OnnxRuntimeSession(sess=None, profiling=False, device_id=1)
    got = session.device_memory()
    assert got == {"nvml": None, "reason": "cuda:1: its UUID could not be read from the CUDA driver"}
    assert OnnxRuntimeSession(sess=None, profiling=False).device_memory() is None
