"""Remote devices over the system OpenSSH client: copy the artifact, run the agent, build a Result.

A remote cell (`run_remote`) exports the artifact here (the export cache as for local cells), makes
sure the device has it under `<workdir>/artifacts/<key>/` (sha256 of every file checked on the
device first: nothing is sent when all match, the whole directory is re-sent when any differs),
runs the self-contained agent (`effbench/agent.py`, copied under a content-hashed name) with the
input sent as .npy on stdin, and turns the agent's JSON line into a Result: statistics computed here
with `effbench.harness.stats.summarize`, parity against the PyTorch reference computed here, `env`
being the device's own fingerprint.

`ssh` is the system client, so ~/.ssh/config, agents, ProxyJump and ControlMaster all apply. Every
call has `-o BatchMode=yes` (never a password prompt) and a ConnectTimeout. No shell runs locally
(argument lists only); the one command string the remote shell sees is built with shlex.quote.

Nothing here is global: `run_remote` may run in one thread per device. Exports (torch.onnx,
coremltools) are serialised by a lock, as those exporters keep process-wide state.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from effbench.errors import EffbenchError, RunFailed, UsageError

AGENT_BACKENDS = ("onnxruntime", "openvino", "coreml")
DEFAULT_WORKDIR = "~/.cache/effbench-agent"
DEFAULT_CONNECT_TIMEOUT = 10
HASHES_FILE = ".effbench-hashes.json"  # same name as effbench.agent.HASHES_FILE

# Started with `python -c BOOT WORKDIR AGENT_NAME MODE AGENT_ARGS...`: finds the agent in WORKDIR,
# writes it from stdin first when MODE is "install" and it is not there yet, then runs it. It keeps
# to double quotes and no backslashes, so it survives any POSIX shell's single quoting.
_BOOT = """import os, sys
w = os.path.expanduser(sys.argv[1]); p = os.path.join(w, sys.argv[2])
if not os.path.isfile(p):
    if sys.argv[3] != "install":
        sys.stdout.write('{"event":"error","kind":"agent_missing","message":"agent not found in the workdir"}' + chr(10)); sys.exit(3)
    os.makedirs(w, exist_ok=True); t = p + ".tmp" + str(os.getpid())
    f = open(t, "wb"); f.write(sys.stdin.buffer.read()); f.close(); os.replace(t, p)
sys.argv = [p] + sys.argv[4:]
exec(compile(open(p, "rb").read(), p, "exec"), {"__name__": "__main__", "__file__": p})
"""

_EXPORT_LOCK = threading.Lock()  # torch.onnx / coremltools exporters are not thread-safe

Event = Callable[[dict], None]


# --- errors ----------------------------------------------------------------------------------

class RemoteError(RunFailed):
    """A remote step failed; `kind` says which way (unreachable, auth, missing_runtime, ...)."""

    status = "failed"

    def __init__(self, message: str, kind: str = "error", status: str = "failed", **details: Any):
        super().__init__(" ".join(message.split()))
        self.kind, self.status, self.details = kind, status, details


# --- the target ------------------------------------------------------------------------------

@dataclass(frozen=True)
class RemoteTarget:
    """How to reach one device: the `ssh:` block of its devices.yaml entry."""

    name: str
    host: str  # "host" or "user@host" (an ~/.ssh/config Host alias works too)
    port: int | None = None
    identity_file: str | None = None
    python: str = "python3"
    workdir: str = DEFAULT_WORKDIR
    options: tuple[str, ...] = ()  # extra ssh arguments, e.g. ("-o", "ProxyJump=bastion")
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT
    client: str = "ssh"  # the OpenSSH client program (a wrapper script works too)

    def __post_init__(self) -> None:
        if not self.host or self.host.startswith("-") or any(c.isspace() for c in self.host):
            raise UsageError(f"device '{self.name}': ssh.host {self.host!r} is not a host name")
        if not self.python.strip():
            raise UsageError(f"device '{self.name}': ssh.python is empty")

    @classmethod
    def from_spec(cls, spec: Any, name: str | None = None) -> "RemoteTarget":
        """From a catalog DeviceSpec, a devices.target.Target, an SshSpec, or a dict (a device entry
        with an `ssh:` key, or the ssh block itself)."""
        if isinstance(spec, RemoteTarget):
            return spec
        if hasattr(spec, "execution") and hasattr(spec, "spec"):  # devices.target.Target
            name = name or spec.name
            spec = spec.spec
        if hasattr(spec, "ssh") and not isinstance(spec, dict):  # DeviceSpec
            name = name or spec.name
            if spec.ssh is None:
                raise UsageError(f"device '{name}' has no ssh: entry in devices.yaml (it is not a remote device)")
            spec = spec.ssh
        if hasattr(spec, "model_dump"):  # SshSpec (extra keys included)
            spec = spec.model_dump()
        if isinstance(spec, str):
            spec = {"host": spec}
        if not isinstance(spec, dict):
            raise UsageError(f"cannot make a remote target from {type(spec).__name__}")
        if "ssh" in spec and "host" not in spec and isinstance(spec.get("ssh"), (dict, str)):
            name = name or spec.get("name")
            spec = {"host": spec["ssh"]} if isinstance(spec["ssh"], str) else spec["ssh"]
        name = name or spec.get("name") or spec.get("host") or "remote"
        where = f"device '{name}': ssh"
        known = {"host", "user", "port", "identity_file", "python", "workdir", "options", "connect_timeout", "client",
                 "name"}
        unknown = sorted(k for k, v in spec.items() if k not in known and v is not None)
        if unknown:
            raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known - {'name'}))})")
        host = str(spec.get("host") or "")
        if spec.get("user") and "@" not in host:
            host = f"{spec['user']}@{host}"
        options = spec.get("options") or ()
        if isinstance(options, str):
            options = shlex.split(options)
        if not all(isinstance(o, str) for o in options):
            raise UsageError(f"{where}.options must be a list of strings, e.g. [\"-o\", \"ProxyJump=bastion\"]")
        port = spec.get("port")
        try:
            port = int(port) if port is not None else None
            timeout = int(spec.get("connect_timeout") or DEFAULT_CONNECT_TIMEOUT)
        except (TypeError, ValueError):
            raise UsageError(f"{where}.port and connect_timeout must be integers") from None
        return cls(name=str(name), host=host, port=port,
                   identity_file=str(spec["identity_file"]) if spec.get("identity_file") else None,
                   python=str(spec.get("python") or "python3"), workdir=str(spec.get("workdir") or DEFAULT_WORKDIR),
                   options=tuple(options), connect_timeout=timeout, client=str(spec.get("client") or "ssh"))

    @property
    def destination(self) -> str:
        return f"{self.host}:{self.port}" if self.port else self.host

    @property
    def workdir_clean(self) -> str:
        return self.workdir.rstrip("/") or "/"

    def ssh_argv(self, remote_command: str) -> list[str]:
        """The local argument list (never a shell) for running `remote_command` on the device."""
        argv = [os.path.expanduser(self.client), "-o", "BatchMode=yes"]
        argv += list(self.options)  # first value wins in ssh: the user's options override ours below
        argv += ["-o", f"ConnectTimeout={self.connect_timeout}", "-o", "ServerAliveInterval=15",
                 "-o", "ServerAliveCountMax=4"]
        if self.port:
            argv += ["-p", str(self.port)]
        if self.identity_file:
            argv += ["-i", os.path.expanduser(self.identity_file), "-o", "IdentitiesOnly=yes"]
        return argv + ["--", self.host, remote_command]

    def python_words(self) -> list[str]:
        """The interpreter as words for the remote shell; a leading ~/ becomes a path relative to
        the home directory (where ssh starts the command), since a quoted ~ does not expand."""
        words = shlex.split(self.python)
        if words and words[0].startswith("~/"):
            words[0] = words[0][2:]
        return words

    def agent_command(self, agent_name: str, mode: str, args: list[str]) -> str:
        words = [*self.python_words(), "-c", _BOOT, self.workdir_clean, agent_name, mode, *args]
        return " ".join(shlex.quote(w) for w in words)


# --- running ssh -----------------------------------------------------------------------------

@dataclass
class SshCall:
    returncode: int
    messages: list[dict]  # JSON lines the agent printed
    stdout_other: str
    stderr: str
    seconds: float
    timed_out: bool = False

    @property
    def answer(self) -> dict | None:
        for msg in reversed(self.messages):
            if msg.get("event") in ("result", "error"):
                return msg
        return None

    def stderr_line(self) -> str:
        lines = [ln.strip() for ln in self.stderr.splitlines() if ln.strip() and not ln.startswith("Warning: Permanently added")]
        return lines[-1][:300] if lines else ""


def _call(argv: list[str], stdin: bytes | Callable[[Any], None] | None, timeout: float,
          on_message: Callable[[dict], None] | None = None) -> SshCall:
    """Run one ssh command; stdin is bytes, or a function that writes to the pipe. Streams the
    agent's JSON lines to `on_message` as they arrive."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise RemoteError(f"the OpenSSH client {argv[0]!r} is not installed here (apt install openssh-client)",
                          "no_ssh_client") from None
    messages: list[dict] = []
    other: list[str] = []
    err_chunks: list[bytes] = []

    def feed() -> None:
        try:
            if callable(stdin):
                stdin(proc.stdin)
            elif stdin:
                proc.stdin.write(stdin)
        except (BrokenPipeError, OSError, ValueError):
            pass  # the far end stopped reading; its exit status and stderr say why
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    def read_err() -> None:
        for chunk in iter(lambda: proc.stderr.read(65536), b""):
            err_chunks.append(chunk)

    def read_out() -> None:
        for raw in proc.stdout:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                other.append(line)
                continue
            if not isinstance(msg, dict):
                other.append(line)
                continue
            messages.append(msg)
            if on_message and msg.get("event") == "progress":
                try:
                    on_message(msg)
                except Exception:
                    pass

    threads = [threading.Thread(target=f, daemon=True) for f in (feed, read_err, read_out)]
    for t in threads:
        t.start()
    timed_out = False
    try:
        proc.wait(timeout=max(timeout, 1.0))
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    for t in threads[1:]:
        t.join(timeout=10)
    return SshCall(proc.returncode, messages, "\n".join(other), b"".join(err_chunks).decode(errors="replace"),
                   time.perf_counter() - t0, timed_out)


_UNREACHABLE = ("connection refused", "connection timed out", "operation timed out", "no route to host",
                "network is unreachable", "could not resolve hostname", "name or service not known",
                "temporary failure in name resolution", "kex_exchange_identification", "connection reset by peer",
                "connection closed by remote host")
_AUTH = ("permission denied", "too many authentication failures", "authentication failed",
         "no supported authentication methods", "no mutual signature")


def ssh_failure(target: RemoteTarget, call: SshCall, during: str) -> RemoteError | None:
    """The one-line error for an ssh-level failure (exit code 255), or None when the connection
    worked. `during` names the step ("connecting", "the run" ...)."""
    if call.returncode != 255 or call.answer is not None:
        return None
    err = call.stderr_line()
    low = call.stderr.lower()
    if "host key verification failed" in low or "remote host identification has changed" in low:
        return RemoteError(f"{target.name}: the host key of {target.destination} is not trusted ({err}); "
                           f"connect once with `ssh {_ssh_hint(target)}` to check and accept it", "host_key")
    if any(s in low for s in _AUTH):
        key = target.identity_file or "your key"
        return RemoteError(f"{target.name}: authentication refused by {target.destination} ({err}); add {key}.pub "
                           f"to the device's ~/.ssh/authorized_keys (ssh-copy-id -i {key} {_ssh_hint(target, identity=False)}) "
                           "or set ssh.identity_file in devices.yaml", "auth")
    if during == "connecting" and any(s in low for s in _UNREACHABLE):
        return RemoteError(f"{target.name}: cannot reach {target.destination} ({err}); is the device on, on this "
                           "network and running sshd? check with `ssh " + _ssh_hint(target) + "`", "unreachable")
    if during == "connecting":
        return RemoteError(f"{target.name}: ssh to {target.destination} failed ({err or 'exit code 255'})",
                           "ssh_failed")
    return RemoteError(f"{target.name}: connection to {target.destination} dropped during {during} "
                       f"({err or 'ssh exit code 255'})", "dropped")


def _ssh_hint(target: RemoteTarget, identity: bool = True) -> str:
    words = []
    if target.port:
        words += ["-p", str(target.port)]
    if target.identity_file and identity:
        words += ["-i", target.identity_file]
    return " ".join([*words, target.host])


def agent_failure(target: RemoteTarget, call: SshCall, during: str) -> RemoteError | None:
    """The one-line error when the agent (or the remote shell) failed, or None on success."""
    ans = call.answer
    text = f"{call.stderr}\n{call.stdout_other}\n{(ans or {}).get('message', '')}"
    if "No space left on device" in text:
        return RemoteError(f"{target.name}: disk full on the device (No space left on device) during {during} in "
                           f"{target.workdir}; free some space or point ssh.workdir at a larger disk", "disk_full")
    if ans is not None and ans.get("event") == "result" and call.returncode == 0:
        return None
    if ans is not None and ans.get("event") == "error":
        kind = ans.get("kind", "error")
        msg = ans.get("message", "")
        if kind == "missing_runtime":
            pkgs = " ".join(ans.get("packages") or ["?"])
            python = target.python
            return RemoteError(f"{target.name}: {' and '.join(ans.get('packages') or ['?'])} not installed for "
                               f"{python} on the device; on the device run `{python} -m pip install {pkgs}` "
                               "(or point ssh.python in devices.yaml at a venv that has it)",
                               "missing_runtime", status="skipped", packages=ans.get("packages"))
        if kind == "unsupported":
            return RemoteError(f"{target.name}: {msg}", kind, status="skipped")
        if kind == "timeout":
            return RemoteError(f"{target.name}: {msg}", "timeout", status="timeout")
        if kind == "disk_full":
            return RemoteError(f"{target.name}: disk full on the device ({msg}); free some space or point "
                               "ssh.workdir at a larger disk", "disk_full")
        return RemoteError(f"{target.name}: {msg}", kind)
    err = call.stderr_line()
    low = call.stderr.lower()
    if call.returncode == 127 or ("not found" in low and call.returncode in (126, 127)):
        return RemoteError(f"{target.name}: Python interpreter {target.python!r} not found on the device ({err}); "
                           "install Python 3.8+ there or set ssh.python in devices.yaml", "no_python")
    if "syntaxerror" in low or "from __future__ import annotations" in low:
        return RemoteError(f"{target.name}: {target.python} on the device is too old for the agent ({err}); "
                           "it needs Python 3.8 or newer (set ssh.python)", "old_python")
    if "no module named" in low and "numpy" in low:
        return RemoteError(f"{target.name}: numpy not installed for {target.python} on the device; on the device "
                           f"run `{target.python} -m pip install numpy`", "missing_runtime", status="skipped",
                           packages=["numpy"])
    return RemoteError(f"{target.name}: agent failed during {during} (exit code {call.returncode})"
                       + (f": {err}" if err else ""), "agent_failed")


# --- files -----------------------------------------------------------------------------------

def _agent_source() -> tuple[bytes, str]:
    from effbench import agent

    data = Path(agent.__file__).read_bytes()
    return data, f"agent-{hashlib.sha256(data).hexdigest()[:16]}.py"


def local_hashes(directory: Path) -> dict[str, str]:
    from effbench.agent import file_hashes

    return file_hashes(str(directory))


def _tar_writer(directory: Path, hashes: dict[str, str]) -> Callable[[Any], None]:
    def write(pipe) -> None:
        with tarfile.open(fileobj=pipe, mode="w|") as tar:
            for rel in sorted(hashes):
                tar.add(str(directory / rel), arcname=rel, recursive=False)
            blob = json.dumps(hashes, sort_keys=True).encode()
            info = tarfile.TarInfo(HASHES_FILE)
            info.size, info.mtime, info.mode = len(blob), int(time.time()), 0o644
            tar.addfile(info, io.BytesIO(blob))
    return write


# --- one session with one device ---------------------------------------------------------------

class RemoteSession:
    """The steps against one device, each one ssh call. Holds no state beyond its target."""

    def __init__(self, target: RemoteTarget, deadline: float | None = None):
        self.target = target
        self.deadline = deadline
        self.agent_bytes, self.agent_name = _agent_source()

    def _left(self, default: float) -> float:
        if self.deadline is None:
            return default
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RemoteError(f"{self.target.name}: cell time limit reached before the run finished", "timeout",
                              status="timeout")
        return min(default, left)

    def agent(self, mode: str, args: list[str], stdin=None, timeout: float = 120.0, during: str = "connecting",
              on_message=None) -> SshCall:
        cmd = self.target.agent_command(self.agent_name, mode, args)
        if mode == "install":
            stdin = self.agent_bytes
        limit = self._left(timeout)
        call = _call(self.target.ssh_argv(cmd), stdin, limit + self.target.connect_timeout, on_message)
        if call.timed_out:
            raise RemoteError(f"{self.target.name}: no answer from {self.target.destination} within "
                              f"{limit + self.target.connect_timeout:.0f} s during {during}", "timeout", status="timeout")
        return call

    def checked(self, call: SshCall, during: str) -> dict:
        err = ssh_failure(self.target, call, "connecting" if during in ("connecting", "the probe") else during)
        if err is None:
            err = agent_failure(self.target, call, during)
        if err is not None:
            raise err
        return call.answer or {}

    def probe(self) -> dict:
        call = self.agent("install", ["--probe", "--workdir", self.target.workdir_clean], timeout=120)
        ans = self.checked(call, "the probe")
        ans["elapsed_s"] = round(call.seconds, 2)
        return ans

    def remote_dir(self, key: str) -> str:
        return f"{self.target.workdir_clean}/artifacts/{key}"

    def ensure_artifact(self, directory: Path, key: str, require: str | None = None) -> dict:
        """Check the device's copy of the artifact directory; send it when missing or different.
        With `require` (a backend), a device without that runtime fails here, before any copy."""
        hashes = local_hashes(directory)
        remote = self.remote_dir(key)
        call = self.agent("install", ["--hashes", remote, *(["--require", require] if require else [])], timeout=300)
        there = self.checked(call, "connecting").get("files") or {}
        info: dict[str, Any] = {"artifact_remote_dir": remote, "artifact_check_s": round(call.seconds, 2)}
        if there == hashes:
            info["artifact_copied"] = False
            return info
        info["artifact_copied"] = True
        if there:
            bad = sorted(k for k in set(there) | set(hashes) if there.get(k) != hashes.get(k))
            info["artifact_recopied_because"] = f"hash mismatch on the device: {', '.join(bad[:5])}"
        size = sum((directory / rel).stat().st_size for rel in hashes)
        call = self.agent("use", ["--receive", remote], stdin=_tar_writer(directory, hashes),
                          timeout=120 + size / 1e6, during="the artifact copy")
        err = ssh_failure(self.target, call, "the artifact copy") or agent_failure(self.target, call, "the artifact copy")
        if err is not None:
            raise err
        info["artifact_copy_s"] = round(call.seconds, 2)
        info["artifact_copy_bytes"] = size
        return info

    def run_agent(self, args: list[str], npy: bytes, timeout: float, on_message=None) -> tuple[dict, int]:
        """Run the measurement; one retry when the connection drops (ssh exit 255). Returns the
        agent's answer and the number of retries."""
        retries = 0
        while True:
            call = self.agent("use", args, stdin=npy, timeout=timeout, during="the run", on_message=on_message)
            err = ssh_failure(self.target, call, "the run")
            if err is not None and err.kind == "dropped" and retries == 0:
                retries += 1
                if on_message:
                    on_message({"event": "progress", "phase": "retry", "fraction": 0.0,
                                "detail": "connection dropped; retrying once"})
                continue
            if err is None:
                err = agent_failure(self.target, call, "the run")
            if err is not None:
                if retries:
                    err.details["retries"] = retries
                raise err
            return call.answer or {}, retries


# --- a remote cell -----------------------------------------------------------------------------

def _npy_bytes(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, x, allow_pickle=False)
    return buf.getvalue()


def _npy_load(b64: str) -> np.ndarray:
    import base64

    return np.load(io.BytesIO(base64.b64decode(b64)), allow_pickle=False)


def _build_artifact(fmt: str, src, input_shape, cfg):
    from effbench.export.pipeline import build_artifact

    with _EXPORT_LOCK:
        if fmt == "coreml":
            from effbench.export.coreml_export import coreml_artifact

            return coreml_artifact(src, input_shape, cfg.options.get("exporter", ""), precision=cfg.precision)
        return build_artifact(fmt, src, input_shape, cfg.options.get("exporter", "torchscript"))


def agent_args(cfg, artifact_path: str, backend: str, input_shape: tuple[int, ...], deadline_s: float) -> list[str]:
    args = ["--run", "--artifact", artifact_path, "--backend", backend,
            "--input-shape", ",".join(map(str, input_shape)), "--batch", str(cfg.batch_size),
            "--precision", cfg.precision, "--scenario", cfg.scenario,
            "--warmup", repr(float(cfg.warmup_s)), "--warmup-iters", str(cfg.warmup_iters),
            "--duration", repr(float(cfg.duration_s)), "--min-iters", str(cfg.min_iters),
            "--max-duration", repr(float(cfg.max_duration_s)), "--deadline", f"{max(deadline_s, 5.0):.0f}"]
    if cfg.threads:
        args += ["--threads", str(cfg.threads)]
    if cfg.cpus:
        args += ["--cpus", ",".join(map(str, cfg.cpus))]
    if cfg.target_ci is not None:
        args += ["--target-ci", repr(float(cfg.target_ci))]
    if backend == "openvino" and cfg.options.get("hint"):
        args += ["--hint", cfg.options["hint"]]
    if backend == "coreml":
        args += ["--compute-units", cfg.options.get("compute_units", "all")]
    return args


def run_remote(cfg, target: Any, on_event: Event | None = None) -> "Result":  # noqa: F821
    """Run one cell on a remote device; always returns a Result (failures become records).

    `target`: a DeviceSpec with `ssh`, a devices.target.Target, or a RemoteTarget. `on_event`
    gets {"phase", "fraction", "detail"} dicts, like run_isolated's."""
    from effbench.harness.result import failed_result

    def event(phase: str, frac: float, detail: str) -> None:
        if on_event:
            try:
                on_event({"event": "progress", "phase": phase, "fraction": frac, "detail": detail})
            except Exception:
                pass

    t_cell = time.perf_counter()
    base = cfg.to_dict()
    try:
        rt = RemoteTarget.from_spec(target)
        base["device"] = rt.name
        result = _run_remote_cell(cfg, rt, event, target)
    except RemoteError as e:
        msg = str(e) + (f" (cell --timeout {cfg.timeout_s:g} s, export and copy included)" if e.kind == "timeout" else "")
        result = failed_result(base, e.status, msg, config_hash=cfg.config_hash(),
                               extra={"remote": {"kind": e.kind, **e.details}})
    except EffbenchError as e:
        status = "skipped" if getattr(e, "exit_code", 1) == 2 else "failed"
        result = failed_result(base, status, " ".join(str(e).split()), config_hash=cfg.config_hash())
    except Exception as e:  # a runtime's or exporter's own error: recorded, never a lost sweep
        import traceback

        result = failed_result(base, "failed", f"{type(e).__name__}: {e}".splitlines()[0][:500],
                               config_hash=cfg.config_hash(), extra={"traceback": traceback.format_exc(limit=-3)})
    result.extra.setdefault("cell_wall_s", round(time.perf_counter() - t_cell, 2))
    return result


def check_remote_cell(cfg, device: str | None = None):
    """What can be known wrong about a remote cell before any work (the remote counterpart of
    runner.check_cell, which asks whether a backend runs *here*). Returns (backend, ModelSpec);
    raises UsageError."""
    from effbench.backends.registry import get_backend
    from effbench.models.registry import resolve

    device = device or cfg.device
    backend = get_backend(cfg.backend)
    if backend.name not in AGENT_BACKENDS:
        raise UsageError(f"backend {backend.name!r} cannot run on remote device {device!r}: the agent runs "
                         f"{', '.join(AGENT_BACKENDS)}")
    if cfg.precision not in backend.precisions:
        raise UsageError(f"precision {cfg.precision!r} not available: {backend.name} runs "
                         f"{', '.join(backend.precisions)}")
    if backend.name == "coreml":
        from effbench.backends.coreml_backend import parse_compute_units

        parse_compute_units(cfg.options.get("compute_units"))
    return backend, resolve(cfg.model, cfg.input_size)


def _run_remote_cell(cfg, rt: RemoteTarget, event: Callable[[str, float, str], None], given: Any = None):
    from effbench.export.pipeline import ModelSource
    from effbench.harness import stability
    from effbench.harness.parity import compare
    from effbench.harness.result import Result
    from effbench.harness.runner import make_inputs, reference_outputs
    from effbench.harness.stats import summarize

    deadline = time.monotonic() + cfg.timeout_s
    backend, spec = check_remote_cell(cfg, rt.name)
    input_shape = (cfg.batch_size, *spec.input_shape)
    src = ModelSource(spec, cfg.pretrained, cfg.seed)
    result = Result(model=spec.id, backend=backend.name, device=rt.name, scenario=cfg.scenario,
                    batch_size=cfg.batch_size, precision=cfg.precision, tag=cfg.tag, config=cfg.to_dict(),
                    config_hash=cfg.config_hash(), threads=cfg.threads, cpus=cfg.cpus)

    event("export", 0.0, f"{backend.artifact_format} artifact")
    artifact = _build_artifact(backend.artifact_format, src, input_shape, cfg)
    result.export_s = round(artifact.export_s, 3)
    result.artifact_bytes = artifact.bytes
    result.artifact_cached = artifact.cached
    event("export", 1.0, "cached" if artifact.cached else f"exported in {artifact.export_s:.1f} s")

    session = RemoteSession(rt, deadline)
    event("copy", 0.0, f"checking the artifact on {rt.name}")
    copy_info = session.ensure_artifact(artifact.path.parent, artifact.key, backend.name)
    event("copy", 1.0, "copied" if copy_info["artifact_copied"] else "already on the device")

    inputs = make_inputs(spec, cfg.batch_size, cfg.seed)
    x = next(iter(inputs.values()))
    remote_path = f"{session.remote_dir(artifact.key)}/{artifact.path.name}"
    left = deadline - time.monotonic()
    args = agent_args(cfg, remote_path, backend.name, input_shape, left - 5)

    def on_message(msg: dict) -> None:
        event(msg.get("phase", ""), float(msg.get("fraction", 0.0)), str(msg.get("detail", "")))

    event("run", 0.0, f"agent on {rt.name}")
    ans, retries = session.run_agent(args, _npy_bytes(x), left, on_message)

    samples_ns = np.asarray(ans.get("samples_ns") or [], dtype=np.int64)
    if samples_ns.size == 0:
        raise RemoteError(f"{rt.name}: the agent returned no samples", "no_samples")
    samples_ms = samples_ns / 1e6
    summary = summarize(samples_ms)
    result.latency_ms = summary.to_dict()
    result.samples_ms = [round(float(v), 6) for v in samples_ms]
    result.iterations = int(samples_ms.size)
    result.first_inference_ms = round(ans.get("first_ns", 0) / 1e6, 4)
    result.load_s = round(float(ans.get("load_s") or 0.0), 4)
    result.throughput_per_s = cfg.batch_size * 1000.0 / summary.median if summary.median > 0 else None
    result.precision_ran = ans.get("precision_ran") or cfg.precision
    result.runtime.update(ans.get("runtime_info") or {})
    result.runtime.update({"remote": True, "transport": "ssh", "runtime_version": ans.get("runtime_version"),
                           "agent": ans.get("env", {}).get("agent"), "ssh_retries": retries, **copy_info})
    if artifact.meta.get("export_path"):
        result.runtime.setdefault("export_path", artifact.meta["export_path"])
    mem = dict(ans.get("memory") or {})
    mem["artifact_bytes"] = result.artifact_bytes
    result.memory = mem
    result.energy = {"available": False, "reason": f"no energy meter on remote device {rt.name} (ssh agent)"}
    result.extra["warmup"] = {"iterations": ans.get("warmup_iters"), "seconds": round(float(ans.get("warmup_s") or 0), 3)}
    result.extra["measure_s"] = round(float(ans.get("measure_s") or 0), 3)
    result.warnings.extend(ans.get("notes") or [])
    if retries:
        result.warnings.append(f"connection to {rt.name} dropped during the run; retried once")

    env = dict(ans.get("env") or {})
    env["remote"] = {"device": rt.name, "host": rt.host, "port": rt.port, "python": rt.python,
                     "workdir": rt.workdir}
    env["harness"] = _harness_env()
    result.env = env
    result.stability = _stability(samples_ms, cfg, ans, env, result.warnings, stability)
    if result.precision_ran != cfg.precision:
        result.warnings.append(f"asked for {cfg.precision}, the runtime ran {result.precision_ran}")

    outputs = [_npy_load(o) for o in ans.get("outputs") or []]
    if cfg.parity and outputs:
        event("parity", 0.0, "reference")
        onnx_path = (artifact.meta.get("onnx_path") or artifact.path) if artifact.format in ("onnx", "openvino") else None
        ref, ref_name = reference_outputs(src, inputs, onnx_path)
        parity = compare(outputs, ref, result.precision_ran, ref_name)
        result.parity = parity.__dict__
        if not parity.ok:
            result.warnings.append(
                f"parity failure: max rel err {parity.max_rel_err:.2e}, cosine {parity.cosine:.5f} vs {ref_name}")
    _attach_extras(result, src, cfg, artifact, summary.median, _analysis_target(given, rt.name))
    return result


def _stability(samples_ms, cfg, ans: dict, env: dict, warnings: list[str], stability) -> dict:
    """stability.diagnose on the samples, with the device's governor and load, not this machine's."""
    diag, warns = stability.diagnose(samples_ms, cfg.threads, None, None, ans.get("target_ci"),
                                     ans.get("reached_ci"), ans.get("target_met"))
    warns = [w for w in warns if not w.startswith(("CPU governor is", "other processes busy"))]
    gov = env.get("governor")
    diag["governor"] = gov
    diag["loadavg_before"], diag["loadavg_after"] = ans.get("loadavg_before"), ans.get("loadavg_after")
    if gov is not None and gov != "performance":
        warns.append(f"CPU governor on the device is {gov!r}, not 'performance'")
    ncpu = env.get("usable_cpus") or env.get("logical_cpus") or 1
    busy = max(v for v in (ans.get("loadavg_before"), ans.get("loadavg_after"), 0.0) if v is not None)
    if busy - (cfg.threads or 1) > 0.5 * ncpu:
        warns.append(f"other processes busy on the device: load average {busy:.1f} on {ncpu} CPUs")
    warnings.extend(warns)
    return diag


def _harness_env() -> dict:
    import platform
    import socket

    from effbench import __version__
    from effbench.harness.env import git_commit

    return {"hostname": socket.gethostname(), "python": platform.python_version(), "effbench": __version__,
            "git_commit": git_commit()}


def _analysis_target(given: Any, name: str):
    """A devices.target.Target whose `spec` carries the device's peaks (None when unknown)."""
    if hasattr(given, "execution") and hasattr(given, "spec"):
        return given
    try:
        from effbench.devices.target import Target
    except ImportError:
        return None
    spec = given if hasattr(given, "peak_flops") else None
    return Target(name, "remote", spec)


def _attach_extras(result, src, cfg, artifact, median_ms: float, target) -> None:
    """Parameters and the analysis (MACs, roofline against the device's peaks) as local cells get them."""
    from effbench.harness import runner

    params = getattr(runner, "_params", None)
    if params is not None:
        try:
            result.params = params(src)
        except Exception:
            pass
    if cfg.options.get("analysis") == "0":
        return
    try:
        from effbench.analysis.summary import attach
    except ImportError:
        return
    try:
        with _EXPORT_LOCK:  # it may export the ONNX graph it analyses
            attach(result, cfg, artifact, median_ms, src, target)
    except Exception as e:  # the analysis must never lose a measured result
        result.warnings.append(f"no graph analysis: {type(e).__name__}: {str(e)[:200]}")


# --- device check ------------------------------------------------------------------------------

def probe_remote(target: Any, timeout_s: float = 120.0) -> dict:
    """Connect, install the agent if needed, and return its --probe answer (raises RemoteError)."""
    rt = RemoteTarget.from_spec(target)
    return RemoteSession(rt, time.monotonic() + timeout_s).probe()


__all__ = ["AGENT_BACKENDS", "RemoteError", "RemoteSession", "RemoteTarget", "agent_args", "check_remote_cell",
           "probe_remote", "run_remote", "ssh_failure", "agent_failure"]
