"""GPU check steps for scripts/gpu-check.sh: each step runs one effbench cell in its own process
through the harness `bench run` uses (check, prepare, a worker process, assemble:
effbench.harness.scheduler.run_cells) and writes its record as JSON; the summary step reads them
all back and prints the figures.

    python scripts/gpu_check.py env
    python scripts/gpu_check.py steps
    python scripts/gpu_check.py cell NAME OUT.json
    python scripts/gpu_check.py summary DIR

A step whose backend or precision cannot run here (no TensorRT, no onnxruntime-gpu, TensorRT 11
fp16/int8 without NVIDIA ModelOpt) is recorded as unusable with the backend's own reason.
tests/test_gpu_check.py runs this machinery on the CPU (null backend, torch on CPU) in every CI run.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effbench.backends.registry import get_backend
from effbench.harness.config import RunConfig
from effbench.harness.result import Result
from effbench.harness.scheduler import run_cells

MODEL = "efficientvit_m5"
FALLBACK = "tiny_models:tiny_cnn"  # tests/plugins, used when timm is missing
DEVICE = "cuda:0"
SHORT: dict[str, Any] = dict(duration_s=2.0, warmup_s=0.5, warmup_iters=20, min_iters=50)
NO_ENERGY = {"energy": "0"}
OK_STATUSES = ("ok", "unusable")  # unusable: the backend or precision cannot run here (its reason)


@dataclass(frozen=True)
class Step:
    name: str
    what: str
    fields: dict[str, Any] = field(default_factory=dict)  # RunConfig fields beside model and device


STEPS = [
    Step("eager_b1", "torch eager fp32, batch 1", dict(backend="torch", options=NO_ENERGY)),
    Step("graph_b1", "torch + CUDA graph fp32, batch 1", dict(backend="torch", cuda_graph=True, options=NO_ENERGY)),
    Step("fp16_b1", "torch fp16, batch 1", dict(backend="torch", precision="fp16", options=NO_ENERGY)),
    Step(
        "b256_energy",
        "torch fp32, batch 256 throughput + energy (5 s x 2 windows, 5 s idle)",
        dict(
            backend="torch",
            batch_size=256,
            scenario="throughput",
            parity=False,
            energy_window_s=5.0,
            options={"energy_windows": "2", "idle_s": "5"},
        ),
    ),
    Step("trt_fp32_b1", "tensorrt fp32, batch 1 (needs tensorrt)", dict(backend="tensorrt", options=NO_ENERGY)),
    Step(
        "trt_fp16_b1",
        "tensorrt fp16, batch 1 (TensorRT 11: needs nvidia-modelopt)",
        dict(backend="tensorrt", precision="fp16", options=NO_ENERGY),
    ),
    Step(
        "trt_int8_b1",
        "tensorrt int8, batch 1, synthetic calibration (TensorRT 11: needs nvidia-modelopt)",
        dict(backend="tensorrt", precision="int8", options={**NO_ENERGY, "calib_batches": "4"}),
    ),
    Step(
        "ort_cuda_b1",
        "onnxruntime CUDA provider, batch 1 (needs onnxruntime-gpu)",
        dict(backend="onnxruntime", options=NO_ENERGY),
    ),
]

PACKAGES = [
    ("torch", True),
    ("numpy", True),
    ("pydantic", True),
    ("typer", True),
    ("rich", True),
    ("yaml", True),
    ("sqlalchemy", True),
    ("pandas", True),
    ("scipy", True),
    ("psutil", True),
    ("pynvml", True),
    ("onnx", True),
    ("timm", False),
    ("onnxruntime", False),
    ("tensorrt", False),
    ("modelopt", False),
    ("pytest", False),
]


def _have(mod: str) -> bool:
    try:
        importlib.import_module(mod)
        return True
    except Exception:
        return False


def model_name() -> str:
    return MODEL if _have("timm") else FALLBACK


def step_config(step: Step, model: str, device: str) -> RunConfig:
    return RunConfig(model=model, device=device, **{**SHORT, **step.fields})


def skip_reason(cfg: RunConfig) -> str | None:
    """Why the step's backend or precision cannot run on its device (the backend's own words)."""
    backend = get_backend(cfg.backend)
    return backend.unavailable_reason(cfg.device) or backend.check_precision(cfg.precision, cfg.device)


def cmd_env() -> int:
    print(f"python      {sys.version.split()[0]} ({sys.executable})")
    missing_req: list[str] = []
    missing_opt: list[str] = []
    for mod, required in PACKAGES:
        if not _have(mod):
            (missing_req if required else missing_opt).append(mod)
    try:
        import torch

        print(
            f"torch       {torch.__version__} (CUDA build {torch.version.cuda}); "
            f"cuda available: {torch.cuda.is_available()}, devices: {torch.cuda.device_count()}"
        )
        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            print(f"cuda:0      {p.name}, cc {p.major}.{p.minor}, {p.total_memory / 2**30:.0f} GiB")
    except Exception as e:
        print(f"torch       NOT USABLE: {e}")
    print("effbench    importable (harness.scheduler.run_cells)")  # this module imports it at the top
    if not _have("timm"):
        print(
            f"NOTE        timm missing: the cells run {FALLBACK} instead of {MODEL}; "
            "their figures are NOT efficientvit_m5 (carry a timm wheel: pip install timm)"
        )
    print("missing required: " + (", ".join(missing_req) if missing_req else "none"))
    print(
        "missing optional: "
        + (", ".join(missing_opt) if missing_opt else "none")
        + "  (tensorrt / onnxruntime-gpu / modelopt steps report unusable, with the reason, without them)"
    )
    return 1 if missing_req else 0


def run_step(step: Step, out: Path, model: str, device: str = DEVICE) -> dict[str, Any]:
    """Run one step's cell and write its JSON record to `out`; the record is returned too."""
    rec: dict[str, Any] = {"step": step.name, "what": step.what, "model": model}
    t0 = time.perf_counter()
    try:
        cfg = step_config(step, model, device)
        reason = skip_reason(cfg)
        if reason:
            rec.update(status="unusable", error=reason)
        else:
            result: Result = run_cells([cfg], isolate=True, show_progress=False)[0]
            record = result.to_dict()
            record.pop("samples_ms", None)
            rec.update(status=result.status, error=result.error, record=record)
    except Exception as e:
        rec.update(
            status="failed", error=f"{type(e).__name__}: {e}".splitlines()[0], traceback=traceback.format_exc(limit=-4)
        )
    rec["wall_s"] = round(time.perf_counter() - t0, 1)
    out.write_text(json.dumps(rec, indent=1, default=str))
    print(f"  [{step.name}] {rec['status']} in {rec['wall_s']} s" + (f": {rec['error']}" if rec.get("error") else ""))
    return rec


def _fmt(v: float | None, nd: int = 3, unit: str = "") -> str:
    return "-" if v is None else f"{v:.{nd}f}{unit}"


def _step_line(name: str, r: dict[str, Any]) -> str:
    rec = r.get("record") or {}
    lat = rec.get("latency_ms") or {}
    parity = rec.get("parity") or {}
    runtime = rec.get("runtime") or {}
    timing = rec.get("timing") or {}
    note = r.get("error") or ""
    hv = runtime.get("host_vs_device") or {}
    if hv.get("device_over_host") is not None:
        note = (note + f" device/host time {hv['device_over_host']:.2f}").strip()
    if runtime.get("cuda_graph_captured"):
        note = (note + " graph captured").strip()
    if timing.get("load_cold_s") is not None:
        note = (note + f" cold load {timing['load_cold_s']:.2f} s").strip()
    return (
        f"{name:<13} {r.get('status', '?'):<9} {_fmt(lat.get('median'), 4):>10} {_fmt(lat.get('p90'), 4):>9} "
        f"{_fmt(rec.get('throughput_per_s'), 1):>10} {str(rec.get('precision_ran') or '-'):>5} "
        f"{('ok' if parity.get('ok') else ('FAIL' if parity else '-')):>7}  {note[:110]}"
    )


def _energy_lines(e: dict[str, Any]) -> list[str]:
    if not e:
        return ["  no energy record"]
    if not e.get("available"):
        return [f"  unavailable: {e.get('reason')}"]
    cc = e.get("cross_check") or {}
    g = e.get("gpu") or {}
    lines = [
        f"  method: {e.get('method')}{' (ESTIMATED)' if e.get('estimated') else ''}",
        f"  counter:    {_fmt(e.get('joules_per_image'), 6)} J/image  windows {e.get('samples_j_per_image')}"
        f"  std {_fmt(e.get('std'), 6)}",
        f"  integrated: {_fmt(cc.get('joules_per_image'), 6)} J/image  ratio integrated/counter "
        f"{_fmt(cc.get('ratio_to_counter'), 4)} (per window {cc.get('window_ratios')}), "
        f"{_fmt(cc.get('sample_hz'), 1)} Hz, power field {cc.get('power_field') or g.get('power_field')}",
        f"  avg power:  {_fmt(e.get('avg_power_w'), 1)} W   idle: {_fmt(e.get('idle_w'), 1)} W "
        f"({(e.get('idle') or {}).get('method')})   dynamic: "
        f"{_fmt((e.get('dynamic') or {}).get('joules_per_image'), 6)} J/image",
        f"  throttle reasons seen: {e.get('throttle_reasons_seen')}",
        f"  gpu: {g.get('name')} uuid {g.get('uuid')} (cuda {g.get('cuda_index')} = nvml {g.get('nvml_index')}), "
        f"driver {g.get('driver_version')}, CUDA driver {g.get('cuda_driver_version')}, "
        f"power limit {g.get('power_limit_w')} W, temp {g.get('temperature_before_c')} -> "
        f"{g.get('temperature_after_c')} C, SM clocks {g.get('sm_clock_mhz_end_of_windows')} MHz",
    ]
    return lines + [f"  warning: {w}" for w in e.get("warnings") or []]


def summary(directory: Path, steps: list[Step], energy_step: str | None = "b256_energy") -> int:
    """Print every step's figures from its JSON record; 1 when a step failed or left no record."""
    recs: dict[str, dict[str, Any]] = {}
    for step in steps:
        p = directory / f"{step.name}.json"
        recs[step.name] = json.loads(p.read_text()) if p.is_file() else {"status": "no output (crashed or timed out)"}
    print(f"model: {next((r['model'] for r in recs.values() if r.get('model')), model_name())}")
    print(f"{'step':<13} {'status':<9} {'median ms':>10} {'p90 ms':>9} {'img/s':>10} {'ran':>5} {'parity':>7}  note")
    bad = 0
    for name, r in recs.items():
        bad += r.get("status") not in OK_STATUSES
        print(_step_line(name, r))
    if energy_step is not None:
        print(f"\nenergy ({energy_step}):")
        print("\n".join(_energy_lines(((recs.get(energy_step) or {}).get("record") or {}).get("energy") or {})))
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    by_name = {s.name: s for s in STEPS}
    if argv[:1] == ["env"]:
        return cmd_env()
    if argv[:1] == ["cell"] and len(argv) == 3 and argv[1] in by_name:
        rec = run_step(by_name[argv[1]], Path(argv[2]), model_name())
        return 0 if rec["status"] in OK_STATUSES else 1
    if argv[:1] == ["summary"] and len(argv) == 2:
        return summary(Path(argv[1]), STEPS)
    if argv[:1] == ["steps"]:
        print(" ".join(by_name))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
