"""Remote devices over the system OpenSSH client: the transport of the ssh launcher
(harness/launchers/ssh.py).

The device receives the measurement core itself (effbench/core, as the package `effbench_core`,
under a content-hashed directory) and runs its agent; artifacts live under
`<workdir>/artifacts/<key>/` (sha256 of every file checked on the device first: nothing is sent
when all match, the whole directory is re-sent when any differs).

`ssh` is the system client, so ~/.ssh/config, agents, ProxyJump and ControlMaster all apply. Every
call has `-o BatchMode=yes` (never a password prompt) and a ConnectTimeout. No shell runs locally
(argument lists only); the one command string the remote shell sees is built with shlex.quote.
Nothing here is global: one thread per device may use it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import signal
import subprocess
import tarfile
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from effbench.core.files import HASHES_FILE
from effbench.core.protocol import loads
from effbench.errors import RunFailed, UsageError

DEFAULT_WORKDIR = "~/.cache/effbench-agent"
DEFAULT_CONNECT_TIMEOUT = 10

# Started with `python -c BOOT WORKDIR CORE_DIR MODE AGENT_ARGS...`: finds the measurement core in
# WORKDIR/CORE_DIR, unpacks it from the tar stream on stdin first when MODE is "install" and it is
# not there yet, then runs its agent. It keeps to double quotes and no backslashes, so it survives
# any POSIX shell's single quoting.
_BOOT = """import os, sys, tarfile, runpy
w = os.path.expanduser(sys.argv[1]); d = os.path.join(w, sys.argv[2])
if not os.path.isdir(os.path.join(d, "effbench_core")):
    if sys.argv[3] != "install":
        m = '{"event":"error","kind":"agent_missing","message":"agent not found in the workdir"}'
        sys.stdout.write(m + chr(10)); sys.exit(3)
    os.makedirs(w, exist_ok=True); t = d + ".tmp" + str(os.getpid())
    kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    tarfile.open(fileobj=sys.stdin.buffer, mode="r|").extractall(t, **kw)
    try:
        os.rename(t, d)
    except OSError:
        pass
sys.path.insert(0, d); sys.argv = ["effbench_core.agent"] + sys.argv[4:]
runpy.run_module("effbench_core.agent", run_name="__main__", alter_sys=True)
"""

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
    def from_spec(cls, spec: Any, name: str | None = None) -> RemoteTarget:
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
        known = {
            "host",
            "user",
            "port",
            "identity_file",
            "python",
            "workdir",
            "options",
            "connect_timeout",
            "client",
            "name",
        }
        unknown = sorted(k for k, v in spec.items() if k not in known and v is not None)
        if unknown:
            raise UsageError(
                f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known - {'name'}))})"
            )
        host = str(spec.get("host") or "")
        if spec.get("user") and "@" not in host:
            host = f"{spec['user']}@{host}"
        options = spec.get("options") or ()
        if isinstance(options, str):
            options = shlex.split(options)
        if not all(isinstance(o, str) for o in options):
            raise UsageError(f'{where}.options must be a list of strings, e.g. ["-o", "ProxyJump=bastion"]')
        port = spec.get("port")
        try:
            port = int(port) if port is not None else None
            timeout = int(spec.get("connect_timeout") or DEFAULT_CONNECT_TIMEOUT)
        except (TypeError, ValueError):
            raise UsageError(f"{where}.port and connect_timeout must be integers") from None
        return cls(
            name=str(name),
            host=host,
            port=port,
            identity_file=str(spec["identity_file"]) if spec.get("identity_file") else None,
            python=str(spec.get("python") or "python3"),
            workdir=str(spec.get("workdir") or DEFAULT_WORKDIR),
            options=tuple(options),
            connect_timeout=timeout,
            client=str(spec.get("client") or "ssh"),
        )

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
        argv += [
            "-o",
            f"ConnectTimeout={self.connect_timeout}",
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "ServerAliveCountMax=4",
        ]
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
        # "; exit $?": the remote shell outlives the agent and hands back its status, so an agent
        # killed on the device exits 128+N instead of looking like a dropped connection (ssh's 255)
        return " ".join(shlex.quote(w) for w in words) + "; exit $?"


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
        lines = [
            ln.strip()
            for ln in self.stderr.splitlines()
            if ln.strip() and not ln.startswith("Warning: Permanently added")
        ]
        return lines[-1][:300] if lines else ""


def _call(
    argv: list[str],
    stdin: bytes | Callable[[Any], None] | None,
    timeout: float,
    on_message: Callable[[dict], None] | None = None,
) -> SshCall:
    """Run one ssh command; stdin is bytes, or a function that writes to the pipe. Streams the
    agent's JSON lines to `on_message` as they arrive."""
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except FileNotFoundError:
        raise RemoteError(
            f"the OpenSSH client {argv[0]!r} is not installed here (apt install openssh-client)", "no_ssh_client"
        ) from None
    messages: list[dict] = []
    other: list[str] = []
    err_chunks: list[bytes] = []

    def feed() -> None:
        try:
            if callable(stdin):
                stdin(proc.stdin)
            elif stdin and proc.stdin is not None:
                proc.stdin.write(stdin)
        except (BrokenPipeError, OSError, ValueError):
            pass  # the far end stopped reading; its exit status and stderr say why
        finally:
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
            except OSError:
                pass

    def read_err() -> None:
        stderr = proc.stderr
        assert stderr is not None  # Popen(stderr=PIPE)
        for chunk in iter(lambda: stderr.read(65536), b""):
            err_chunks.append(chunk)

    def read_out() -> None:
        assert proc.stdout is not None  # Popen(stdout=PIPE)
        for raw in proc.stdout:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            try:
                msg = loads(line)
            except ValueError:
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
    return SshCall(
        proc.returncode,
        messages,
        "\n".join(other),
        b"".join(err_chunks).decode(errors="replace"),
        time.perf_counter() - t0,
        timed_out,
    )


_UNREACHABLE = (
    "connection refused",
    "connection timed out",
    "operation timed out",
    "no route to host",
    "network is unreachable",
    "could not resolve hostname",
    "name or service not known",
    "temporary failure in name resolution",
    "kex_exchange_identification",
    "connection reset by peer",
    "connection closed by remote host",
)
_AUTH = (
    "permission denied",
    "too many authentication failures",
    "authentication failed",
    "no supported authentication methods",
    "no mutual signature",
)


def ssh_failure(target: RemoteTarget, call: SshCall, during: str) -> RemoteError | None:
    """The one-line error for an ssh-level failure (exit code 255), or None when the connection
    worked. `during` names the step ("connecting", "the run" ...)."""
    if call.returncode != 255 or call.answer is not None:
        return None
    err = call.stderr_line()
    low = call.stderr.lower()
    if "host key verification failed" in low or "remote host identification has changed" in low:
        return RemoteError(
            f"{target.name}: the host key of {target.destination} is not trusted ({err}); "
            f"connect once with `ssh {_ssh_hint(target)}` to check and accept it",
            "host_key",
        )
    if any(s in low for s in _AUTH):
        key = target.identity_file or "your key"
        return RemoteError(
            f"{target.name}: authentication refused by {target.destination} ({err}); add {key}.pub "
            f"to the device's ~/.ssh/authorized_keys (ssh-copy-id -i {key} {_ssh_hint(target, identity=False)}) "
            "or set ssh.identity_file in devices.yaml",
            "auth",
        )
    if during == "connecting" and any(s in low for s in _UNREACHABLE):
        return RemoteError(
            f"{target.name}: cannot reach {target.destination} ({err}); is the device on, on this "
            "network and running sshd? check with `ssh " + _ssh_hint(target) + "`",
            "unreachable",
        )
    if during == "connecting":
        return RemoteError(
            f"{target.name}: ssh to {target.destination} failed ({err or 'exit code 255'})", "ssh_failed"
        )
    return RemoteError(
        f"{target.name}: connection to {target.destination} dropped during {during} ({err or 'ssh exit code 255'})",
        "dropped",
    )


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
        return RemoteError(
            f"{target.name}: disk full on the device (No space left on device) during {during} in "
            f"{target.workdir}; free some space or point ssh.workdir at a larger disk",
            "disk_full",
        )
    if ans is not None and ans.get("event") == "result" and call.returncode == 0:
        return None
    if ans is not None and ans.get("event") == "error":
        kind = ans.get("kind", "error")
        msg = ans.get("message", "")
        if kind == "missing_runtime":
            pkgs = " ".join(ans.get("packages") or ["?"])
            python = target.python
            return RemoteError(
                f"{target.name}: {' and '.join(ans.get('packages') or ['?'])} not installed for "
                f"{python} on the device; on the device run `{python} -m pip install {pkgs}` "
                "(or point ssh.python in devices.yaml at a venv that has it)",
                "missing_runtime",
                status="skipped",
                packages=ans.get("packages"),
            )
        if kind == "unsupported":
            return RemoteError(f"{target.name}: {msg}", kind, status="skipped")
        if kind == "timeout":
            return RemoteError(f"{target.name}: {msg}", "timeout", status="timeout")
        if kind == "disk_full":
            return RemoteError(
                f"{target.name}: disk full on the device ({msg}); free some space or point "
                "ssh.workdir at a larger disk",
                "disk_full",
            )
        return RemoteError(f"{target.name}: {msg}", kind)
    err = call.stderr_line()
    low = call.stderr.lower()
    if 128 < call.returncode < 128 + 65:
        sig = call.returncode - 128
        name = signal.Signals(sig).name if sig in signal.valid_signals() else f"signal {sig}"
        return RemoteError(
            f"{target.name}: the agent was killed by {name} on the device during {during} "
            "(the out-of-memory killer, or a kill there: see dmesg on the device)",
            "agent_killed",
        )
    if call.returncode == 127 or ("not found" in low and call.returncode in (126, 127)):
        return RemoteError(
            f"{target.name}: Python interpreter {target.python!r} not found on the device ({err}); "
            "install Python 3.8+ there or set ssh.python in devices.yaml",
            "no_python",
        )
    if "syntaxerror" in low or "from __future__ import annotations" in low:
        return RemoteError(
            f"{target.name}: {target.python} on the device is too old for the agent ({err}); "
            "it needs Python 3.8 or newer (set ssh.python)",
            "old_python",
        )
    if "no module named" in low and "numpy" in low:
        return RemoteError(
            f"{target.name}: numpy not installed for {target.python} on the device; on the device "
            f"run `{target.python} -m pip install numpy`",
            "missing_runtime",
            status="skipped",
            packages=["numpy"],
        )
    return RemoteError(
        f"{target.name}: agent failed during {during} (exit code {call.returncode})" + (f": {err}" if err else ""),
        "agent_failed",
    )


# --- files -----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def core_bundle() -> tuple[bytes, str]:
    """The measurement core (effbench/core/*.py) as a tar stream holding the package `effbench_core`,
    and its content-hashed directory name on the device: the agent is exactly these files."""
    from effbench import core

    root = Path(core.__file__).parent
    files = sorted(p for p in root.rglob("*.py"))
    digest = hashlib.sha256()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in files:
            rel = f.relative_to(root).as_posix()
            data = f.read_bytes()
            digest.update(rel.encode() + b"\0" + data)
            info = tarfile.TarInfo(f"effbench_core/{rel}")
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue(), f"core-{digest.hexdigest()[:16]}"


def local_hashes(directory: Path) -> dict[str, str]:
    from effbench.core.files import file_hashes

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
        self.agent_bytes, self.agent_name = core_bundle()

    def _left(self, default: float) -> float:
        if self.deadline is None:
            return default
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RemoteError(
                f"{self.target.name}: cell time limit reached before the run finished", "timeout", status="timeout"
            )
        return min(default, left)

    def agent(
        self,
        mode: str,
        args: list[str],
        stdin=None,
        timeout: float = 120.0,
        during: str = "connecting",
        on_message=None,
    ) -> SshCall:
        cmd = self.target.agent_command(self.agent_name, mode, args)
        if mode == "install":
            stdin = self.agent_bytes
        limit = self._left(timeout)
        call = _call(self.target.ssh_argv(cmd), stdin, limit + self.target.connect_timeout, on_message)
        if call.timed_out:
            raise RemoteError(
                f"{self.target.name}: no answer from {self.target.destination} within "
                f"{limit + self.target.connect_timeout:.0f} s during {during}",
                "timeout",
                status="timeout",
            )
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
        call = self.agent(
            "use",
            ["--receive", remote],
            stdin=_tar_writer(directory, hashes),
            timeout=120 + size / 1e6,
            during="the artifact copy",
        )
        err = ssh_failure(self.target, call, "the artifact copy") or agent_failure(
            self.target, call, "the artifact copy"
        )
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
                    on_message(
                        {
                            "event": "progress",
                            "phase": "retry",
                            "fraction": 0.0,
                            "detail": "connection dropped; retrying once",
                        }
                    )
                continue
            if err is None:
                err = agent_failure(self.target, call, "the run")
            if err is not None:
                if retries:
                    err.details["retries"] = retries
                raise err
            return call.answer or {}, retries


# --- device check ------------------------------------------------------------------------------


def probe_remote(target: Any, timeout_s: float = 120.0) -> dict:
    """Connect, install the agent if needed, and return its --probe answer (raises RemoteError)."""
    rt = RemoteTarget.from_spec(target)
    return RemoteSession(rt, time.monotonic() + timeout_s).probe()


__all__ = [
    "RemoteError",
    "RemoteSession",
    "RemoteTarget",
    "agent_failure",
    "core_bundle",
    "probe_remote",
    "ssh_failure",
]
