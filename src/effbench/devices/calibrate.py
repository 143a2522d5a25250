"""Measure achievable peaks (GEMM FLOP/s, streaming bandwidth) and record them in devices.yaml.

GEMM: square torch.matmul, FLOP = 2*n^3; timed in rounds of 3, the best round median counts.
Bandwidth: STREAM conventions on fp64 arrays well beyond the last-level cache. triad
a = b + s*c counts 3 x 8 bytes per element (two reads, one write; the write-allocate read is
not counted), copy counts 2 x 8. The device's bandwidth is the triad figure.
"""

from __future__ import annotations

import datetime as _dt
import re
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from effbench import yamlfile
from effbench.errors import UsageError

CPU_PRECISIONS = ("fp32", "bf16", "fp16")
CUDA_PRECISIONS = ("fp32", "tf32", "fp16", "bf16")
ROUND = 3


def _torch():
    try:
        import torch
    except ImportError:
        raise UsageError("calibration needs PyTorch: pip install 'effbench[runtimes]'") from None
    return torch


def default_cpu_precisions() -> tuple[str, ...]:
    """fp32, plus bf16 where the CPU has bf16 dot-product or AMX instructions."""
    from effbench.devices.detect import cpu_info

    return ("fp32", "bf16") if "bf16" in cpu_info().rates else ("fp32",)


def calibrate(
    device: str = "cpu",
    seconds: float = 3,
    threads: int | None = None,
    precisions: tuple[str, ...] | list[str] = ("fp32",),
) -> dict[str, Any]:
    """Measure GEMM peaks per precision and memory bandwidth on 'cpu' or 'cuda[:N]'.

    `seconds` is the rough total: split evenly between the GEMMs and the bandwidth test.
    Returns a dict ready for save_calibration (see _result for its keys).
    """
    from effbench.devices.catalog import normalize_precision

    if seconds <= 0:
        raise UsageError(f"--seconds must be positive (got {seconds})")
    precisions = tuple(dict.fromkeys(normalize_precision(p) for p in precisions))
    budget = seconds / (len(precisions) + 1)
    if device == "cpu":
        return _calibrate_cpu(budget, threads, precisions)
    if re.fullmatch(r"cuda(:\d+)?", device):
        return _calibrate_cuda(device, budget, precisions)
    raise UsageError(f"unknown calibration device '{device}' (expected cpu, cuda or cuda:N)")


def _result(
    name: str,
    kind: str,
    target: str,
    method: str,
    threads: int | None,
    gemm: dict[str, dict],
    bandwidth: dict,
    bw_source: str,
) -> dict[str, Any]:
    torch = _torch()
    return {
        "device": name,  # catalog name the results belong to
        "kind": kind,
        "target": target,  # 'cpu' or 'cuda:N'
        "timestamp": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "method": method,
        "threads": threads,
        "torch": str(torch.__version__),
        "peak_flops": {p: {"value": g["flops_per_s"], "source": g["source"]} for p, g in gemm.items()},
        "memory_bandwidth": {"value": bandwidth["bytes_per_s"], "source": bw_source},
        "details": {
            "gemm": {p: {k: v for k, v in g.items() if k != "source"} for p, g in gemm.items()},
            "bandwidth": bandwidth,
        },
    }


# --- timing ------------------------------------------------------------------------------


def _best_round_median(run_once: Callable[[], float], budget_s: float, min_runs: int = 2 * ROUND) -> tuple[float, int]:
    """Seconds per run: the best median over rounds of ROUND runs, repeated until the budget
    is spent (at least min_runs). The median resists one-off hiccups; the best round rejects
    rounds slowed by other work on a shared machine."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or (time.perf_counter() - start < budget_s and len(times) < 300):
        times.append(run_once())
    rounds = [times[i : i + ROUND] for i in range(0, len(times) - len(times) % ROUND, ROUND)]
    return min(statistics.median(r) for r in rounds), len(times)


def _pick_size(run_at: Callable[[int], float], budget_s: float, sizes=(512, 1024, 2048, 4096)) -> int:
    """Largest GEMM size whose single run fits about 1/6 of the budget (bigger GEMMs reach
    closer to peak; enough repetitions must still fit)."""
    chosen = sizes[0]
    for n in sizes:
        run_at(n)  # warm-up: first call pays for allocation and kernel selection
        if run_at(n) > budget_s / 6:
            break
        chosen = n
    return chosen


# --- CPU ---------------------------------------------------------------------------------


def _calibrate_cpu(budget: float, threads: int | None, precisions: tuple[str, ...]) -> dict[str, Any]:
    from effbench.devices.detect import cpu_info

    torch = _torch()
    bad = [p for p in precisions if p not in CPU_PRECISIONS]
    if bad:
        raise UsageError(f"cannot calibrate {', '.join(bad)} on the CPU (choose from {', '.join(CPU_PRECISIONS)})")
    info = cpu_info()
    threads = threads or info.usable_cpus
    if threads < 1:
        raise UsageError(f"--threads must be at least 1 (got {threads})")
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gemm = {p: _cpu_gemm(torch, p, budget, threads) for p in precisions}
        bandwidth = _cpu_bandwidth(torch, budget)
    finally:
        torch.set_num_threads(old_threads)
    bw_source = (
        f"calibrated: STREAM triad a = b + s*c with torch on {threads} threads, "
        f"3 x {bandwidth['array_mib']} MiB fp64 arrays, 3 x 8 bytes per element"
    )
    return _result(
        "local-cpu",
        "cpu",
        "cpu",
        "torch.matmul square GEMM (best round median) + STREAM triad/copy (torch, fp64)",
        threads,
        gemm,
        bandwidth,
        bw_source,
    )


def _cpu_gemm(torch, precision: str, budget: float, threads: int) -> dict[str, Any]:
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    mats: dict[int, tuple] = {}

    def run_at(n: int) -> float:
        if n not in mats:
            mats.clear()
            mats[n] = (torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype), torch.empty(n, n, dtype=dtype))
        a, b, c = mats[n]
        t = time.perf_counter()
        torch.matmul(a, b, out=c)
        return time.perf_counter() - t

    with torch.inference_mode():
        n = _pick_size(run_at, budget)
        seconds, runs = _best_round_median(lambda: run_at(n), budget)
    flops = 2 * n**3 / seconds
    return {
        "flops_per_s": flops,
        "n": n,
        "runs": runs,
        "seconds_per_gemm": seconds,
        "source": f"calibrated: torch.matmul {precision} {n}x{n}, {threads} threads, best median of rounds of {ROUND}",
    }


def _llc_bytes() -> int:
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"), reverse=True):
        size = (index / "size").read_text().strip() if (index / "size").exists() else ""
        m = re.fullmatch(r"(\d+)([KMG]?)", size)
        if m:
            return int(m.group(1)) * {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}[m.group(2)]
    return 32 * 2**20


def _cpu_bandwidth(torch, budget: float) -> dict[str, Any]:
    # STREAM's rule: each array at least 4x the last-level cache.
    array_bytes = min(max(4 * _llc_bytes(), 64 * 2**20), 512 * 2**20)
    n = array_bytes // 8
    a, b, c = (torch.full((n,), v, dtype=torch.float64) for v in (0.0, 1.0, 2.0))

    def triad() -> float:
        t = time.perf_counter()
        torch.add(b, c, alpha=3.0, out=a)
        return time.perf_counter() - t

    def copy() -> float:
        t = time.perf_counter()
        a.copy_(b)
        return time.perf_counter() - t

    triad(), copy()  # warm-up
    # STREAM reports the best time of its repetitions.
    t_triad = min(_repeat(triad, budget / 2))
    t_copy = min(_repeat(copy, budget / 2))
    triad_bw, copy_bw = 3 * 8 * n / t_triad, 2 * 8 * n / t_copy
    return {
        "bytes_per_s": triad_bw,
        "triad_bytes_per_s": triad_bw,
        "copy_bytes_per_s": copy_bw,
        "array_mib": array_bytes // 2**20,
        "convention": "STREAM: triad 3 x 8 bytes/element, copy 2 x 8; write-allocate not counted",
    }


def _repeat(fn: Callable[[], float], budget_s: float, min_runs: int = 3) -> list[float]:
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < budget_s:
        times.append(fn())
    return times


# --- CUDA --------------------------------------------------------------------------------


def _calibrate_cuda(target: str, budget: float, precisions: tuple[str, ...]) -> dict[str, Any]:
    torch = _torch()
    if not torch.cuda.is_available():
        raise UsageError(
            f"calibrate --device {target}: PyTorch sees no CUDA GPU "
            "(torch.cuda.is_available() is False); use --device cpu"
        )
    bad = [p for p in precisions if p not in CUDA_PRECISIONS]
    if bad:
        raise UsageError(
            f"cannot calibrate {', '.join(bad)} with torch.matmul on CUDA (choose from {', '.join(CUDA_PRECISIONS)})"
        )
    dev = torch.device(target)
    gpu_name = torch.cuda.get_device_name(dev)
    gemm = {p: _cuda_gemm(torch, dev, p, budget) for p in precisions}
    bandwidth = _cuda_bandwidth(torch, dev, budget)
    bw_source = (
        f"calibrated: device-to-device copy of {bandwidth['array_mib']} MiB on {gpu_name}, "
        "2 x bytes (read + write), CUDA events"
    )
    result = _result(
        _catalog_name_for_gpu(gpu_name),
        "gpu",
        target,
        "torch.matmul square GEMM timed with CUDA events (best round median) + device-to-device copy",
        None,
        gemm,
        bandwidth,
        bw_source,
    )
    result["description"] = gpu_name
    return result


def _catalog_name_for_gpu(gpu_name: str) -> str:
    from effbench.devices.catalog import load_catalog, match_device

    return match_device(load_catalog(), gpu_name) or "local-cuda"


def _cuda_timer(torch, fn: Callable[[], Any]) -> Callable[[], float]:
    def run_once() -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3

    return run_once


def _cuda_gemm(torch, dev, precision: str, budget: float) -> dict[str, Any]:
    dtype = {"fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
    old_precision = torch.get_float32_matmul_precision()
    # "high" lets fp32 matmuls use TF32 tensor cores, "highest" keeps them in true fp32.
    torch.set_float32_matmul_precision("high" if precision == "tf32" else "highest")
    try:
        mats: dict[int, tuple] = {}

        def run_at(n: int) -> float:
            if n not in mats:
                mats.clear()
                mats[n] = tuple(torch.randn(n, n, device=dev, dtype=dtype) for _ in range(2)) + (
                    torch.empty(n, n, device=dev, dtype=dtype),
                )
            a, b, c = mats[n]
            return _cuda_timer(torch, lambda: torch.matmul(a, b, out=c))()

        with torch.inference_mode():
            n = _pick_size(run_at, budget, sizes=(2048, 4096, 8192))
            seconds, runs = _best_round_median(lambda: run_at(n), budget, min_runs=3 * ROUND)
    finally:
        torch.set_float32_matmul_precision(old_precision)
        mats.clear()
        torch.cuda.empty_cache()
    return {
        "flops_per_s": 2 * n**3 / seconds,
        "n": n,
        "runs": runs,
        "seconds_per_gemm": seconds,
        "source": f"calibrated: torch.matmul {precision} {n}x{n} on {torch.cuda.get_device_name(dev)}, "
        f"CUDA events, best median of rounds of {ROUND}",
    }


def _cuda_bandwidth(torch, dev, budget: float) -> dict[str, Any]:
    nbytes = 1 << 30
    src = torch.empty(nbytes, dtype=torch.uint8, device=dev).fill_(1)
    dst = torch.empty_like(src)
    run = _cuda_timer(torch, lambda: dst.copy_(src))
    run()
    best = min(_repeat(run, budget, min_runs=5))
    src = dst = None  # free the GPU buffers before emptying the cache
    torch.cuda.empty_cache()
    return {
        "bytes_per_s": 2 * nbytes / best,
        "copy_bytes_per_s": 2 * nbytes / best,
        "array_mib": nbytes // 2**20,
        "convention": "copy: 2 x bytes (one read, one write)",
    }


# --- saving ------------------------------------------------------------------------------


def calibration_block(results: dict[str, Any]) -> dict[str, Any]:
    """The `calibrated:` mapping stored under a device in devices.yaml."""
    block = {
        k: results[k]
        for k in ("timestamp", "method", "threads", "torch", "peak_flops", "memory_bandwidth")
        if results.get(k) is not None
    }
    block["details"] = results.get("details", {})
    return block


def save_calibration(name: str, results: dict[str, Any], path: str | Path | None = None) -> Path:
    """Write results as `calibrated:` under device `name` in a devices file; returns the file.

    path None means the file load_catalog would read; when that is the packaged default, a
    ./devices.yaml seeded from it is written instead (the package is no place for user data).
    A missing explicit file is seeded the same way. Comments and layout are kept where the
    entry is in block style; otherwise the file is rewritten as plain YAML.
    """
    from effbench.devices.catalog import DEFAULT_FILE, ENV_VAR, load_catalog, resolve_path

    if path is None:
        import os

        env = os.environ.get(ENV_VAR)
        target = Path(env) if env else resolve_path(None)
        if target.resolve() == DEFAULT_FILE.resolve():
            target = Path.cwd() / "devices.yaml"
    else:
        target = Path(path).expanduser()
    text = target.read_text() if target.is_file() else DEFAULT_FILE.read_text()
    data = yamlfile.safe_load(text)
    if not isinstance(data, dict) or not isinstance(data.get("devices"), dict):
        raise UsageError(f"{target}: expected a top-level 'devices:' mapping; not saving the calibration")
    block = calibration_block(results)
    entry = data["devices"].get(name)
    new_entry = dict(entry) if isinstance(entry, dict) else _new_entry(results)
    new_entry["calibrated"] = block
    data["devices"][name] = new_entry

    new_text = _edit_in_place(text, name, entry is not None, new_entry, block)
    if new_text is None or yamlfile.safe_load(new_text) != data:
        new_text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    target.write_text(new_text)
    load_catalog(target)  # what was written must load
    return target


def _new_entry(results: dict[str, Any]) -> dict[str, Any]:
    if results.get("kind") == "cpu":
        return {"kind": "cpu", "detect": True}
    return {"kind": results.get("kind", "gpu"), "description": results.get("description", "")}


def _edit_in_place(text: str, name: str, exists: bool, entry: dict, block: dict) -> str | None:
    """Replace (or add) the device's `calibrated:` block as text, keeping everything else.
    Returns None when the layout is not the plain block style this understands."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    content = [i for i, ln in enumerate(lines) if ln.strip() and not ln.lstrip().startswith("#")]
    indent = lambda i: len(lines[i]) - len(lines[i].lstrip())
    top = next((i for i in content if re.match(r"devices:\s*(#.*)?$", lines[i])), None)
    if top is None:
        return None
    if not exists:
        # Append a new entry after the last line of the devices mapping.
        after = [i for i in content if i > top]
        end = next((i for i in after if indent(i) == 0), len(lines))
        step = indent(after[0]) if after and indent(after[0]) > 0 else 2
        last = max([i for i in after if i < end], default=top)
        body = _indent(yaml.safe_dump({name: entry}, sort_keys=False), step)
        return "".join(lines[: last + 1] + [body] + lines[last + 1 :])
    key = re.compile(rf"\s+['\"]?{re.escape(name)}['\"]?:\s*(#.*)?$")
    start = next((i for i in content if i > top and key.fullmatch(lines[i].rstrip("\n"))), None)
    if start is None:
        return None
    entry_indent = indent(start)
    body_lines = []
    for i in content:
        if i <= start:
            continue
        if indent(i) <= entry_indent:
            break
        body_lines.append(i)
    if not body_lines:
        return None
    child = indent(body_lines[0])
    # Drop an existing calibrated: block (its key line and everything indented below it).
    keep, skipping = [], False
    for i in range(start + 1, body_lines[-1] + 1):
        if i in content:
            if indent(i) == child:
                skipping = lines[i].lstrip().startswith("calibrated:")
            elif indent(i) < child:
                skipping = False
        if not skipping:
            keep.append(lines[i])
    new_block = _indent(yaml.safe_dump({"calibrated": block}, sort_keys=False), child)
    return "".join(lines[: start + 1] + keep + [new_block] + lines[body_lines[-1] + 1 :])


def _indent(text: str, n: int) -> str:
    pad = " " * n
    return "".join(pad + ln if ln.strip() else ln for ln in text.splitlines(keepends=True))
