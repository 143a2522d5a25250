"""ONNX Runtime, full graph optimisation, IOBinding.

CPU execution provider by default. With onnxruntime-gpu and `--device cuda[:N]`, `--opt ep=cuda`
(the default there) or `--opt ep=tensorrt` picks the GPU provider; inputs and outputs are then
bound on the device (OrtValues in CUDA memory), so no host copy is timed.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from effbench.backends.base import Backend, LayerTime, Session, ThroughputRun, package_version
from effbench.errors import RunFailed


_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
              "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
              "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_}

_EPS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


class OnnxRuntimeSession(Session):
    def __init__(self, sess, profiling: bool, device_id: int | None = None):
        super().__init__()
        self.sess, self.profiling = sess, profiling
        self.device_id = device_id  # CUDA device of the bound inputs/outputs; None: host memory
        self.binding = None
        self._inputs: dict[str, np.ndarray] = {}

    def _make_binding(self):
        import onnxruntime as ort

        binding = self.sess.io_binding()
        if self.device_id is None:
            for meta, arr in zip(self.sess.get_inputs(), self._inputs.values()):
                binding.bind_ortvalue_input(meta.name, ort.OrtValue.ortvalue_from_numpy(arr))
            for meta in self.sess.get_outputs():
                binding.bind_output(meta.name, "cpu")
            return binding
        dev = self.device_id
        for meta, arr in zip(self.sess.get_inputs(), self._inputs.values()):
            binding.bind_ortvalue_input(meta.name, ort.OrtValue.ortvalue_from_numpy(arr, "cuda", dev))
        for meta in self.sess.get_outputs():
            shape = meta.shape
            if all(isinstance(d, int) and d > 0 for d in shape) and meta.type in _ORT_TYPES:
                value = ort.OrtValue.ortvalue_from_shape_and_type(list(shape), _ORT_TYPES[meta.type], "cuda", dev)
                binding.bind_ortvalue_output(meta.name, value)
            else:  # symbolic shape: ORT allocates on the device
                binding.bind_output(meta.name, "cuda", dev)
        binding.synchronize_inputs()
        return binding

    def bind(self, inputs):
        self._inputs = {k: np.ascontiguousarray(v) for k, v in inputs.items()}
        self.binding = self._make_binding()
        self._run_with = self.sess.run_with_iobinding if self.device_id is None else self._run_synced

    def run(self):
        self._run_with(self.binding)

    def _run_synced(self, binding):
        # Run() ends with a sync of ORT's CUDA stream; synchronize_outputs makes sure of it
        self.sess.run_with_iobinding(binding)
        binding.synchronize_outputs()

    def device_memory(self):
        if self.device_id is None:
            return None
        from effbench.backends.cuda_util import nvml_memory

        nv = nvml_memory(self.device_id)
        return {"nvml": nv} if nv else None

    def outputs(self):
        return [np.array(o, copy=True) for o in self.binding.copy_outputs_to_cpu()]

    def run_throughput(self, duration_s, min_iters, requests):
        """`requests` inferences in flight, each from its own thread with its own binding (ORT
        releases the GIL while it runs)."""
        import os

        n = requests or max(2, len(os.sched_getaffinity(0)))
        bindings = [self._make_binding() for _ in range(n)]
        latencies: list[list[float]] = [[] for _ in range(n)]
        counts = [0] * n
        batch = next(iter(self._inputs.values())).shape[0]
        start = threading.Barrier(n + 1)
        deadline = [0.0]

        def worker(k):
            run = self.sess.run_with_iobinding if self.device_id is None else self._run_synced
            b, lat = bindings[k], latencies[k]
            start.wait()
            while counts[k] * n < min_iters or time.perf_counter() < deadline[0]:
                t0 = time.perf_counter_ns()
                run(b)
                lat.append((time.perf_counter_ns() - t0) / 1e6)
                counts[k] += 1

        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(n)]
        for t in threads:
            t.start()
        t0 = time.perf_counter()
        deadline[0] = t0 + duration_s
        start.wait()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - t0
        return ThroughputRun(sum(counts) * batch, seconds, [x for lat in latencies for x in lat], n)

    def profile(self, iters):
        if not self.profiling:
            return None
        import json

        for _ in range(iters):
            self.run()
        path = self.sess.end_profiling()
        events = json.load(open(path))
        totals: dict[str, list] = {}
        for ev in events:
            if ev.get("cat") != "Node" or not ev.get("name", "").endswith("_kernel_time"):
                continue
            node = ev["name"][: -len("_kernel_time")]
            rec = totals.setdefault(node, [ev.get("args", {}).get("op_name", "?"), 0.0, 0])
            rec[1] += ev["dur"] / 1e3
            rec[2] += 1
        layers = [LayerTime(name, op, total / iters, [], {"calls": calls})
                  for name, (op, total, calls) in totals.items()]
        import os

        os.unlink(path)
        return layers


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    aliases = ("ort",)
    artifact_format = "onnx"
    precisions = ("fp32",)  # fp16 too on cuda with --opt ep=tensorrt
    devices = ("cpu", "cuda")
    description = "ONNX Runtime: CPU provider; on cuda (onnxruntime-gpu) --opt ep=cuda|tensorrt"

    def version(self):
        return package_version("onnxruntime") or package_version("onnxruntime-gpu")

    def unavailable_reason(self, device="cpu"):
        if device.split(":")[0] != "cuda" or self.version() is None:
            return super().unavailable_reason(device)
        reason = _provider_missing("cuda")
        if reason:
            return reason
        from effbench.backends.cuda_util import cuda_unavailable_reason

        return cuda_unavailable_reason(device)

    def check_precision(self, precision, device="cpu"):
        if device.split(":")[0] == "cuda" and precision == "fp16":
            return None  # with the TensorRT execution provider (checked at load)
        return super().check_precision(precision, device)

    def load(self, artifact, cfg, input_shape):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        if cfg.threads:
            so.intra_op_num_threads = int(cfg.threads)
            so.inter_op_num_threads = 1
        profiling = cfg.options.get("profile") == "1"
        if profiling:
            import tempfile

            so.enable_profiling = True
            so.profile_file_prefix = tempfile.mkdtemp(prefix="effbench-ort-") + "/ort"
        ep, providers, device_id = _providers(cfg)
        try:
            sess = ort.InferenceSession(str(artifact.path), so, providers=providers)
        except Exception as e:
            raise RunFailed(f"ONNX Runtime could not load the model: {str(e).splitlines()[0]}") from None
        if ep != "cpu" and sess.get_providers()[0] != _EPS[ep]:
            raise RunFailed(f"ONNX Runtime did not enable {_EPS[ep]} (it fell back to {sess.get_providers()[0]}); "
                            "check the CUDA/cuDNN libraries that onnxruntime-gpu needs")
        session = OnnxRuntimeSession(sess, profiling, device_id)
        session.precision_ran = cfg.precision if ep == "tensorrt" else "fp32"
        session.runtime_info = {
            "providers": sess.get_providers(),
            "graph_optimization_level": "ORT_ENABLE_ALL",
            "intra_op_num_threads": so.intra_op_num_threads or "default",
        }
        if device_id is not None:
            session.runtime_info.update({"execution_provider": _EPS[ep], "device_id": device_id,
                                         "io_binding": "inputs and outputs as OrtValues in CUDA memory",
                                         "timing": "host clock around a synchronous Run"})
        return session


def _provider_missing(ep: str) -> str | None:
    import onnxruntime as ort

    name = _EPS[ep]
    if name in ort.get_available_providers():
        return None
    if ep == "cuda":
        return f"onnxruntime-gpu not installed: {name} missing (pip install onnxruntime-gpu)"
    return (f"this ONNX Runtime build has no {name} (onnxruntime-gpu with TensorRT libraries "
            "installed provides it); use --opt ep=cuda")


def _providers(cfg) -> tuple[str, list, int | None]:
    """(execution provider key, providers list for InferenceSession, CUDA device id or None)."""
    from effbench.errors import UsageError

    on_cuda = cfg.device.split(":")[0] == "cuda"
    ep = str(cfg.options.get("ep", "cuda" if on_cuda else "cpu")).lower()
    if ep not in _EPS:
        raise UsageError(f"unknown --opt ep={ep!r}; use one of: {', '.join(_EPS)}")
    if ep == "cpu":
        if on_cuda:
            raise UsageError("--opt ep=cpu with --device cuda: use --device cpu for the CPU provider")
        return ep, ["CPUExecutionProvider"], None
    if not on_cuda:
        raise UsageError(f"--opt ep={ep} needs --device cuda (or cuda:N)")
    reason = _provider_missing(ep)
    if reason:
        raise UsageError(reason)
    if cfg.precision != "fp32" and ep != "tensorrt":
        raise UsageError(f"onnxruntime with {_EPS[ep]} runs the fp32 ONNX graph; "
                         f"--precision {cfg.precision} needs --opt ep=tensorrt")
    from effbench.backends.cuda_util import cuda_index
    from effbench.export.cache import cache_root

    dev = cuda_index(cfg.device)
    cuda_opts = {"device_id": dev}
    if ep == "cuda":
        return ep, [("CUDAExecutionProvider", cuda_opts), "CPUExecutionProvider"], dev
    cache = cache_root() / "ort-tensorrt"
    cache.mkdir(parents=True, exist_ok=True)
    trt_opts = {"device_id": dev, "trt_fp16_enable": cfg.precision == "fp16",
                "trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
                "trt_timing_cache_enable": True, "trt_timing_cache_path": str(cache)}
    if "workspace_mb" in cfg.options:
        trt_opts["trt_max_workspace_size"] = int(float(cfg.options["workspace_mb"]) * 2**20)
    return ep, [("TensorrtExecutionProvider", trt_opts), ("CUDAExecutionProvider", cuda_opts),
                "CPUExecutionProvider"], dev
