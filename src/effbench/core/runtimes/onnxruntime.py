"""ONNX Runtime sessions: full graph optimisation, IOBinding; inputs and outputs bound in CUDA memory
when the backend asks for a GPU provider (runtime_options["device_id"])."""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple

import numpy as np

from .. import placement
from ..gpu import cuda_device_uuid, gpu_build_lock, nvml_memory
from ..session import CoreError, LayerTime, Session, ThroughputRun, first_line
from ..settings import MeasureSettings

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}
QUANTIZED_OPS = (
    "QLinearConv",
    "QLinearMatMul",
    "ConvInteger",
    "MatMulInteger",
    "QGemm",
    "QLinearAdd",
    "QLinearMul",
    "QLinearGlobalAveragePool",
    "QLinearSigmoid",
    "QLinearLeakyRelu",
    "QLinearConcat",
    "QLinearAveragePool",
    "QLinearSoftmax",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
)
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def version() -> Optional[str]:
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    return ort.__version__


def probe() -> Dict[str, Any]:
    try:
        import onnxruntime as ort
    except ImportError as e:
        return {"missing": True, "pip": "onnxruntime", "error": first_line(e)}
    except Exception as e:
        return {"error": "%s: %s" % (type(e).__name__, first_line(e))}
    return {"version": ort.__version__, "providers": list(ort.get_available_providers())}


def session_options(threads: Optional[int], profile_prefix: Optional[str] = None, optimized_path: Optional[str] = None):
    """The SessionOptions every effbench ONNX Runtime session uses (and the profiler's saved graph)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    if optimized_path:
        so.optimized_model_filepath = optimized_path
    # which execution provider each node went to, kept by ORT at partitioning (no cost when running)
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")
    return so


def fused_int8(optimized_path: str, names: Iterable[str]) -> Set[str]:
    """Names among `names` (nodes of a QDQ file) that ORT fused into int8 kernels (QLinearConv, QGemm,
    ...) in the optimised graph it saved; the op runs in fp32 between its Q/DQ pairs when it could not."""
    import onnx

    wanted = set(names)
    found: Set[str] = set()
    for node in onnx.load(optimized_path, load_external_data=False).graph.node:
        if node.op_type not in QUANTIZED_OPS:
            continue
        # a fused node keeps the target's name (with a "_token_N" suffix) or writes its output tensor
        for cand in (node.name, node.name.split("_token_")[0], *node.output):
            if cand in wanted:
                found.add(cand)
                break
    return found


def placement_nodes(sess, precision: str, optimized_path: Optional[str]) -> List[placement.Node]:
    """[node, op type, execution provider, precision, MACs (None: the harness adds them)] per node ORT
    assigned. int8: a node ran int8 when ORT fused it into an int8 kernel (read from the optimised graph)."""
    assigned = [
        (node.name, node.op_type, sub.ep_name)
        for sub in sess.get_provider_graph_assignment_info()
        for node in sub.get_nodes()
    ]
    fused: Set[str] = set()
    if precision == "int8" and optimized_path and os.path.isfile(optimized_path):
        try:
            fused = fused_int8(optimized_path, [name for name, _, _ in assigned])
        except ImportError:  # a device without onnx: the QLinear/Integer op types still say it
            pass
    base = precision if precision in ("fp16", "bf16") else "fp32"
    return [
        (name, op, ep, "int8" if name in fused or op in QUANTIZED_OPS or op in QDQ_OPS else base, None)
        for name, op, ep in assigned
    ]


class OnnxRuntimeSession(Session):
    def __init__(self, sess, profiling: bool, device_id: Optional[int] = None, optimized_path: Optional[str] = None):
        super().__init__()
        self.sess, self.profiling, self.optimized_path = sess, profiling, optimized_path
        self.device_id = device_id  # CUDA device of the bound inputs/outputs; None: host memory
        self.binding: Any = None
        self._inputs: Dict[str, np.ndarray] = {}
        self.int8_source: Optional[Tuple[str, Optional[int], List[Any]]] = None

    def set_placement(self, sess, precision: str, optimized_path: Optional[str]) -> None:
        nodes = placement_nodes(sess, precision, optimized_path)
        self.runtime_info["placement"] = placement.summarize(nodes, sess.get_providers()[0], precision=precision)
        self.runtime_info["placement_nodes"] = nodes  # the harness adds MACs per node from its graph analysis

    def late_info(self):
        """int8: which nodes ORT fused into int8 kernels, from the optimised graph a second session of the
        same model and options saves (saving it from the timed session would slow its load by ~40%)."""
        if self.int8_source is None:
            return
        import onnxruntime as ort

        path, threads, providers = self.int8_source
        self.int8_source = None
        with tempfile.TemporaryDirectory(prefix="effbench-ortopt-") as tmp:
            optimized = os.path.join(tmp, "optimized.onnx")
            try:
                sess = ort.InferenceSession(path, session_options(threads, None, optimized), providers=providers)
                self.set_placement(sess, "int8", optimized)
            except Exception as e:  # the placement read at load stays (int8 by op type only)
                self.runtime_info["placement_note"] = "int8 fusion not read: %s" % first_line(e)

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
        self.sess.run_with_iobinding(binding)
        binding.synchronize_outputs()

    def outputs(self):
        return [np.array(o, copy=True) for o in self.binding.copy_outputs_to_cpu()]

    def run_throughput(self, duration_s, min_iters, requests):
        """`requests` inferences in flight, each from its own thread with its own binding (ORT
        releases the GIL while it runs)."""
        n = requests or max(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2)
        bindings = [self._make_binding() for _ in range(n)]
        latencies: List[List[float]] = [[] for _ in range(n)]
        counts = [0] * n
        batch = next(iter(self._inputs.values())).shape[0]
        start = threading.Barrier(n + 1)
        deadline = [0.0]
        run = self.sess.run_with_iobinding if self.device_id is None else self._run_synced

        def worker(k):
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
        return ThroughputRun(sum(counts) * batch, time.perf_counter() - t0, [x for lat in latencies for x in lat], n)

    def profile(self, iters):
        if not self.profiling:
            return None
        for _ in range(iters):
            self.run()
        path = self.sess.end_profiling()
        with open(path) as f:
            events = json.load(f)
        os.unlink(path)
        totals: Dict[str, list] = {}
        for ev in events:
            if ev.get("cat") != "Node" or not ev.get("name", "").endswith("_kernel_time"):
                continue
            node = ev["name"][: -len("_kernel_time")]
            rec = totals.setdefault(node, [ev.get("args", {}).get("op_name", "?"), 0.0, 0])
            rec[1] += ev["dur"] / 1e3
            rec[2] += 1
        # the profiler records every run of the session (warm-up and timed runs too): the number of
        # runs is the most common per-kernel call count (most kernels run once per inference)
        counts = [calls for _, _, calls in totals.values() if calls > 0]
        runs = max(set(counts), key=counts.count) if counts else iters
        if runs > iters:
            self.runtime_info["profile_note"] = (
                "the runtime's profiler recorded %d runs (warm-up and timed runs as well as the %d profiled "
                "ones): per-layer times are means over all %d" % (runs, iters, runs)
            )
        per = max(runs, iters)
        return [LayerTime(name, op, total / per, [], {"calls": calls}) for name, (op, total, calls) in totals.items()]

    def runtime_graph(self):
        """The optimized graph this session saved when it was created (profiled sessions only)."""
        if not self.optimized_path or not os.path.isfile(self.optimized_path):
            return None
        try:
            import onnx
        except ImportError:  # a device without onnx: the harness maps by names
            return None
        g = onnx.load(self.optimized_path, load_external_data=False).graph
        return {
            "nodes": [
                {"name": n.name, "op_type": n.op_type, "input": list(n.input), "output": list(n.output)} for n in g.node
            ],
            "initializers": [t.name for t in g.initializer],
        }

    def device_memory(self):
        if self.device_id is None:
            return None
        uuid = cuda_device_uuid(self.device_id)  # NVML's device of this CUDA ordinal, never NVML's index
        nvml = nvml_memory(uuid)
        if nvml is None:
            why = "no NVML device with its UUID" if uuid else "its UUID could not be read from the CUDA driver"
            return {"nvml": None, "reason": "cuda:%d: %s" % (self.device_id, why)}
        return {"nvml": nvml}


def quantized_nodes(model_path: str) -> Dict[str, int]:
    """op type -> count of the quantised operators in an ONNX file (QDQ pairs and QLinear ops)."""
    import onnx

    counts: Dict[str, int] = {}
    for node in onnx.load(model_path, load_external_data=False).graph.node:
        if node.op_type in QUANTIZED_OPS or node.op_type in QDQ_OPS:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def open_session(path: str, settings: MeasureSettings) -> OnnxRuntimeSession:
    """runtime_options: providers (list of names or [name, options]), device_id (CUDA, or None),
    execution_provider (the one that must end up first), precision_ran."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise CoreError("missing_runtime", "onnxruntime not installed", packages=["onnxruntime"]) from None
    opts = settings.runtime_options
    workdir = tempfile.mkdtemp(prefix="effbench-ort-") if settings.profile_iters else None
    prefix = workdir + "/ort" if workdir else None
    optimized = workdir + "/optimized.onnx" if workdir else None
    so = session_options(settings.threads, prefix, optimized)
    providers = [p if isinstance(p, str) else (p[0], p[1]) for p in opts.get("providers") or ["CPUExecutionProvider"]]
    lock: Optional[Dict[str, Any]] = None
    try:
        if opts.get("build_lock_dir"):  # the TensorRT EP builds its engines here: one build per GPU at a time
            device = int(opts.get("device_id") or 0)
            with gpu_build_lock(opts["build_lock_dir"], cuda_device_uuid(device) or "cuda%d" % device) as lock:
                sess = ort.InferenceSession(str(path), so, providers=providers)
        else:
            sess = ort.InferenceSession(str(path), so, providers=providers)
    except Exception as e:
        raise CoreError("load_failed", "ONNX Runtime could not load the model: %s" % first_line(e)) from None
    wanted = opts.get("execution_provider")
    if wanted and sess.get_providers()[0] != wanted:
        raise CoreError(
            "load_failed",
            "ONNX Runtime did not enable %s (it fell back to %s); check the CUDA/cuDNN "
            "libraries that onnxruntime-gpu needs" % (wanted, sess.get_providers()[0]),
        )
    session = OnnxRuntimeSession(sess, bool(prefix), opts.get("device_id"), optimized)
    session.precision_ran = opts.get("precision_ran") or "fp32"
    session.runtime_info = {
        "providers": sess.get_providers(),
        "graph_optimization_level": "ORT_ENABLE_ALL",
        "intra_op_num_threads": so.intra_op_num_threads or "default",
    }
    if settings.precision == "int8":
        q = quantized_nodes(str(path))
        session.runtime_info["quantized_nodes"] = q
        session.precision_ran = "int8" if q else "fp32"
    session.set_placement(sess, settings.precision, optimized)
    if settings.precision == "int8" and not optimized:  # which nodes ORT fused into int8 kernels: late_info
        session.int8_source = (str(path), settings.threads, providers)
    if opts.get("device_id") is not None:
        session.runtime_info.update(
            {
                "execution_provider": wanted,
                "device_id": opts["device_id"],
                "io_binding": "inputs and outputs as OrtValues in CUDA memory",
                "timing": "host clock around a synchronous Run",
            }
        )
    if lock is not None:
        session.runtime_info["build_lock"] = lock
    return session
