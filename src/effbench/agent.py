"""effbench's on-device agent: load an artifact, warm up, measure, print ONE JSON line.

This file is copied as is to remote devices (Raspberry Pi, Jetson, Mac) and run there with the
device's own Python. It is self-contained on purpose: it imports only the standard library, numpy
and the one runtime it is asked to use, never effbench, and it keeps to Python 3.8 syntax (JetPack 5
ships 3.8). Locally it runs as `python -m effbench.agent`.

Modes (each prints JSON lines on stdout; the last line is the answer):

  --probe                       what this device has: OS, architecture, CPU, Python, runtimes
  --hashes DIR                  sha256 of every file under DIR ({} when DIR does not exist)
  --receive DIR                 read a tar stream on stdin, check it, and put it at DIR atomically
  --run --artifact PATH ...     load, warm up, measure; the input comes as .npy on stdin (or
                                --input FILE), outputs go back base64-encoded .npy in the JSON

Timing follows effbench/harness/measure.py exactly: one first inference (timed apart), warm-up
until both --warmup seconds and --warmup-iters are reached, then chunks of perf_counter_ns-timed
inferences into a preallocated int64 buffer until both --duration and --min-iters are met (and, with
--target-ci, until the median's 95% CI half-width is within it, bounded by --max-duration).

Progress lines look like {"event": "progress", ...}; the answer is {"event": "result", ...} or
{"event": "error", "kind": ..., "message": ...} (exit code 3). Anything a runtime prints on
stdout is sent to stderr, so it cannot corrupt the protocol.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import math
import os
import platform
import socket
import sys
import time

AGENT_VERSION = "1"
PROTOCOL = 1
HASHES_FILE = ".effbench-hashes.json"  # written by the harness into each artifact transfer

# what `pip install` needs, per backend; the import name comes first
RUNTIMES = {
    "onnxruntime": ("onnxruntime", "onnxruntime"),
    "openvino": ("openvino", "openvino"),
    "coreml": ("coremltools", "coremltools"),
}
_VERSION_DISTS = ("numpy", "onnxruntime", "onnxruntime-gpu", "openvino", "coremltools", "tflite-runtime",
                  "ai-edge-litert", "torch")
_INTERESTING_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                      "avx512_fp16", "amx_bf16", "amx_int8", "amx_tile", "avx_vnni", "neon", "asimd", "sve",
                      "asimddp", "asimdhp", "i8mm", "bf16")
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE",
                "KMP_AFFINITY", "CUDA_VISIBLE_DEVICES")
# ARM "CPU part" numbers (implementer 0x41 unless noted) for the cores found in common boards
_ARM_PARTS = {
    "0xd03": "Cortex-A53", "0xd04": "Cortex-A35", "0xd05": "Cortex-A55", "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72", "0xd09": "Cortex-A73", "0xd0a": "Cortex-A75", "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1", "0xd0d": "Cortex-A77", "0xd40": "Neoverse-V1", "0xd41": "Cortex-A78",
    "0xd42": "Cortex-A78AE", "0xd44": "Cortex-X1", "0xd46": "Cortex-A510", "0xd47": "Cortex-A710",
    "0xd48": "Cortex-X2", "0xd49": "Neoverse-N2", "0xd4b": "Cortex-A78C", "0xd4f": "Neoverse-V2",
    "0x004": "NVIDIA Carmel",
}
_CHUNK_S = 0.1
_EXIT_ERROR = 3


class AgentError(Exception):
    def __init__(self, kind: str, message: str, **extra):
        super().__init__(message)
        self.kind, self.message, self.extra = kind, message, extra


# --- the protocol channel ------------------------------------------------------------------

class Channel:
    """JSON lines on the real stdout; fd 1 itself is pointed at stderr so runtimes cannot write there."""

    def __init__(self) -> None:
        try:
            sys.stdout.flush()
            fd = os.dup(1)
            os.dup2(2, 1)
            self._out = os.fdopen(fd, "w", buffering=1)
            sys.stdout = sys.stderr
        except OSError:  # no real fds (embedded use): write where we can
            self._out = sys.stdout
        self._last = 0.0

    def send(self, obj: dict) -> None:
        self._out.write(json.dumps(obj, default=_json_default, separators=(",", ":")) + "\n")
        self._out.flush()

    def progress(self, phase: str, fraction: float, detail: str) -> None:
        now = time.monotonic()
        if fraction in (0.0, 1.0) or now - self._last > 0.2:
            self._last = now
            self.send({"event": "progress", "phase": phase, "fraction": round(float(fraction), 3),
                       "detail": detail})


def _json_default(o):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:
        pass
    return str(o)


# --- environment fingerprint ---------------------------------------------------------------

def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace").replace("\x00", "").strip()
    except OSError:
        return None


def _cpuinfo() -> dict:
    info: dict = {}
    text = _read("/proc/cpuinfo") or ""
    for line in text.splitlines():
        if ":" in line:
            k, v = (s.strip() for s in line.split(":", 1))
            info.setdefault(k, v)
    return info


def _sysctl(name: str) -> str | None:
    import subprocess

    try:
        r = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5)
        return r.stdout.strip() or None if r.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_model() -> str:
    if platform.system() == "Darwin":
        return _sysctl("machdep.cpu.brand_string") or platform.processor() or platform.machine()
    info = _cpuinfo()
    if info.get("model name"):
        return info["model name"]
    part = info.get("CPU part")
    if part:  # ARM boards: name the core from its part number
        parts = set()
        for line in (_read("/proc/cpuinfo") or "").splitlines():
            if line.startswith("CPU part") and ":" in line:
                parts.add(line.split(":", 1)[1].strip().lower())
        names = sorted(_ARM_PARTS.get(p, "ARM core " + p) for p in parts)
        return " + ".join(names)
    return info.get("Hardware") or info.get("Model") or platform.processor() or platform.machine()


def cpu_flags() -> list:
    info = _cpuinfo()
    flags = set((info.get("flags") or info.get("Features") or "").split())
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        flags.update({"neon", "asimd"})
    return [f for f in _INTERESTING_FLAGS if f in flags]


def board() -> str | None:
    """Raspberry Pi / Jetson model string, or the Mac's model identifier."""
    model = _read("/proc/device-tree/model") or _read("/sys/firmware/devicetree/base/model")
    if model:
        return model
    if platform.system() == "Darwin":
        return _sysctl("hw.model")
    return None


def os_name() -> str:
    if platform.system() == "Darwin":
        ver = platform.mac_ver()[0]
        return "macOS %s" % ver if ver else "Darwin %s" % platform.release()
    text = _read("/etc/os-release") or ""
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return platform.platform()


def memory_gib() -> float | None:
    text = _read("/proc/meminfo")
    if text:
        for line in text.splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2 ** 20, 1)
    if platform.system() == "Darwin":
        v = _sysctl("hw.memsize")
        if v and v.isdigit():
            return round(int(v) / 2 ** 30, 1)
    return None


def usable_cpus() -> list | None:
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return None


def versions() -> dict:
    try:
        from importlib.metadata import PackageNotFoundError, version
    except ImportError:  # Python < 3.8 cannot happen here, but never fail a probe over it
        return {}
    out = {}
    for dist in _VERSION_DISTS:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
        except Exception:
            pass
    return out


def governor() -> str | None:
    return _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except (OSError, AttributeError):
        return None


def fingerprint(threads: int | None = None, cpus: list | None = None) -> dict:
    aff = usable_cpus()
    return {
        "hostname": socket.gethostname(),
        "os": "%s %s" % (platform.system(), platform.release()),
        "os_name": os_name(),
        "machine": platform.machine(),
        "arch": platform.machine(),
        "board": board(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(aff) if aff is not None else os.cpu_count(),
        "affinity": aff,
        "memory_gib": memory_gib(),
        "governor": governor(),
        "versions": versions(),
        "threads": threads,
        "pinned_cpus": cpus,
        "thread_env": {k: os.environ[k] for k in _THREAD_VARS if k in os.environ},
        "agent": AGENT_VERSION,
    }


def _runtime_probe(name: str) -> dict:
    """Import the runtime and say what it offers (or why it cannot be used)."""
    module = RUNTIMES[name][0]
    try:
        if name == "onnxruntime":
            import onnxruntime as ort

            return {"version": ort.__version__, "providers": list(ort.get_available_providers())}
        if name == "openvino":
            import openvino as ov

            core = ov.Core()
            devices = list(core.available_devices)
            return {"version": ov.get_version() if hasattr(ov, "get_version") else ov.__version__,
                    "devices": devices}
        if name == "coreml":
            if platform.system() != "Darwin":  # do not pay for importing it (it imports torch)
                return {"version": versions().get("coremltools"), "usable": False,
                        "why": "Core ML runs only on macOS"}
            import coremltools as ct

            return {"version": ct.__version__, "compute_units": [u.name for u in ct.ComputeUnit]}
    except ImportError as e:
        return {"missing": True, "pip": RUNTIMES[name][1], "error": _first_line(e)}
    except Exception as e:  # installed but broken (wrong wheel, missing system library)
        return {"error": "%s: %s" % (type(e).__name__, _first_line(e)), "module": module}
    return {}


def disk_free_gib(path: str) -> float | None:
    import shutil

    p = os.path.abspath(os.path.expanduser(path))
    while p and not os.path.exists(p):
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    try:
        return round(shutil.disk_usage(p).free / 2 ** 30, 2)
    except OSError:
        return None


def probe(workdir: str | None) -> dict:
    env = fingerprint()
    runtimes = {name: _runtime_probe(name) for name in RUNTIMES}
    try:
        import numpy

        numpy_info = {"version": numpy.__version__}
    except ImportError:
        numpy_info = {"missing": True, "pip": "numpy"}
    out = {"event": "result", "protocol": PROTOCOL, "env": env, "numpy": numpy_info, "runtimes": runtimes}
    if workdir:
        out["workdir"] = os.path.abspath(os.path.expanduser(workdir))
        out["disk_free_gib"] = disk_free_gib(workdir)
    return out


# --- artifact files -----------------------------------------------------------------------

def file_hashes(root: str) -> dict:
    """{relative posix path: sha256} of every regular file under root (the harness's own
    HASHES_FILE excluded)."""
    root = os.path.expanduser(root)
    out = {}
    if not os.path.isdir(root):
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            full = os.path.join(dirpath, fn)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if rel == HASHES_FILE or not os.path.isfile(full):
                continue
            h = hashlib.sha256()
            with open(full, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            out[rel] = h.hexdigest()
    return out


def receive(dest: str) -> dict:
    """Extract a tar stream from stdin into dest (replacing what was there), checking every file
    against the HASHES_FILE inside the stream before the directory is moved into place."""
    import errno
    import shutil
    import tarfile

    dest = os.path.abspath(os.path.expanduser(dest))
    parent = os.path.dirname(dest)
    tmp = "%s.part-%d" % (dest, os.getpid())
    try:
        os.makedirs(parent, exist_ok=True)
        if os.path.exists(tmp):
            shutil.rmtree(tmp)
        os.makedirs(tmp)
        with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as tar:
            for member in tar:
                name = member.name
                if name.startswith("/") or ".." in name.split("/") or not (member.isfile() or member.isdir()):
                    raise AgentError("bad_transfer", "refusing tar member %r" % name)
                if hasattr(tarfile, "data_filter"):
                    tar.extract(member, tmp, filter="data")
                else:
                    tar.extract(member, tmp)
        expected_path = os.path.join(tmp, HASHES_FILE)
        if not os.path.isfile(expected_path):
            raise AgentError("bad_transfer", "transfer has no %s" % HASHES_FILE)
        with open(expected_path) as f:
            expected = json.load(f)
        got = file_hashes(tmp)
        if got != expected:
            bad = sorted(k for k in set(expected) | set(got) if expected.get(k) != got.get(k))
            raise AgentError("bad_transfer", "files differ from what was sent after the copy: %s" % ", ".join(bad[:5]))
        old = dest + ".old-%d" % os.getpid()
        if os.path.exists(dest):
            os.rename(dest, old)
        try:
            os.rename(tmp, dest)
        except OSError:
            # another copy of the same artifact landed first (two runs to one device): keep it if good
            if file_hashes(dest) != expected:
                raise
            shutil.rmtree(tmp, ignore_errors=True)
        if os.path.exists(old):
            shutil.rmtree(old, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if e.errno == errno.ENOSPC:
            raise AgentError("disk_full", "No space left on device while writing %s" % dest) from None
        raise AgentError("io_error", "%s: %s" % (dest, e)) from None
    except tarfile.TarError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise AgentError("bad_transfer", "broken tar stream: %s" % _first_line(e)) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"event": "result", "received": dest, "files": len(got)}


# --- statistics without scipy (same numbers as effbench.harness.stats.median_ci) -----------

def median_ci(samples, confidence: float = 0.95):
    """Exact bootstrap percentile CI of the median: the resampled median is <= x_(j) exactly when
    at least ceil(n/2) resampled values are, a Binomial(n, j/n) count; binary-searched over j."""
    import numpy as np

    x = np.sort(np.asarray(samples, dtype=np.float64))
    n = x.size
    if n == 0:
        return math.nan, math.nan
    if n == 1:
        return float(x[0]), float(x[0])
    m = int(math.ceil(n / 2))
    logfact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1, dtype=np.float64)))])
    k = np.arange(m, n + 1)
    log_comb = logfact[n] - logfact[k] - logfact[n - k]

    def sf(j: int) -> float:  # P(Binomial(n, j/n) >= m)
        p = j / n
        if p >= 1.0:
            return 1.0
        logs = log_comb + k * math.log(p) + (n - k) * math.log1p(-p)
        top = float(logs.max())
        return float(min(1.0, math.exp(top) * np.exp(logs - top).sum()))

    def first_at_least(level: float) -> int:  # smallest 0-based index i with sf(i + 1) >= level
        lo, hi = 0, n - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if sf(mid + 1) >= level:
                hi = mid
            else:
                lo = mid + 1
        return lo

    alpha = (1 - confidence) / 2
    return float(x[first_at_least(alpha)]), float(x[first_at_least(1 - alpha)])


def _rel_half_width(samples_ns) -> float:
    import numpy as np

    lo, hi = median_ci(samples_ns)
    med = float(np.median(samples_ns))
    return (hi - lo) / 2 / med if med > 0 else float("inf")


# --- sessions ------------------------------------------------------------------------------

class Session:
    precision_ran = "fp32"

    def __init__(self):
        self.runtime_info: dict = {}

    def bind(self, x) -> None:
        raise NotImplementedError

    def run(self) -> None:
        raise NotImplementedError

    def outputs(self) -> list:
        raise NotImplementedError

    def timed_loop(self, n: int, out, offset: int = 0) -> None:
        run = self.run
        clock = time.perf_counter_ns
        for i in range(offset, offset + n):
            t0 = clock()
            run()
            out[i] = clock() - t0


class OrtSession(Session):
    def __init__(self, path: str, threads: int | None):
        super().__init__()
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.log_severity_level = 3
        if threads:
            so.intra_op_num_threads = int(threads)
            so.inter_op_num_threads = 1
        try:
            self.sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise AgentError("load_failed", "ONNX Runtime could not load the model: %s" % _first_line(e)) from None
        self.ort = ort
        self.runtime_info = {"providers": self.sess.get_providers(), "graph_optimization_level": "ORT_ENABLE_ALL",
                             "intra_op_num_threads": so.intra_op_num_threads or "default"}

    def bind(self, x) -> None:
        import numpy as np

        self._x = np.ascontiguousarray(x)
        b = self.sess.io_binding()
        b.bind_ortvalue_input(self.sess.get_inputs()[0].name, self.ort.OrtValue.ortvalue_from_numpy(self._x))
        for meta in self.sess.get_outputs():
            b.bind_output(meta.name, "cpu")
        self.binding = b
        self._run_with = self.sess.run_with_iobinding

    def run(self) -> None:
        self._run_with(self.binding)

    def outputs(self) -> list:
        import numpy as np

        return [np.array(o, copy=True) for o in self.binding.copy_outputs_to_cpu()]


_OV_PRECISION = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
_FROM_OV = {"f32": "fp32", "bf16": "bf16", "f16": "fp16"}


class OpenVINOSession(Session):
    def __init__(self, path: str, threads: int | None, precision: str, input_shape, hint: str):
        super().__init__()
        import openvino as ov

        self.ov = ov
        core = ov.Core()
        try:
            model = core.read_model(path)
            if list(model.inputs[0].get_partial_shape()) != list(input_shape):
                model.reshape({model.inputs[0].any_name: ov.PartialShape(list(input_shape))})
            config = {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": _OV_PRECISION.get(precision, "f32")}
            if threads:
                config["INFERENCE_NUM_THREADS"] = int(threads)
            self.compiled = core.compile_model(model, "CPU", config)
        except Exception as e:
            raise AgentError("load_failed", "OpenVINO could not compile the model: %s" % _first_line(e)) from None
        self.request = self.compiled.create_infer_request()
        try:  # the pybind methods themselves, as benchmark_app drives a request
            self._start = ov._pyopenvino.InferRequest.start_async.__get__(self.request)
            self._wait = self.request.wait
            self._run = None
        except AttributeError:
            self._run = self.request.infer
        ran_type = self.compiled.get_property("INFERENCE_PRECISION_HINT")
        ran = ran_type.to_string() if hasattr(ran_type, "to_string") else str(ran_type)
        self.precision_ran = _FROM_OV.get(ran, ran)
        self.runtime_info = {
            "device": "CPU", "performance_hint": hint, "inference_precision": ran,
            "inference_num_threads": int(self.compiled.get_property("INFERENCE_NUM_THREADS")),
            "num_streams": int(self.compiled.get_property("NUM_STREAMS")),
            "cpu": core.get_property("CPU", "FULL_DEVICE_NAME"),
        }

    def bind(self, x) -> None:
        import numpy as np

        self._x = np.ascontiguousarray(x)
        self.request.set_input_tensor(0, self.ov.Tensor(self._x, shared_memory=True))

    def run(self) -> None:
        if self._run is not None:
            self._run()
        else:
            self._start({}, None)
            self._wait()

    def outputs(self) -> list:
        import numpy as np

        return [np.array(self.request.get_output_tensor(i).data, copy=True)
                for i in range(len(self.compiled.outputs))]


COMPUTE_UNITS = ("all", "cpu_only", "cpu_and_gpu", "cpu_and_ne")


class CoreMLSession(Session):
    """An .mlpackage given through its manifest (model.mlpackage.json) or directly."""

    def __init__(self, path: str, compute_units: str):
        super().__init__()
        if platform.system() != "Darwin":
            raise AgentError("unsupported", "Core ML runs only on macOS (this device runs %s)" % platform.system())
        import coremltools as ct

        package, meta = path, {}
        if path.endswith(".json"):
            with open(path) as f:
                meta = json.load(f)
            package = os.path.join(os.path.dirname(path), meta["package"])
        cu = (compute_units or "all").lower()
        if cu not in COMPUTE_UNITS:
            raise AgentError("bad_option", "compute_units must be one of %s, not %r" % (", ".join(COMPUTE_UNITS), cu))
        try:
            self.model = ct.models.MLModel(package, compute_units=getattr(ct.ComputeUnit, cu.upper()))
        except Exception as e:
            raise AgentError("load_failed", "Core ML could not load the model: %s" % _first_line(e)) from None
        spec = self.model.get_spec()
        self.input_name = meta.get("input") or spec.description.input[0].name
        self.output_names = meta.get("outputs") or [o.name for o in spec.description.output]
        self.precision_ran = meta.get("precision", "fp32")
        self.runtime_info = {"compute_units": cu.upper(), "coremltools": ct.__version__,
                             "compute_precision": self.precision_ran,
                             "timed_call": "MLModel.predict (includes building the output dict)"}
        if meta.get("export_path"):
            self.runtime_info["export_path"] = meta["export_path"]
        self._last = None

    def bind(self, x) -> None:
        import numpy as np

        self._inputs = {self.input_name: np.ascontiguousarray(x)}

    def run(self) -> None:
        self._last = self.model.predict(self._inputs)

    def outputs(self) -> list:
        import numpy as np

        return [np.array(self._last[n], dtype=np.float32, copy=True) for n in self.output_names]


def load_session(args, input_shape) -> Session:
    if args.backend == "onnxruntime":
        return OrtSession(args.artifact, args.threads)
    if args.backend == "openvino":
        hint = (args.hint or ("THROUGHPUT" if args.scenario == "throughput" else "LATENCY")).upper()
        return OpenVINOSession(args.artifact, args.threads, args.precision, input_shape, hint)
    if args.backend == "coreml":
        return CoreMLSession(args.artifact, args.compute_units)
    raise AgentError("bad_option", "unknown backend %r (the agent runs %s)" % (args.backend, ", ".join(RUNTIMES)))


# --- measurement (mirrors effbench/harness/measure.py) ------------------------------------

def first_inference(session: Session) -> int:
    t0 = time.perf_counter_ns()
    session.run()
    return time.perf_counter_ns() - t0


def warmup(session: Session, seconds: float, iters: int, progress=None):
    import numpy as np

    buf = np.zeros(max(iters, 1), dtype=np.int64)
    done = 0
    t_start = time.perf_counter()
    chunk = 1
    while done < iters or time.perf_counter() - t_start < seconds:
        if done + chunk > buf.size:
            buf = np.zeros(done + chunk, dtype=np.int64)
        t0 = time.perf_counter()
        session.timed_loop(chunk, buf, 0)
        per_iter = (time.perf_counter() - t0) / chunk
        done += chunk
        chunk = max(1, min(10000, int(_CHUNK_S / max(per_iter, 1e-7))))
        if progress:
            elapsed = time.perf_counter() - t_start
            progress("warmup", min(1.0, max(elapsed / seconds if seconds else 1, done / max(iters, 1))), "%d it" % done)
    return done, time.perf_counter() - t_start


def measure(session: Session, duration_s: float, min_iters: int, target_ci=None, max_duration_s: float = 60.0,
            progress=None):
    import numpy as np

    cap = max(min_iters, 1024)
    buf = np.empty(cap, dtype=np.int64)
    n = 0
    chunk = max(1, min(min_iters, 10))
    t_start = time.perf_counter()
    reached = None
    met = None
    while True:
        if n + chunk > buf.size:
            buf = np.concatenate([buf[:n], np.empty(max(buf.size, chunk), dtype=np.int64)])
        t0 = time.perf_counter()
        session.timed_loop(chunk, buf, n)
        per_iter = (time.perf_counter() - t0) / chunk
        n += chunk
        elapsed = time.perf_counter() - t_start
        chunk = max(1, min(100000, int(_CHUNK_S / max(per_iter, 1e-8))))
        base_done = elapsed >= duration_s and n >= min_iters
        if progress:
            progress("measure", min(1.0, min(elapsed / duration_s, n / min_iters)), "%d it" % n)
        if not base_done:
            continue
        if target_ci is None:
            break
        reached = _rel_half_width(buf[:n])
        if reached <= target_ci:
            met = True
            break
        if elapsed >= max_duration_s:
            met = False
            break
    samples = buf[:n].copy()
    if target_ci is not None and reached is None:
        reached = _rel_half_width(samples)
    return samples, time.perf_counter() - t_start, reached, met


# --- memory (VmHWM reset before load, as effbench/harness/meters/memory.py) ---------------

def _status_kb(field: str) -> int | None:
    text = _read("/proc/self/status")
    if text:
        for line in text.splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def _rss_mb() -> float | None:
    kb = _status_kb("VmRSS")
    return kb / 1024 if kb is not None else None


def _peak_mb():
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb / 1024, "VmHWM"
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes
    return (peak / 2 ** 20 if platform.system() == "Darwin" else peak / 1024), "ru_maxrss (whole process lifetime)"


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# --- run ----------------------------------------------------------------------------------

def _npy_b64(arr) -> str:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _require(backend: str) -> None:
    """Import numpy and the runtime now, so a missing one is one clear error naming the package."""
    missing = []
    try:
        import numpy  # noqa: F401
    except ImportError:
        missing.append("numpy")
    module, pip_name = RUNTIMES.get(backend, (None, None))
    if module is None:
        raise AgentError("bad_option", "unknown backend %r (the agent runs %s)" % (backend, ", ".join(RUNTIMES)))
    if backend == "coreml" and platform.system() != "Darwin":
        raise AgentError("unsupported", "Core ML needs macOS (Core ML runs only on Apple platforms); this device "
                         "runs %s" % platform.system())
    try:
        __import__(module)
    except ImportError:
        missing.insert(0, pip_name)
    except Exception as e:  # installed but broken
        raise AgentError("broken_runtime", "%s is installed but does not import: %s: %s"
                         % (module, type(e).__name__, _first_line(e)), package=pip_name) from None
    if missing:
        raise AgentError("missing_runtime", "%s not installed for %s" % (" and ".join(missing), sys.executable),
                         packages=missing, python=sys.executable)


def _read_input(args):
    import numpy as np

    try:
        if args.input in (None, "-"):
            data = sys.stdin.buffer.read()
            x = np.load(io.BytesIO(data), allow_pickle=False)
        else:
            x = np.load(os.path.expanduser(args.input), allow_pickle=False)
    except Exception as e:
        raise AgentError("bad_input", "cannot read the input .npy: %s" % _first_line(e)) from None
    if args.input_shape and list(x.shape) != list(args.input_shape):
        raise AgentError("bad_input", "input has shape %s, expected %s" % (list(x.shape), list(args.input_shape)))
    return np.ascontiguousarray(x, dtype=np.float32)


def run(args, chan: Channel) -> dict:
    _require(args.backend)
    if args.cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, args.cpus)  # before any runtime starts its thread pool
    artifact = os.path.expanduser(args.artifact)
    if not os.path.exists(artifact):
        raise AgentError("bad_artifact", "artifact not found on the device: %s" % artifact)
    args.artifact = artifact
    x = _read_input(args)
    input_shape = tuple(x.shape)
    load_before = loadavg()

    chan.progress("load", 0.0, args.backend)
    peak_reset = _reset_peak()
    rss_before = _rss_mb()
    t0 = time.perf_counter()
    session = load_session(args, input_shape)
    session.bind(x)
    load_s = time.perf_counter() - t0
    rss_after = _rss_mb()
    chan.progress("load", 1.0, "%.2f s" % load_s)

    try:
        first = first_inference(session)
        w_iters, w_s = warmup(session, args.warmup, args.warmup_iters, chan.progress)
        samples, secs, reached, met = measure(session, args.duration, args.min_iters, args.target_ci,
                                              args.max_duration, chan.progress)
        outputs = session.outputs()
    except AgentError:
        raise
    except Exception as e:
        raise AgentError("run_failed", "inference failed: %s: %s" % (type(e).__name__, _first_line(e))) from None
    load_after = loadavg()
    peak, how = _peak_mb()
    notes = []
    if args.scenario == "throughput":
        notes.append("the remote agent measures synchronous batched runs: throughput from batch / median latency")
    return {
        "event": "result",
        "protocol": PROTOCOL,
        "backend": args.backend,
        "runtime_version": versions().get(RUNTIMES[args.backend][1]) or _module_version(RUNTIMES[args.backend][0]),
        "load_s": load_s,
        "first_ns": int(first),
        "warmup_iters": int(w_iters),
        "warmup_s": w_s,
        "measure_s": secs,
        "samples_ns": [int(v) for v in samples],
        "target_ci": args.target_ci,
        "reached_ci": reached,
        "target_met": met,
        "precision_ran": session.precision_ran,
        "runtime_info": session.runtime_info,
        "outputs": [_npy_b64(o) for o in outputs],
        "memory": {
            "peak_rss_mb": round(peak, 1),
            "peak_covers": "load + run" if peak_reset else "whole agent process",
            "peak_source": how,
            "load_delta_mb": round(rss_after - rss_before, 1) if rss_after is not None and rss_before is not None else None,
            "rss_before_load_mb": round(rss_before, 1) if rss_before else None,
        },
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "notes": notes,
        "env": fingerprint(args.threads, args.cpus),
    }


def _module_version(module: str) -> str | None:
    try:
        return getattr(__import__(module), "__version__", None)
    except Exception:
        return None


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[0][:300] if lines else type(e).__name__


def _int_list(text: str) -> list:
    return [int(v) for v in str(text).replace("x", ",").split(",") if v.strip()]


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="effbench-agent", description="effbench's on-device agent (see the module docstring).")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--probe", action="store_true", help="report OS, architecture, CPU, Python and runtimes")
    mode.add_argument("--hashes", metavar="DIR", help="sha256 of every file under DIR")
    mode.add_argument("--receive", metavar="DIR", help="extract a tar stream from stdin into DIR")
    mode.add_argument("--run", action="store_true", help="load --artifact and measure it")
    mode.add_argument("--version", action="store_true")
    p.add_argument("--workdir", help="(--probe) report free disk space here")
    p.add_argument("--require", choices=sorted(RUNTIMES), help="(--hashes) fail first when this runtime is missing")
    p.add_argument("--artifact", help="model file: .onnx, OpenVINO .xml, Core ML model.mlpackage.json/.mlpackage")
    p.add_argument("--backend", choices=sorted(RUNTIMES), default="onnxruntime")
    p.add_argument("--input", default="-", help=".npy input file, or - for stdin (default)")
    p.add_argument("--input-shape", type=_int_list, help="expected input shape, e.g. 1,3,224,224")
    p.add_argument("--batch", type=int, default=None, help="batch size (checked against the input)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--cpus", type=_int_list, default=None, help="pin to these CPUs (Linux)")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--scenario", default="latency")
    p.add_argument("--hint", default=None, help="OpenVINO PERFORMANCE_HINT")
    p.add_argument("--compute-units", default="all", help="Core ML: all | cpu_only | cpu_and_gpu | cpu_and_ne")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--warmup-iters", type=int, default=10)
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--min-iters", type=int, default=30)
    p.add_argument("--target-ci", type=float, default=None)
    p.add_argument("--max-duration", type=float, default=60.0)
    p.add_argument("--deadline", type=float, default=None, help="exit with an error after this many seconds")
    args = p.parse_args(argv)
    if args.run and not args.artifact:
        p.error("--run needs --artifact")
    if args.batch and args.input_shape and args.input_shape[0] != args.batch:
        p.error("--batch %d does not match --input-shape %s" % (args.batch, args.input_shape))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    chan = Channel()
    if args.deadline:
        _arm_deadline(args.deadline, chan)
    try:
        if args.version:
            answer = {"event": "result", "agent": AGENT_VERSION, "protocol": PROTOCOL, "python": sys.version}
        elif args.probe:
            answer = probe(args.workdir)
        elif args.hashes:
            if args.require:
                _require(args.require)
            answer = {"event": "result", "files": file_hashes(args.hashes)}
        elif args.receive:
            answer = receive(args.receive)
        else:
            answer = run(args, chan)
    except AgentError as e:
        err = {"event": "error", "kind": e.kind, "message": e.message}
        err.update(e.extra)
        chan.send(err)
        return _EXIT_ERROR
    except MemoryError:
        chan.send({"event": "error", "kind": "out_of_memory", "message": "out of memory on the device"})
        return _EXIT_ERROR
    except OSError as e:
        import errno

        kind = "disk_full" if e.errno == errno.ENOSPC else "io_error"
        chan.send({"event": "error", "kind": kind, "message": "%s: %s" % (type(e).__name__, _first_line(e))})
        return _EXIT_ERROR
    chan.send(answer)
    return 0


def _arm_deadline(seconds: float, chan: Channel) -> None:
    """A watchdog for a lost connection or a hung runtime: say so and exit."""
    import threading

    def fire():
        try:
            chan.send({"event": "error", "kind": "timeout",
                       "message": "measurement stopped by the agent's deadline, %.0f s after it started" % seconds})
        finally:
            os._exit(124)

    t = threading.Timer(seconds, fire)
    t.daemon = True
    t.start()


if __name__ == "__main__":
    sys.exit(main())
