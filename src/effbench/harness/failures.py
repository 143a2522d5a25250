"""The one place where a cell that produced no numbers is classified and recorded.

Statuses: `skipped` (bad input, or a runtime this device lacks: exit code 2 territory), `failed`
(the export, load or inference failed), `crashed` (the measuring process died), `timeout`, and
`lost` (the node measuring it went away). Every record carries canonical names (backend name,
model id) whatever the user typed.
"""

from __future__ import annotations

import signal
import traceback
from typing import Any

from effbench.core.session import CoreError
from effbench.errors import EffbenchError
from effbench.harness.result import Result

# CoreError kinds (effbench.core.session.CoreError.KINDS) that mean "cannot run here" rather than "broke"
_SKIP_KINDS = {"missing_runtime", "unsupported", "bad_option", "bad_input"}


def classify(exc: BaseException) -> dict[str, Any]:
    """{"status", "error", "extra"} for an exception raised while preparing or measuring a cell."""
    if isinstance(exc, CoreError):
        status = "timeout" if exc.kind == "timeout" else "skipped" if exc.kind in _SKIP_KINDS else "failed"
        return {"status": status, "error": " ".join(exc.message.split()), "extra": {"kind": exc.kind, **exc.extra}}
    if isinstance(exc, EffbenchError):
        status = getattr(exc, "status", None) or ("skipped" if exc.exit_code == 2 else "failed")
        extra = dict(getattr(exc, "details", None) or {})
        kind = getattr(exc, "kind", None)
        if kind:
            extra["kind"] = kind
        return {"status": status, "error": " ".join(str(exc).split()), "extra": extra}
    text = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
    return {"status": "failed", "error": text, "extra": {"traceback": traceback.format_exc(limit=-3)}}


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def crashed(code: int, stderr_tail: str, who: str = "worker") -> dict[str, Any]:
    last = stderr_tail.splitlines()[-1] if stderr_tail else ""
    return {
        "status": "crashed",
        "error": f"{who} {describe_exit(code)}" + (f": {last}" if last else ""),
        "extra": {"exit_code": code, "stderr_tail": stderr_tail},
    }


def timed_out(seconds: float, stderr_tail: str = "", who: str = "worker") -> dict[str, Any]:
    return {
        "status": "timeout",
        "error": f"{who} still running after {seconds:.0f} s (killed; --timeout sets the limit)",
        "extra": {"stderr_tail": stderr_tail},
    }


def lost(node: str, reason: str) -> dict[str, Any]:
    return {
        "status": "lost",
        "error": f"node {node} went away during the cell: {reason}",
        "extra": {"node": node, "reason": reason},
    }


def canonical_names(config: dict[str, Any]) -> tuple[str, str]:
    """(model id, backend name) as ok records of the same configuration would have them."""
    from effbench.backends.registry import canonical_name
    from effbench.models.registry import resolve

    model, backend = str(config.get("model", "?")), str(config.get("backend", "?"))
    try:
        backend = canonical_name(backend)
    except EffbenchError:
        pass
    try:
        model = resolve(model, config.get("input_size")).id
    except EffbenchError:
        pass
    except Exception:  # a name that cannot even be resolved keeps the user's spelling
        pass
    return model, backend


def failed_result(
    config: dict[str, Any],
    outcome: dict[str, Any],
    *,
    model: str | None = None,
    backend: str | None = None,
    config_hash: str | None = None,
    **kw: Any,
) -> Result:
    """The record of a cell that did not produce numbers."""
    if model is None or backend is None:
        m, b = canonical_names(config)
        model, backend = model or m, backend or b
    return Result(
        model=model,
        backend=backend,
        device=config.get("device", "cpu"),
        scenario=config.get("scenario", "latency"),
        batch_size=config.get("batch_size", 1),
        precision=config.get("precision", "fp32"),
        status=outcome["status"],
        error=outcome["error"],
        tag=config.get("tag"),
        threads=config.get("threads"),
        cpus=config.get("cpus") if isinstance(config.get("cpus"), list) else None,
        config=config,
        config_hash=config_hash,
        extra=dict(outcome.get("extra") or {}),
        **kw,
    )
