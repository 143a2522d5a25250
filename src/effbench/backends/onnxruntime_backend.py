"""ONNX Runtime, CPU execution provider, full graph optimisation, IOBinding."""

from __future__ import annotations

import threading
import time

import numpy as np

from effbench.backends.base import Backend, LayerTime, Session, ThroughputRun, package_version
from effbench.errors import RunFailed


class OnnxRuntimeSession(Session):
    def __init__(self, sess, profiling: bool):
        super().__init__()
        self.sess, self.profiling = sess, profiling
        self.binding = None
        self._inputs: dict[str, np.ndarray] = {}

    def _make_binding(self):
        import onnxruntime as ort

        binding = self.sess.io_binding()
        for meta, arr in zip(self.sess.get_inputs(), self._inputs.values()):
            binding.bind_ortvalue_input(meta.name, ort.OrtValue.ortvalue_from_numpy(arr))
        for meta in self.sess.get_outputs():
            binding.bind_output(meta.name, "cpu")
        return binding

    def bind(self, inputs):
        self._inputs = {k: np.ascontiguousarray(v) for k, v in inputs.items()}
        self.binding = self._make_binding()
        self._run_with = self.sess.run_with_iobinding

    def run(self):
        self._run_with(self.binding)

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
            run, b, lat = self.sess.run_with_iobinding, bindings[k], latencies[k]
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
    precisions = ("fp32",)
    description = "ONNX Runtime, CPU execution provider"

    def version(self):
        return package_version("onnxruntime") or package_version("onnxruntime-gpu")

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
        try:
            sess = ort.InferenceSession(str(artifact.path), so, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise RunFailed(f"ONNX Runtime could not load the model: {str(e).splitlines()[0]}") from None
        session = OnnxRuntimeSession(sess, profiling)
        session.precision_ran = "fp32"
        session.runtime_info = {
            "providers": sess.get_providers(),
            "graph_optimization_level": "ORT_ENABLE_ALL",
            "intra_op_num_threads": so.intra_op_num_threads or "default",
        }
        return session
