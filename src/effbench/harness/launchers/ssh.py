"""Cells measured on an ssh device: the device gets the measurement core and the artifact (each
by content hash, sent only when missing), its agent measures with the very settings a local worker
would get, and the answer is assembled here like any other."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from effbench.core.protocol import npy_bytes
from effbench.harness import failures
from effbench.harness.launchers import Event
from effbench.harness.launchers.local import outcome_to_result
from effbench.harness.prepare import PreparedCell
from effbench.harness.result import Result


class Ssh:
    def __init__(self, target):
        from effbench.devices.remote import RemoteTarget

        self.spec = target
        self.remote = RemoteTarget.from_spec(target)

    def run(self, cell: PreparedCell, on_event: Event) -> Result:
        answer, outcome, wall, remote = self.measure(cell.payload(), cell.cfg.timeout_s, on_event)
        result = outcome_to_result(cell, answer, outcome, wall, remote)
        if remote and remote.get("ssh_retries"):
            result = result.with_changes(
                warnings=(*result.warnings, f"connection to {self.remote.name} dropped during the run; retried once")
            )
        return result

    def measure(
        self, payload: dict[str, Any], timeout: float, on_event: Event
    ) -> tuple[dict | None, dict | None, float, dict | None]:
        """A PreparedCell payload measured by the device's agent: (answer, outcome of a failure, wall
        time, how the device was reached)."""
        from effbench.devices.remote import RemoteError, RemoteSession

        def event(phase: str, frac: float, detail: str) -> None:
            on_event({"event": "progress", "phase": phase, "fraction": frac, "detail": detail})

        rt = self.remote
        t0 = time.perf_counter()
        deadline = time.monotonic() + timeout
        artifact = payload["artifact"]
        try:
            session = RemoteSession(rt, deadline)
            event("copy", 0.0, f"checking the artifact on {rt.name}")
            artifact_file = Path(artifact["path"] or "")
            copy = session.ensure_artifact(artifact_file.parent, artifact["key"], payload["settings"]["runtime"])
            event("copy", 1.0, "copied" if copy["artifact_copied"] else "already on the device")
            remote_path = f"{session.remote_dir(artifact['key'])}/{artifact_file.name}"
            request = {"artifact": remote_path, "settings": payload["settings"], "input_name": payload["input_name"]}
            stdin = json.dumps(request).encode() + b"\n" + npy_bytes(np.load(payload["inputs_path"]))
            left = deadline - time.monotonic()
            event("run", 0.0, f"agent on {rt.name}")
            answer, retries = session.run_agent(
                ["--run", "--deadline", f"{max(left - 5, 5.0):.0f}"], stdin, left, on_event
            )
        except RemoteError as e:
            outcome = failures.classify(e)
            if e.kind == "timeout":
                outcome["error"] += f" (cell --timeout {timeout:g} s, copy included)"
            return None, outcome, time.perf_counter() - t0, None
        except Exception as e:
            return None, failures.classify(e), time.perf_counter() - t0, None
        remote = {
            "remote": True,
            "transport": "ssh",
            "device": rt.name,
            "host": rt.host,
            "port": rt.port,
            "python": rt.python,
            "workdir": rt.workdir,
            "runtime_version": answer.get("runtime_version"),
            "agent_protocol": answer.get("protocol"),
            "ssh_retries": retries,
            **copy,
        }
        measured = {
            "event": "result",
            "measured": {k: v for k, v in answer.items() if k not in ("event", "protocol", "runtime_version")},
        }
        return measured, None, time.perf_counter() - t0, remote

    def close(self) -> None:
        pass
