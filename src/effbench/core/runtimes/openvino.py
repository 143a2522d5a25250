"""OpenVINO sessions on the CPU plugin, driven like benchmark_app: bound tensors, start + wait.

Precision is set explicitly: the CPU plugin silently runs bf16 on CPUs that have it otherwise. A
quantised IR (NNCF) runs its int8 layers in int8 whatever the hint; the precision that ran is read
back from the runtime model's layer precisions.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .. import placement
from ..session import CoreError, LayerTime, Session, ThroughputRun, first_line
from ..settings import MeasureSettings

OV_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16", "int8": "f32"}
FROM_OV = {"f32": "fp32", "bf16": "bf16", "f16": "fp16", "u8": "int8", "i8": "int8"}


def version() -> Optional[str]:
    try:
        import openvino as ov
    except ImportError:
        return None
    return ov.get_version() if hasattr(ov, "get_version") else ov.__version__


def probe() -> Dict[str, Any]:
    try:
        import openvino as ov

        devices = list(ov.Core().available_devices)
    except ImportError as e:
        return {"missing": True, "pip": "openvino", "error": first_line(e)}
    except Exception as e:
        return {"error": "%s: %s" % (type(e).__name__, first_line(e))}
    return {"version": version(), "devices": devices}


def _rt(info, key: str) -> str:
    if key not in info:
        return ""
    value = info[key]
    return value.astype(str) if hasattr(value, "astype") else str(value)


class OpenVINOSession(Session):
    def __init__(self, compiled, request, profiling: bool):
        super().__init__()
        self.compiled, self.request, self.profiling = compiled, request, profiling
        self._inputs: Dict[str, np.ndarray] = {}
        self._start = _starter(request)
        self._wait = request.wait

    def bind(self, inputs):
        self._inputs = {k: np.ascontiguousarray(v) for k, v in inputs.items()}
        self._bind_to(self.request)

    def _bind_to(self, request):
        values = list(self._inputs.values())
        for i, port in enumerate(self.compiled.inputs):
            request.set_input_tensor(i, _owned_tensor(self._inputs.get(port.any_name, values[i])))

    def run(self):
        self._start()
        self._wait()

    def outputs(self):
        return [np.array(self.request.get_output_tensor(i).data, copy=True) for i in range(len(self.compiled.outputs))]

    def run_throughput(self, duration_s, min_iters, requests):
        """`requests` infer requests kept in flight, each restarted as soon as it is waited for (in
        turn: they finish in the order they started on equal work). No Python callback: a callback
        is released in a stream thread, which then needs the GIL, and can deadlock against the
        compiled model's destructor (see _owned_tensor)."""
        n = requests or int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        pool = [self.compiled.create_infer_request() for _ in range(n)]
        for req in pool:
            self._bind_to(req)
        starts = [_starter(req) for req in pool]
        latencies: List[float] = []
        t0 = time.perf_counter()
        deadline = t0 + duration_s
        for start in starts:
            start()
        in_flight = deque(range(n))  # the order they were started in
        while in_flight:
            k = in_flight.popleft()
            pool[k].wait()
            latencies.append(pool[k].latency)
            if len(latencies) + len(in_flight) < min_iters or time.perf_counter() < deadline:
                starts[k]()
                in_flight.append(k)
        seconds = time.perf_counter() - t0
        streams = int(self.compiled.get_property("NUM_STREAMS"))
        batch = next(iter(self._inputs.values())).shape[0]
        return ThroughputRun(len(latencies) * batch, seconds, latencies, n, {"streams": streams})

    def profile(self, iters):
        if not self.profiling:
            return None
        totals: Dict[str, list] = {}
        for _ in range(iters):
            self.run()
            for info in self.request.profiling_info:
                if info.status != info.Status.EXECUTED:
                    continue
                rec = totals.setdefault(info.node_name, [info.node_type, info.exec_type, 0.0])
                rec[2] += info.real_time.total_seconds() * 1e3
        return [
            LayerTime(name, node_type, total / iters, [], {"exec_type": exec_type})
            for name, (node_type, exec_type, total) in totals.items()
        ]

    def runtime_graph(self):
        """The runtime (execution) model of the very compilation that ran: each layer with its type,
        the original layer names it fused, its inputs, execution order and output precision."""
        ops = []
        for op in self.compiled.get_runtime_model().get_ordered_ops():
            info = op.get_rt_info()
            try:
                order = int(_rt(info, "execOrder"))
            except ValueError:
                order = -1
            ops.append(
                {
                    "name": op.get_friendly_name(),
                    "layer_type": _rt(info, "layerType") or op.get_type_name(),
                    "original_names": [s.strip() for s in _rt(info, "originalLayersNames").split(",") if s.strip()],
                    "inputs": [i.get_source_output().get_node().get_friendly_name() for i in op.inputs()],
                    "exec_order": order,
                    "precision": _rt(info, "outputPrecisions") or _rt(info, "runtimePrecision"),
                    "runtime_precision": _rt(info, "runtimePrecision"),
                }
            )
        return ops

    def close(self):
        # the bound methods hold the request (and through it the compiled model and its threads):
        # drop them too, or every closed session lives on in a long-running process
        self._start = self._wait = None
        self.request = None
        self.compiled = None


def _starter(request):
    """start_async as the pybind method itself: the Python wrapper dispatches inputs on every call."""
    import openvino as ov

    try:
        raw = ov._pyopenvino.InferRequest.start_async
    except AttributeError:
        return request.start_async
    return lambda: raw(request, {}, None)


def _owned_tensor(arr: np.ndarray):
    """A tensor that owns a copy of the data, as benchmark_app binds them. A tensor sharing the numpy
    array's memory is released through Python: when the compiled model's stream threads drop their
    last reference while the main thread holds the GIL in the compiled model's destructor (joining
    those threads), the process deadlocks."""
    import openvino as ov

    return ov.Tensor(arr, shared_memory=False)


def _first(precisions: str) -> str:
    return precisions.split(",")[0].strip().lower()


COMPUTE_LAYERS = ("Convolution", "FullyConnected", "MatMul", "GroupConvolution", "Deconvolution")


def compute_layers(graph: List[Dict[str, Any]]) -> List[Tuple[str, str, str]]:
    """(name, layer type, runtime precision) of the compute layers (convolutions and matrix products):
    the layer's own runtime precision, else that of the data arriving at it (a quantised FullyConnected
    can output f32 when nothing after it is quantised)."""
    out_prec = {op["name"]: _first(op.get("precision") or "") for op in graph}
    rows = []
    for op in graph:
        if op["layer_type"] in COMPUTE_LAYERS:
            src = out_prec.get(op["inputs"][0], "") if op.get("inputs") else ""
            raw = _first(op.get("runtime_precision") or "") or src or _first(op.get("precision") or "")
            rows.append((op["name"], op["layer_type"], FROM_OV.get(raw, raw or "?")))
    return rows


def layer_precisions(graph: List[Dict[str, Any]]) -> Dict[str, int]:
    """Runtime precision -> number of compute layers that ran in it."""
    counts: Dict[str, int] = {}
    for _name, _kind, prec in compute_layers(graph):
        counts[prec] = counts.get(prec, 0) + 1
    return counts


def model_cache_dir(artifact_path: str) -> str:
    """OpenVINO's compiled-model cache, beside the artifact directories (artifacts/<key>/model.xml):
    loading a model compiled before takes a fraction of compiling it."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(artifact_path))), ".openvino-model-cache")


def open_session(path: str, settings: MeasureSettings) -> OpenVINOSession:
    """runtime_options: hint (LATENCY | THROUGHPUT | CUMULATIVE_THROUGHPUT), streams (int or AUTO)."""
    try:
        import openvino as ov
    except ImportError:
        raise CoreError("missing_runtime", "openvino not installed", packages=["openvino"]) from None
    opts = settings.runtime_options
    core = ov.Core()
    hint = str(opts.get("hint") or ("THROUGHPUT" if settings.scenario == "throughput" else "LATENCY")).upper()
    config: Dict[str, Any] = {
        "PERFORMANCE_HINT": hint,
        "INFERENCE_PRECISION_HINT": OV_PRECISION.get(settings.precision, "f32"),
    }
    if settings.threads:
        config["INFERENCE_NUM_THREADS"] = int(settings.threads)
    if opts.get("streams") is not None:
        config["NUM_STREAMS"] = str(opts["streams"])
    if settings.profile_iters:
        config["PERF_COUNT"] = True
    if opts.get("model_cache"):
        config["CACHE_DIR"] = model_cache_dir(path)
    try:
        model = core.read_model(str(path))
        shape = list(settings.input_shape)
        if list(model.inputs[0].get_partial_shape()) != shape:
            model.reshape({model.inputs[0].any_name: ov.PartialShape(shape)})
        compiled = core.compile_model(model, "CPU", config)
    except Exception as e:
        raise CoreError("load_failed", "OpenVINO could not compile the model: %s" % first_line(e)) from None
    session = OpenVINOSession(compiled, compiled.create_infer_request(), bool(settings.profile_iters))
    ran_type = compiled.get_property("INFERENCE_PRECISION_HINT")
    ran = ran_type.to_string() if hasattr(ran_type, "to_string") else str(ran_type)
    session.precision_ran = FROM_OV.get(ran, ran)
    session.runtime_info = {
        "device": "CPU",
        "performance_hint": hint,
        "inference_precision": ran,
        "inference_num_threads": int(compiled.get_property("INFERENCE_NUM_THREADS")),
        "num_streams": int(compiled.get_property("NUM_STREAMS")),
        "execution_devices": list(compiled.get_property("EXECUTION_DEVICES")),
        "cpu": core.get_property("CPU", "FULL_DEVICE_NAME"),
        "model_cache": "CACHE_DIR" in config,
    }
    graph = session.runtime_graph()
    # where the compute layers ran and in which precision (OpenVINO gives no MACs per runtime layer: nodes)
    session.runtime_info["placement"] = placement.summarize(
        [(name, kind, "CPU", prec, None) for name, kind, prec in compute_layers(graph)], "CPU"
    )
    if settings.precision == "int8":
        precisions = layer_precisions(graph)
        session.runtime_info["compute_layer_precisions"] = precisions
        if precisions.get("int8"):
            session.precision_ran = "int8"
    return session
