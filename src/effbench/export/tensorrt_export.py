"""ONNX -> TensorRT engine, cached like every other artifact.

The engine is keyed by the ONNX artifact's key, the precision, the GPU (name and compute
capability: an engine is only valid on the GPU model it was tuned for), the TensorRT version and
the build options (workspace, TF32, calibration data). The builder's timing cache lives in the
effbench cache directory (one file per TensorRT version and GPU), so a rebuild after a cache miss
re-uses the tactic timings of earlier builds.

Precision:
  TensorRT 10 (and 8.6) build "weakly typed" networks: fp16 sets BuilderFlag.FP16; int8 sets INT8
  (with FP16 for layers that have no int8 kernel) and calibrates with IInt8EntropyCalibrator2 on
  synthetic images or on `--opt calib_dir=PATH` (.npy files).
  TensorRT 11 removed those flags: networks are strongly typed, so fp16 and int8 need the ONNX graph
  converted first (NVIDIA ModelOpt: AutoCast for fp16, ONNX PTQ for int8).
fp32 clears BuilderFlag.TF32 unless `--opt tf32=1`, so that fp32 means IEEE fp32.

Build options: workspace_mb (workspace memory-pool limit), opt_level (builder optimisation level
0-5), calib_dir, calib_batches (default: 128 images' worth), tf32.

Nothing here imports tensorrt at module level; the pure helpers (cache-key parts, calibration
batches, version parsing) are tested on the CPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from effbench.backends.tensorrt_backend import capturing_logger, create, major, strongly_typed_only, trt_version
from effbench.core.gpu import gpu_build_lock
from effbench.errors import RunFailed, UsageError
from effbench.export.cache import Artifact, NotCached, cache_root, cached_only, get_or_build

__all__ = ["engine_artifact", "major", "strongly_typed_only", "trt_version"]

ENGINE_FILE = "model.engine"
PRECISIONS = ("fp32", "fp16", "int8")
_TRUE = ("1", "true", "yes", "on")
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]


CALIB_IMAGES = 128  # default calibration set size: ceil(128 / batch) batches


def default_calib_batches(batch: int) -> int:
    return max(1, -(-CALIB_IMAGES // max(1, batch)))


def build_options(options: dict[str, str] | None) -> dict[str, Any]:
    """The build options that change the engine, parsed and checked."""
    opts = options or {}
    out: dict[str, Any] = {"tf32": str(opts.get("tf32", "0")).lower() in _TRUE}
    try:
        if opts.get("workspace_mb"):
            out["workspace_mb"] = int(float(opts["workspace_mb"]))
            if out["workspace_mb"] <= 0:
                raise ValueError
        if opts.get("opt_level") not in (None, ""):
            out["opt_level"] = int(opts["opt_level"])
            if not 0 <= out["opt_level"] <= 5:
                raise ValueError
        if opts.get("calib_batches") not in (None, ""):
            out["calib_batches"] = int(opts["calib_batches"])
            if out["calib_batches"] < 1:
                raise ValueError
    except (TypeError, ValueError):
        raise UsageError(
            "invalid TensorRT option: workspace_mb must be a positive number, opt_level 0-5, calib_batches >= 1"
        ) from None
    if opts.get("calib_dir"):
        out["calib_dir"] = str(Path(opts["calib_dir"]).expanduser().resolve())
    return out


def engine_parts(
    onnx_key: str,
    precision: str,
    gpu: dict[str, Any],
    version: str,
    opts: dict[str, Any],
    calib_id: str | None,
    converter: str | None = None,
) -> dict[str, Any]:
    """What the engine cache key is made of."""
    if precision not in PRECISIONS:
        raise UsageError(f"TensorRT builds {', '.join(PRECISIONS)}, not {precision}")
    return {
        "onnx": onnx_key,
        "precision": precision,
        "tf32": bool(opts.get("tf32")) if precision == "fp32" else None,
        "gpu": gpu.get("name"),
        "compute_capability": gpu.get("compute_capability"),
        "tensorrt": version,
        "workspace_mb": opts.get("workspace_mb"),
        "opt_level": opts.get("opt_level"),
        "calibration": calib_id if precision == "int8" else None,
        "converter": converter,
    }


# --- calibration data -----------------------------------------------------------------------------


def _npy_files(calib_dir: str) -> list[Path]:
    d = Path(calib_dir)
    if not d.is_dir():
        raise UsageError(f"--opt calib_dir={calib_dir}: not a directory")
    files = sorted(d.glob("*.npy"))
    if not files:
        raise UsageError(
            f"--opt calib_dir={calib_dir}: no .npy files in it (one image (C,H,W) or a stack "
            "(N,C,H,W) per file, preprocessed like the model's inputs)"
        )
    return files


def calibration_id(calib_dir: str | None, n_batches: int, seed: int = 0) -> str:
    """Identity of the calibration data, for the engine cache key (file contents for a directory)."""
    if not calib_dir:
        return f"synthetic-imagenet-normalized:batches={n_batches}:seed={seed}"
    h = hashlib.sha256()
    for f in _npy_files(calib_dir):
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return f"dir:{h.hexdigest()[:20]}:batches={n_batches}"


def calibration_batches(
    input_shape: tuple[int, ...], calib_dir: str | None = None, n_batches: int = 8, seed: int = 0
) -> list[np.ndarray]:
    """float32 batches of `input_shape` (N, C, H, W) for int8 calibration.

    Synthetic: uniform random pixels normalised with the ImageNet mean and std, the distribution a
    vision model's first layer sees (not real images: the scales it gives are an approximation,
    which is why `calib_dir` exists). From `calib_dir`: every .npy file, each an image (C, H, W) or
    a stack (N, C, H, W), concatenated in file-name order and cut into batches of N; the last
    partial batch wraps around to the first images. At most `n_batches` batches.
    """
    n, chw = input_shape[0], tuple(input_shape[1:])
    if not calib_dir:
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(n_batches):
            x = rng.random((n, *chw), dtype=np.float32)
            if chw and chw[0] == 3:
                x = (x - _IMAGENET_MEAN[:, None, None]) / _IMAGENET_STD[:, None, None]
            out.append(np.ascontiguousarray(x, dtype=np.float32))
        return out
    images = []
    for f in _npy_files(calib_dir):
        try:
            a = np.load(f, allow_pickle=False)
        except Exception as e:
            raise UsageError(f"--opt calib_dir: cannot read {f.name}: {_first_line(e)}") from None
        if a.shape == chw:
            a = a[None]
        if a.ndim != len(chw) + 1 or tuple(a.shape[1:]) != chw:
            raise UsageError(
                f"--opt calib_dir: {f.name} has shape {tuple(a.shape)}; expected {chw} or (N, *{chw}) "
                "to match the model input"
            )
        images.append(a.astype(np.float32, copy=False))
    stack = np.concatenate(images)
    total = min(n_batches, -(-stack.shape[0] // n))
    idx = np.arange(total * n) % stack.shape[0]
    return [np.ascontiguousarray(stack[idx[b * n : (b + 1) * n]]) for b in range(total)]


# --- the build ------------------------------------------------------------------------------------


def timing_cache_path(version: str, gpu: dict[str, Any]) -> Path:
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", f"{gpu.get('name')}-cc{gpu.get('compute_capability')}").strip("-")
    return cache_root() / "tensorrt" / f"timing-trt{version}-{slug}.cache"


def _calibrator(trt, batches: list[np.ndarray], cache_file: Path, device_index: int):
    import torch

    class _EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.i = 0
            self.current = None  # the device copy must outlive get_batch's return

        def get_batch_size(self):
            return int(batches[0].shape[0])

        def get_batch(self, names):
            if self.i >= len(batches):
                return None
            self.current = torch.from_numpy(batches[self.i]).to(f"cuda:{device_index}")
            self.i += 1
            return [int(self.current.data_ptr())] * len(names)

        def read_calibration_cache(self):
            return cache_file.read_bytes() if cache_file.is_file() else None

        def write_calibration_cache(self, cache):
            cache_file.write_bytes(bytes(cache))

    return _EntropyCalibrator()


def _convert_strongly_typed(
    onnx_path: Path, out_dir: Path, precision: str, batches: list[np.ndarray] | None
) -> tuple[Path, str]:
    """TensorRT 11: fp16 / int8 have to be in the ONNX graph itself (ModelOpt)."""
    try:
        from importlib.metadata import version as _v

        import onnx
    except ImportError as e:
        raise RunFailed(f"onnx is needed for the TensorRT 11 {precision} conversion: {e}") from None
    try:
        mo_version = _v("nvidia-modelopt")
    except Exception:
        mo_version = None
    if precision == "fp16":
        try:
            from modelopt.onnx.autocast import convert_to_mixed_precision
        except ImportError:
            raise UsageError(
                "TensorRT 11 builds strongly typed networks only: fp16 needs the ONNX converted "
                "first; pip install nvidia-modelopt[onnx] (or use TensorRT 10)"
            ) from None
        target = out_dir / "model.fp16.onnx"
        try:
            model = convert_to_mixed_precision(onnx_path=str(onnx_path), low_precision_type="fp16", keep_io_types=True)
            onnx.save(model, str(target))
        except Exception as e:
            raise RunFailed(f"ModelOpt AutoCast fp16 conversion failed: {_first_line(e)}") from None
        return target, f"modelopt-autocast-{mo_version}"
    try:
        from modelopt.onnx.quantization import quantize
    except ImportError:
        raise UsageError(
            "TensorRT 11 builds strongly typed networks only: int8 needs Q/DQ nodes in the ONNX; "
            "pip install nvidia-modelopt[onnx] (or use TensorRT 10 with its calibrator)"
        ) from None
    target = out_dir / "model.int8.onnx"
    try:
        quantize(
            str(onnx_path),
            quantize_mode="int8",
            calibration_data=np.concatenate(batches or []),
            output_path=str(target),
        )
    except Exception as e:
        raise RunFailed(f"ModelOpt int8 quantization failed: {_first_line(e)}") from None
    return target, f"modelopt-quantize-{mo_version}"


def _create_network(trt, builder):
    flag_enum = getattr(trt, "NetworkDefinitionCreationFlag", None)
    explicit = getattr(flag_enum, "EXPLICIT_BATCH", None) if flag_enum is not None else None
    if explicit is not None and major(str(trt.__version__)) < 10:
        return builder.create_network(1 << int(explicit))
    try:
        return builder.create_network(0)
    except TypeError:
        return builder.create_network()


def shape_profile(
    builder: Any, network: Any, config: Any, input_shape: tuple[int, ...], calibrating: bool
) -> dict[str, Any] | None:
    """Static shapes from the export need nothing; a dynamic input gets a single-shape optimisation
    profile, which an int8 calibration on TensorRT 10 must be given as well (set_calibration_profile):
    without it the calibrator has no shape to run."""
    dynamic = [
        network.get_input(i) for i in range(network.num_inputs) if any(int(d) < 0 for d in network.get_input(i).shape)
    ]
    if not dynamic:
        return None
    if len(dynamic) > 1 or network.num_inputs > 1:
        raise RunFailed("TensorRT: more than one input with dynamic dimensions; export with fixed shapes")
    profile = builder.create_optimization_profile()
    profile.set_shape(dynamic[0].name, input_shape, input_shape, input_shape)
    config.add_optimization_profile(profile)
    if calibrating:
        config.set_calibration_profile(profile)
    return {"input": dynamic[0].name, "shape": list(input_shape), "calibration_profile": calibrating}


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def build_engine_file(
    onnx_path: Path,
    target: Path,
    precision: str,
    opts: dict[str, Any],
    device_index: int,
    input_shape: tuple[int, ...],
    gpu: dict[str, Any],
    lock: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Parse `onnx_path`, build, and write the serialized engine to `target`. Returns build info
    (`lock`: the GPU build lock held meanwhile, recorded with it)."""
    import time

    import tensorrt as trt
    import torch

    torch.cuda.set_device(device_index)
    version = str(trt.__version__)
    logger = capturing_logger(trt)
    builder = create(trt, "Builder", logger)
    network = _create_network(trt, builder)
    parser = trt.OnnxParser(network, logger)
    info: dict[str, Any] = {"tensorrt": version, "precision": precision, "flags": [], "build_lock": lock}

    batches = None
    if precision == "int8":
        batches = calibration_batches(
            input_shape, opts.get("calib_dir"), opts.get("calib_batches") or default_calib_batches(input_shape[0])
        )
        info["calibration"] = {
            "source": opts.get("calib_dir") or "synthetic (ImageNet-normalised uniform noise)",
            "batches": len(batches),
            "batch_size": int(input_shape[0]),
        }
    src = onnx_path
    if strongly_typed_only(version) and precision in ("fp16", "int8"):
        t0 = time.perf_counter()
        src, converter = _convert_strongly_typed(onnx_path, target.parent, precision, batches)
        info["converter"] = converter
        info["conversion_s"] = round(time.perf_counter() - t0, 3)

    if not parser.parse_from_file(str(src)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise RunFailed(f"TensorRT could not parse the ONNX graph: {(errors or logger.errors or ['unknown error'])[0]}")

    config = builder.create_builder_config()
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED  # layer names -> ONNX nodes in the inspector
    if opts.get("workspace_mb"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(opts["workspace_mb"]) * 2**20)
    if opts.get("opt_level") is not None:
        config.builder_optimization_level = int(opts["opt_level"])
    tf32_flag = getattr(trt.BuilderFlag, "TF32", None)
    if tf32_flag is not None and not (precision == "fp32" and opts.get("tf32")):
        config.clear_flag(tf32_flag)  # fp32 means IEEE fp32 unless --opt tf32=1
    elif tf32_flag is not None:
        info["flags"].append("TF32")

    calibrator = None
    if not strongly_typed_only(version):
        if precision in ("fp16", "int8"):
            config.set_flag(trt.BuilderFlag.FP16)
            info["flags"].append("FP16")
        if precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)
            info["flags"].append("INT8")
            calibrator = _calibrator(trt, batches or [], target.parent / "calibration.cache", device_index)
            config.int8_calibrator = calibrator  # kept referenced here until the build returns
    profile = shape_profile(builder, network, config, input_shape, calibrating=calibrator is not None)
    if profile is not None:
        info["shape_profile"] = profile

    tc_path = timing_cache_path(version, gpu)
    blob = b""
    if tc_path.is_file():
        blob = tc_path.read_bytes()
    try:
        cache = config.create_timing_cache(blob)
    except Exception:
        cache = config.create_timing_cache(b"")
        blob = b""
    config.set_timing_cache(cache, False)
    info["timing_cache"] = {"path": str(tc_path), "loaded_bytes": len(blob)}

    t0 = time.perf_counter()
    plan = builder.build_serialized_network(network, config)
    info["build_s"] = round(time.perf_counter() - t0, 3)
    if plan is None:
        why = logger.errors[-1] if logger.errors else "no error message"
        raise RunFailed(f"TensorRT engine build failed ({precision}): {why}")
    _write_atomic(target, bytes(memoryview(plan)))
    try:
        _write_atomic(tc_path, bytes(memoryview(config.get_timing_cache().serialize())))
    except Exception:
        pass  # a timing cache that cannot be saved costs the next build time, nothing else
    info["warnings"] = logger.warnings[-5:]
    (target.parent / "build.json").write_text(json.dumps(info, indent=1, default=str))
    return info


def engine_artifact(
    onnx_art: Artifact, precision: str, options: dict[str, str] | None, device_index: int, input_shape: tuple[int, ...]
) -> Artifact:
    """The cached engine for `onnx_art` on CUDA device `device_index`, built when missing."""
    from effbench.backends.cuda_util import gpu_identity

    version = trt_version()
    if version is None:
        raise UsageError("tensorrt not installed (pip install tensorrt)")
    opts = build_options(options)
    opts.setdefault("calib_batches", default_calib_batches(input_shape[0]))
    gpu = gpu_identity(device_index)
    calib = calibration_id(opts.get("calib_dir"), opts["calib_batches"]) if precision == "int8" else None
    converter = "modelopt" if strongly_typed_only(version) and precision != "fp32" else None
    parts = engine_parts(onnx_art.key, precision, gpu, version, opts, calib, converter)
    try:
        with cached_only():
            art = get_or_build("tensorrt", parts, ENGINE_FILE, lambda target: None)
    except NotCached:  # build under the GPU's lock; after a wait, an engine another process built is a cache hit
        lock_key = gpu.get("uuid") or f"{gpu.get('name')}-cuda{device_index}"
        with gpu_build_lock(str(cache_root() / "tensorrt" / "locks"), lock_key) as lock:
            art = get_or_build(
                "tensorrt",
                parts,
                ENGINE_FILE,
                lambda target: build_engine_file(
                    onnx_art.file, target, precision, opts, device_index, input_shape, gpu, lock
                ),
            )
    art.meta["onnx_path"] = str(onnx_art.path)
    art.meta["onnx_key"] = onnx_art.key
    art.meta["gpu"] = gpu
    build_json = art.file.parent / "build.json"
    if build_json.is_file():
        art.meta["build"] = json.loads(build_json.read_text())
    return art
