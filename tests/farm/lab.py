"""Real parts for the farm tests, all inside one network namespace that has only loopback.

Ray replaces a loopback --node-ip-address with the machine's interface address unless loopback is
the only interface there is, so the Ray head, its nodes, the submitting `bench` process and the
PostgreSQL server all run inside a namespace of their own (`ip netns add`). The test process itself
stays outside: it reads PostgreSQL through the server's Unix socket (a file, not a network address)
and drives everything else through `ip netns exec`. Every process is stopped by its id at the end:
whatever is left in the namespace is killed, then the namespace is deleted.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = str(Path(sys.executable).parent / "bench")


def _pg_bin() -> Path:
    """Debian's newest installed PostgreSQL server binaries."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0
    )
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
HEAD_PORT = 6390
PG_PORT = 5439
PASSWORD = "farm-test-secret-8d1f"  # must never appear in any output

# Node death is noticed in about a second instead of Ray's default 15-30 s.
FAST_HEALTH = {
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "500",
    "RAY_health_check_failure_threshold": "2",
    "RAY_health_check_initial_delay_ms": "0",
    # Ray Client's per-client server may take longer than its 30 s to start on a busy 2-core box
    "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S": "120",
}


def missing_tools() -> str | None:
    """Why the namespace cannot be made here, or None."""
    if os.geteuid() != 0:
        return "needs root to make a network namespace (ip netns add)"
    for tool in ("ip", "ss", "setpriv"):
        if not shutil.which(tool):
            return f"{tool} not installed (apt install iproute2 util-linux; scripts/setup-system.sh)"
    return None


def wait_for(what: str, check, timeout: float, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


class Namespace:
    def __init__(self, name: str):
        self.name = name

    @classmethod
    def create(cls) -> Namespace:
        ns = cls(f"effb-test-{os.getpid()}")
        subprocess.run(["ip", "netns", "add", ns.name], check=True, capture_output=True, text=True)
        subprocess.run(["ip", "netns", "exec", ns.name, "ip", "link", "set", "lo", "up"], check=True)
        links = ns.run(["ip", "-o", "link", "show"]).stdout.splitlines()
        names = [ln.split(":")[1].strip() for ln in links if ln.strip()]
        if names != ["lo"]:  # Ray would take any other interface's address instead of 127.0.0.1
            ns.destroy()
            raise RuntimeError(f"the test namespace {ns.name} has links {names}, not loopback only")
        return ns

    def argv(self, args) -> list[str]:
        return ["ip", "netns", "exec", self.name, *map(str, args)]

    def run(self, args, timeout: float = 180, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(args), capture_output=True, text=True, timeout=timeout, **kw)

    def popen(self, args, **kw) -> subprocess.Popen:
        return subprocess.Popen(self.argv(args), **kw)

    def pids(self) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def destroy(self) -> None:
        for _ in range(20):  # bounded: processes may fork while we kill
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


@dataclass
class Postgres:
    ns: Namespace
    root: Path
    proc: subprocess.Popen | None = None
    created: int = 0

    def socket_url(self, db: str, user: str = "bench") -> str:
        """For the test process, outside the namespace: the Unix socket (trusted, no password)."""
        return f"postgresql+psycopg://{user}@/{db}?host={self.root}&port={PG_PORT}"

    def tcp_url(self, db: str) -> str:
        """For processes inside the namespace: loopback TCP as `bench`, its password from PGPASSWORD."""
        return f"postgresql+psycopg://bench@127.0.0.1:{PG_PORT}/{db}"

    def start(self) -> None:
        os.chown(self.root, _uid("postgres"), _gid("postgres"))
        pwfile = self.root / "pw"
        pwfile.write_text("unused-superuser-password\n")
        os.chown(pwfile, _uid("postgres"), _gid("postgres"))
        data = self.root / "data"
        subprocess.run(
            [
                "setpriv",
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                str(PG_BIN / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            text=True,
            cwd=self.root,
            timeout=120,
        )
        log = open(self.root / "postgres.log", "wb")
        self.proc = self.ns.popen(
            [
                "setpriv",
                "--reuid=postgres",
                "--regid=postgres",
                "--init-groups",
                PG_BIN / "postgres",
                "-D",
                data,
                "-k",
                self.root,
                "-h",
                "127.0.0.1",
                "-p",
                PG_PORT,
                "-c",
                "fsync=off",
                "-c",
                "max_connections=60",
            ],
            stdout=log,
            stderr=log,
            cwd=self.root,
        )
        wait_for("PostgreSQL to accept connections", self._ready, 60)
        self.sql("postgres", f"CREATE ROLE bench LOGIN PASSWORD '{PASSWORD}'")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"postgres exited: {(self.root / 'postgres.log').read_text()[-800:]}")
        try:
            self.sql("postgres", "SELECT 1")
            return True
        except Exception:
            return False

    def sql(self, db: str, statement: str):
        import psycopg

        with psycopg.connect(host=str(self.root), port=PG_PORT, user="postgres", dbname=db, autocommit=True) as c:
            cur = c.execute(statement)
            return cur.fetchall() if cur.description else None

    def new_database(self) -> str:
        self.created += 1
        name = f"farm_{self.created}"
        self.sql("postgres", f"CREATE DATABASE {name} OWNER bench")
        return name

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid


def _gid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_gid


@dataclass
class Farm:
    """A Ray head (no devices) and one node per device, each with its own artifact cache."""

    ns: Namespace
    root: Path
    devices: list[str] = field(default_factory=lambda: ["farm-a", "farm-b"])

    @property
    def address(self) -> str:
        return f"127.0.0.1:{HEAD_PORT}"

    @property
    def devices_file(self) -> Path:
        return self.root / "devices.yaml"

    @property
    def home(self) -> Path:
        """The farm's processes' home, with a Ray token file in it as any local `ray.init()` leaves one
        (Ray then turned token authentication on for the head alone and no node could join)."""
        home = self.root / "home"
        token = home / ".ray" / "auth_token"
        if not token.exists():
            token.parent.mkdir(parents=True, exist_ok=True)
            token.write_text("0" * 64)
        return home

    def env(self, **over) -> dict[str, str]:
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
            EFFBENCH_STATE=str(self.root / "state"),
            EFFBENCH_CACHE=str(self.root / "cache-submit"),
            RAY_USAGE_STATS_ENABLED="0",
            HOME=str(self.home),
            **FAST_HEALTH,
        )
        env.update(over)
        return env

    def node_cache(self, device: str) -> Path:
        return self.root / f"cache-{device}"

    def bench(self, *args, timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess:
        return self.ns.run([BENCH, *args], timeout=timeout, env=env or self.env(), cwd=self.root)

    def start(self) -> None:
        self.devices_file.write_text(
            "devices:\n"
            + "".join(  # farm-c: for a node a test joins itself
                f'  {d}: {{kind: cpu, description: "farm test device: this machine\'s CPU"}}\n'
                for d in [*self.devices, "farm-c"]
            )
        )
        r = self.bench(
            "farm",
            "start",
            self.address,
            "--num-cpus",
            "0",
            "--temp-dir",
            self.root / "h",
            "--object-store-mb",
            "80",
            "--background",
        )
        assert r.returncode == 0, r.stdout + r.stderr
        joins = [self._join(d) for d in self.devices]
        for d, proc in zip(self.devices, joins):
            out, _ = proc.communicate(timeout=180)
            assert proc.returncode == 0, f"join {d}: {out}"

    def _join(self, device: str) -> subprocess.Popen:
        return self.ns.popen(
            [
                BENCH,
                "farm",
                "join",
                self.address,
                "--device",
                device,
                "--num-cpus",
                "1",
                "--devices-file",
                self.devices_file,
                "--temp-dir",
                self.root / device[-1],
                "--object-store-mb",
                "80",
                "--background",
            ],
            env=self.env(EFFBENCH_CACHE=str(self.node_cache(device))),
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def head_log(self, pattern: str) -> str:
        """The tails of the head's Ray logs matching `pattern`, for a failing assertion's message."""
        logs = sorted((self.root / "h").glob(f"session_latest/logs/{pattern}"))
        return "".join(f"\n== {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in logs)

    def node_record(self, device: str) -> dict:
        import json

        for path in (self.root / "state" / "farm").glob("*.json"):
            rec = json.loads(path.read_text())
            if device in rec["devices"]:
                return rec
        raise LookupError(f"no node record for {device}")

    def kill_node(self, device: str) -> None:
        """The node's host dies: every process of that node, at once."""
        import psutil

        rec = self.node_record(device)
        root = psutil.Process(rec["pid"])
        procs = [root] + root.children(recursive=True)
        for p in procs:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(procs, timeout=10)
        (self.root / "state" / "farm" / f"{rec['name']}.json").unlink(missing_ok=True)

    def ensure_nodes(self) -> None:
        """Re-join any device whose node is gone (a test before this one killed it)."""
        import json

        r = self.bench("farm", "status", "--farm", self.address, "--format", "json")
        have = {d["device"] for d in json.loads(r.stdout)["devices"]} if r.returncode == 0 else set()
        for d in self.devices:
            if d not in have:
                proc = self._join(d)
                out, _ = proc.communicate(timeout=180)
                assert proc.returncode == 0, out

    def stop(self) -> None:
        try:
            self.bench("farm", "stop", timeout=90)
        except subprocess.TimeoutExpired:
            pass  # the namespace's teardown kills what is left
        shutil.rmtree(self.root, ignore_errors=True)


def short_tmp(prefix: str) -> Path:
    """Ray's Unix socket paths must stay under 107 characters: a short folder in /tmp."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path
