"""A real OpenSSH server on 127.0.0.1 for the remote-device tests (this machine plays the device).

Session-scoped: throwaway host and client keys, its own sshd_config, a free port. Skipped with the
reason when Debian's openssh-server / openssh-client are not installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")
VENV_PYTHON = str(Path(sys.executable))
CLIENT_OPTIONS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]


@dataclass
class SshServer:
    port: int
    key: Path  # authorized
    bad_key: Path  # valid key, not in authorized_keys
    root: Path
    user: str

    def ssh_block(self, **over) -> dict:
        """The devices.yaml `ssh:` block for this server (the venv's python has onnxruntime)."""
        block = {
            "host": f"{self.user}@127.0.0.1",
            "port": self.port,
            "identity_file": str(self.key),
            "python": VENV_PYTHON,
            "workdir": str(self.root / "workdir"),
            "options": list(CLIENT_OPTIONS),
        }
        block.update(over)
        return block

    def device(self, name: str = "loopback", **over):
        from effbench.devices.catalog import DeviceSpec

        return DeviceSpec.model_validate({"name": name, "kind": "cpu", "ssh": self.ssh_block(**over)})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "effbench-test", "-f", str(path)],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    if not SSHD.exists():
        pytest.skip("OpenSSH server not installed (/usr/sbin/sshd missing; apt install openssh-server)")
    if not shutil.which("ssh") or not shutil.which("ssh-keygen"):
        pytest.skip("OpenSSH client not installed (ssh / ssh-keygen missing; apt install openssh-client)")
    root = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key", "bad_key"):
        _keygen(root / name)
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    os.chmod(root / "authorized_keys", 0o600)
    port = _free_port()
    config = root / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"HostKey {root / 'host_key'}",
                f"AuthorizedKeysFile {root / 'authorized_keys'}",
                f"PidFile {root / 'sshd.pid'}",
                "StrictModes no",
                "PermitRootLogin yes",
                "UsePAM no",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "MaxStartups 100:30:200",
                "LogLevel ERROR",
                "",
            ]
        )
    )
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    log = open(root / "sshd.log", "wb")
    proc = subprocess.Popen(
        [str(SSHD), "-D", "-e", "-f", str(config), "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            log.close()
            pytest.skip(f"sshd did not start: {(root / 'sshd.log').read_text()[-500:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.skip("sshd did not accept connections within 10 s")
            time.sleep(0.05)
    import pwd

    user = pwd.getpwuid(os.getuid()).pw_name
    yield SshServer(port, root / "client_key", root / "bad_key", root, user)
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
