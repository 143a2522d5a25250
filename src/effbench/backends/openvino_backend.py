"""OpenVINO on the CPU. Precision is set explicitly (the CPU plugin silently runs bf16 otherwise)."""

from __future__ import annotations

import time

import numpy as np

from effbench.backends.base import Backend, LayerTime, Session, ThroughputRun, package_version
from effbench.errors import RunFailed

_OV_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
_FROM_OV = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}


class OpenVINOSession(Session):
    def __init__(self, compiled, request, profiling: bool):
        super().__init__()
        self.compiled, self.request, self.profiling = compiled, request, profiling
        self._inputs: dict[str, np.ndarray] = {}
        # The pybind methods themselves, as benchmark_app drives a request: start, then wait. The
        # Python wrapper of infer() dispatches inputs and builds an OVDict of outputs on every call.
        import openvino as ov

        self._start = ov._pyopenvino.InferRequest.start_async.__get__(request)
        self._wait = request.wait

    def bind(self, inputs):
        import openvino as ov

        self._inputs = {k: np.ascontiguousarray(v) for k, v in inputs.items()}
        for i, port in enumerate(self.compiled.inputs):
            arr = self._inputs.get(port.any_name, list(self._inputs.values())[i])
            self.request.set_input_tensor(i, ov.Tensor(arr, shared_memory=True))

    def run(self):
        self._start({}, None)
        self._wait()

    def outputs(self):
        return [np.array(self.request.get_output_tensor(i).data, copy=True)
                for i in range(len(self.compiled.outputs))]

    def run_throughput(self, duration_s, min_iters, requests):
        import openvino as ov

        n = requests or int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        queue = ov.AsyncInferQueue(self.compiled, n)
        for req in queue:
            for i, _port in enumerate(self.compiled.inputs):
                req.set_input_tensor(i, ov.Tensor(list(self._inputs.values())[i], shared_memory=True))
        latencies: list[float] = []
        queue.set_callback(lambda req, _ud: latencies.append(req.latency))
        batch = next(iter(self._inputs.values())).shape[0]
        done = 0
        t0 = time.perf_counter()
        deadline = t0 + duration_s
        while done < min_iters or time.perf_counter() < deadline:
            queue.start_async()
            done += 1
        queue.wait_all()
        seconds = time.perf_counter() - t0
        return ThroughputRun(done * batch, seconds, latencies, n,
                             {"streams": int(self.compiled.get_property("NUM_STREAMS"))})

    def profile(self, iters):
        if not self.profiling:
            return None
        totals: dict[str, list] = {}
        for _ in range(iters):
            self.run()
            for info in self.request.profiling_info:
                if info.status != info.Status.EXECUTED:
                    continue
                rec = totals.setdefault(info.node_name, [info.node_type, info.exec_type, 0.0])
                rec[2] += info.real_time.total_seconds() * 1e3
        layers = []
        for name, (node_type, exec_type, total) in totals.items():
            layers.append(LayerTime(name, node_type, total / iters, [], {"exec_type": exec_type}))
        return layers

    def close(self):
        self.request = None
        self.compiled = None


class OpenVINOBackend(Backend):
    name = "openvino"
    aliases = ("ov",)
    artifact_format = "openvino"
    precisions = ("fp32", "bf16", "fp16")
    description = "OpenVINO runtime, CPU plugin"

    def version(self):
        return package_version("openvino")

    def check_precision(self, precision, device="cpu"):
        if precision in ("bf16", "fp16"):
            import openvino as ov

            caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
            want = {"bf16": "BF16", "fp16": "FP16"}[precision]
            if want not in caps:
                return f"OpenVINO's CPU plugin has no {precision} on this CPU (capabilities: {', '.join(caps)})"
        return super().check_precision(precision, device)

    def load(self, artifact, cfg, input_shape):
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(artifact.path))
        if list(model.inputs[0].get_partial_shape()) != list(input_shape):
            model.reshape({model.inputs[0].any_name: ov.PartialShape(list(input_shape))})
        hint = cfg.options.get("hint") or ("THROUGHPUT" if cfg.scenario == "throughput" else "LATENCY")
        config = {
            "PERFORMANCE_HINT": hint.upper(),
            "INFERENCE_PRECISION_HINT": _OV_PRECISION[cfg.precision],
        }
        if cfg.threads:
            config["INFERENCE_NUM_THREADS"] = int(cfg.threads)
        if "streams" in cfg.options:
            config["NUM_STREAMS"] = cfg.options["streams"]
        profiling = cfg.options.get("profile") == "1"
        if profiling:
            config["PERF_COUNT"] = True
        try:
            compiled = core.compile_model(model, "CPU", config)
        except Exception as e:
            raise RunFailed(f"OpenVINO could not compile the model: {str(e).splitlines()[0]}") from None
        session = OpenVINOSession(compiled, compiled.create_infer_request(), profiling)
        ran_type = compiled.get_property("INFERENCE_PRECISION_HINT")
        ran = ran_type.to_string() if hasattr(ran_type, "to_string") else str(ran_type)
        session.precision_ran = _FROM_OV.get(ran, ran)
        session.runtime_info = {
            "device": "CPU",
            "performance_hint": hint.upper(),
            "inference_precision": ran,
            "inference_num_threads": int(compiled.get_property("INFERENCE_NUM_THREADS")),
            "num_streams": int(compiled.get_property("NUM_STREAMS")),
            "execution_devices": list(compiled.get_property("EXECUTION_DEVICES")),
            "cpu": core.get_property("CPU", "FULL_DEVICE_NAME"),
        }
        return session
