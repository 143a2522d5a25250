"""This host's Ray node: the `ray start` argument list, starting it, checking what it bound, stopping it.

Every process is started from an argument list, never a shell string; device names are checked
before they reach Ray. After the node is up, every socket its processes listen on must be bound to
the address given: Ray silently replaces a loopback --node-ip-address with the machine's interface
address, and a node that did so is stopped again with a one-line error.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from effbench.errors import EffbenchError, UsageError
from effbench.farm.resources import resource_name
from effbench.paths import state_dir

DEFAULT_PORT = 6379
READY_MARKER = "will now block forever"  # what `ray start --block` prints once the node is up
START_TIMEOUT_S = 120.0
STOP_GRACE_S = 30.0
HEAD_CHECK_S = 5.0  # a head that does not accept a TCP connection in this long is not there


def parse_ip(text: str, what: str) -> str:
    try:
        return str(ipaddress.ip_address(text.strip().strip("[]")))
    except ValueError:
        raise UsageError(
            f"{what} {text!r} is not an IP address: give the address this node is reached at, e.g. 10.0.0.5"
        ) from None


def parse_address(text: str, what: str = "farm address") -> tuple[str, int]:
    """'10.0.0.5:6379' or 'head.lab:6379' -> (IP, port); the port defaults to 6379."""
    text = (text or "").strip()
    if not text:
        raise UsageError(f"no {what} given: pass HOST:PORT of the farm's head node, e.g. 10.0.0.5:6379")
    host, port = text, str(DEFAULT_PORT)
    if text.startswith("["):  # [v6]:port
        host, _, rest = text[1:].partition("]")
        port = rest.lstrip(":") or port
    elif text.count(":") == 1:
        host, port = text.split(":")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{what} {text!r}: the port must be a number from 1 to 65535")
    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        try:
            ip = str(socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)[0][4][0])
        except (socket.gaierror, UnicodeError):
            raise UsageError(
                f"{what} {text!r}: cannot resolve host {host!r} (check the name, or give its IP)"
            ) from None
    return ip, int(port)


def route_address(head_ip: str, head_port: int) -> str:
    """This host's address on the route to the head (no packet is sent)."""
    family = socket.AF_INET6 if ":" in head_ip else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect((head_ip, head_port))
        except OSError as e:
            raise UsageError(f"no route to the farm head {head_ip}: {e.strerror or e}; give --node-ip") from None
        return s.getsockname()[0]


def check_own_address(ip: str, what: str) -> None:
    """`ip` must be an address of this host (Ray would start, wait and fail otherwise)."""
    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((ip, 0))
        except OSError as e:
            raise UsageError(
                f"{what} {ip} is not an address of this host ({e.strerror or e}): give one of its own "
                "addresses (`ip -brief address` lists them)"
            ) from None


def check_port_free(ip: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((ip, port))
        except OSError as e:
            raise UsageError(
                f"port {port} on {ip} is taken ({e.strerror or e}): a farm head running already? "
                "(`bench farm status`, `bench farm stop`), or give another port"
            ) from None


def check_head_answers(ip: str, port: int, timeout_s: float = HEAD_CHECK_S) -> None:
    """The head must accept a connection before this node starts Ray (which would wait 120 s)."""
    try:
        socket.create_connection((ip, port), timeout=timeout_s).close()
    except OSError as e:
        why = e.strerror or ("no answer in %.0f s" % timeout_s if isinstance(e, TimeoutError) else str(e))
        raise EffbenchError(
            f"the farm head {ip}:{port} does not answer ({why}): start it there first with "
            f"`bench farm start {ip}:{port}`, or check the address"
        ) from None


@dataclass
class NodePlan:
    """Everything `ray start` is told, and where this node's log and pid record go."""

    node_ip: str
    devices: list[str]
    num_cpus: int
    head_port: int | None = None  # set for the head node
    head_address: str | None = None  # "ip:port" for a joining node
    dashboard: bool = False
    temp_dir: str | None = None
    object_store_mb: int | None = None
    devices_file: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return (
            f"head-{self.head_port}" if self.head_port else f"node-{self.node_ip}-" + "-".join(self.devices or ["none"])
        )

    def argv(self) -> list[str]:
        args = [
            sys.executable,
            "-m",
            "ray.scripts.scripts",
            "start",
            "--block",
            "--node-ip-address",
            self.node_ip,
            "--num-cpus",
            str(self.num_cpus),
            "--resources",
            json.dumps({resource_name(d): 1 for d in self.devices}),
            "--disable-usage-stats",
            "--log-style",
            "record",
        ]
        if self.head_port:
            args += [
                "--head",
                "--port",
                str(self.head_port),
                "--include-dashboard",
                "true" if self.dashboard else "false",
                "--dashboard-host",
                self.node_ip,
            ]
        else:
            args += ["--address", str(self.head_address)]
        if self.temp_dir:
            args += ["--temp-dir", self.temp_dir]
        if self.object_store_mb:
            args += ["--object-store-memory", str(self.object_store_mb * 1024 * 1024)]
        return args

    def env(self) -> dict[str, str]:
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", **ray_auth_env(), **self.extra_env)
        if self.head_port:
            # Ray Client's proxy forks a server per client while its gRPC threads run; grpcio's fork
            # handlers then crash that child now and then (a segfault in cygrpc's event engine).
            # The child execs at once and needs none of them.
            env.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
        if self.devices_file:
            env["EFFBENCH_DEVICES"] = str(Path(self.devices_file).resolve())
        return env


def ray_auth_env() -> dict[str, str]:
    """Ray's authentication mode, the same for every Ray process effbench starts or connects: the
    user's RAY_AUTH_MODE, else disabled. Left unset, Ray turns token authentication on for a head
    started where ~/.ray/auth_token exists (any local `ray.init()` writes one) but not for the nodes
    that join it, which are then refused."""
    return {"RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE") or "disabled"}


def check_devices(devices: list[str], devices_file: str | None) -> None:
    """Every device this node advertises must be in its catalog: that is where a cell learns how to
    run on it (locally, on a GPU, or over ssh through the agent)."""
    from effbench.devices.catalog import get_device, load_catalog

    catalog = load_catalog(devices_file)
    for d in devices:
        resource_name(d)
        get_device(d, catalog=catalog)
    if len(set(devices)) != len(devices):
        raise UsageError("a device is named twice: give each --device once")


# --- what a node's processes listen on -------------------------------------------------------


def process_tree(pid: int) -> list:
    import psutil

    try:
        root = psutil.Process(pid)
        return [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def listening(pid: int) -> list[tuple[str, int, str]]:
    """(address, port, process name) of every TCP socket the process tree listens on."""
    import psutil

    found = []
    for proc in process_tree(pid):
        try:
            conns = proc.net_connections(kind="tcp")
            name = proc.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        found += [(c.laddr.ip, c.laddr.port, name) for c in conns if c.status == psutil.CONN_LISTEN]
    return found


def foreign_bindings(pid: int, node_ip: str) -> list[tuple[str, int, str]]:
    allowed = {node_ip, f"::ffff:{node_ip}"}
    return [entry for entry in listening(pid) if entry[0] not in allowed]


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> None:
    import psutil

    for proc in reversed(process_tree(pid)):
        try:
            proc.send_signal(sig)
        except psutil.NoSuchProcess:
            pass


# --- starting and stopping ---------------------------------------------------------------------


def _records_dir() -> Path:
    return state_dir() / "farm"


@dataclass
class NodeRecord:
    pid: int
    name: str
    node_ip: str
    devices: list[str]
    log: str
    argv: list[str]

    def path(self) -> Path:
        return _records_dir() / f"{self.name}.json"


def start_node(plan: NodePlan, timeout_s: float = START_TIMEOUT_S) -> NodeRecord:
    """Start `ray start --block` detached, wait until the node is up and check its bindings."""
    folder = _records_dir()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"{plan.name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            plan.argv(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=plan.env(),
            start_new_session=True,
        )
    rec = NodeRecord(proc.pid, plan.name, plan.node_ip, plan.devices, str(log), plan.argv())
    deadline = time.monotonic() + timeout_s
    while READY_MARKER not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            kill_tree(proc.pid)
            proc.wait(timeout=10)
            raise EffbenchError(f"the Ray node did not start: {_last_error(log)} (log: {log})")
        time.sleep(0.2)
    bad = foreign_bindings(proc.pid, plan.node_ip)
    if bad:
        kill_tree(proc.pid)
        proc.wait(timeout=10)
        ip, port, name = bad[0]
        raise UsageError(
            f"Ray bound {name} to {ip}:{port} instead of {plan.node_ip} (Ray replaces loopback "
            "addresses with the interface address): give this host's interface address with "
            "--node-ip, or run the farm inside a network namespace that has only loopback"
        )
    rec.path().write_text(json.dumps(asdict(rec), indent=1))
    return rec


def _last_error(log: Path) -> str:
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "error" in ln.lower() or "exception" in ln.lower():
            return ln[-300:]
    return lines[-1][-300:] if lines else "no output"


@contextmanager
def stop_requests() -> Iterator[dict[str, bool]]:
    """SIGINT/SIGTERM noted instead of acted on, from before the node starts (its devices are on the
    farm before `start_node` returns: a SIGTERM then must still stop it cleanly)."""
    stop = {"asked": False}

    def on_signal(signum: int, _frame: Any) -> None:
        stop["asked"] = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def wait_node(rec: NodeRecord, stop: dict[str, bool]) -> int:
    """Keep the node in the foreground until `stop` is asked (stop_requests); returns its exit code."""
    try:
        while not stop["asked"] and _alive(rec.pid):
            time.sleep(0.5)
        if stop["asked"]:
            stop_node(rec)
            return 0
        return 1  # the node died by itself: say so with a non-zero code
    finally:
        rec.path().unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def stop_nodes(records: list[NodeRecord], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM lets `ray start --block` take its processes down; what is left after the grace
    period is killed. Joined nodes go first: they stop cleanly only while their head still answers."""
    heads = [r for r in records if r.name.startswith("head-")]
    for group in ([r for r in records if r not in heads], heads):
        trees = {r.pid: process_tree(r.pid) for r in group}
        for r in group:
            try:
                os.kill(r.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(_alive(p.pid) for tree in trees.values() for p in tree):
            for r in group:
                _reap(r.pid)
            time.sleep(0.2)
        for r in group:
            for p in trees[r.pid]:
                if _alive(p.pid):
                    kill_tree(p.pid)
            _reap(r.pid)
            r.path().unlink(missing_ok=True)


def stop_node(rec: NodeRecord, grace_s: float = STOP_GRACE_S) -> None:
    stop_nodes([rec], grace_s)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def started_nodes() -> list[NodeRecord]:
    """The nodes this host started (records in the state folder) that are still running."""
    import psutil

    out = []
    for path in sorted(_records_dir().glob("*.json")) if _records_dir().is_dir() else []:
        try:
            rec = NodeRecord(**json.loads(path.read_text()))
            cmd = psutil.Process(rec.pid).cmdline()
        except (OSError, ValueError, TypeError, psutil.NoSuchProcess, psutil.AccessDenied):
            path.unlink(missing_ok=True)  # a stale record: its process is gone
            continue
        if "ray.scripts.scripts" in cmd and "start" in cmd:  # the pid was not reused by another program
            out.append(rec)
        else:
            path.unlink(missing_ok=True)
    return out
