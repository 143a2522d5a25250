"""`bench`: the command line. Every command has --help; bad input is one line and exit code 2.

Every command lives in a module of its own (effbench.commands.*, or its package's) that is loaded
when the command is used (`LAZY`), so `bench --help` imports none of them.
"""

from __future__ import annotations

import importlib
import signal
import sys
import threading
from typing import Any

import typer
from typer.core import TyperGroup

from effbench.console import error_line
from effbench.errors import EffbenchError, UsageError

# name -> (module, attribute, "typer" app or "command" function, short help for `bench --help`)
LAZY = {
    "run": (
        "effbench.commands.run",
        "run_command",
        "command",
        "Export, run and measure one model on one backend (one cell per batch size and input size).",
    ),
    "sweep": (
        "effbench.commands.sweep",
        "sweep_command",
        "command",
        "Run a matrix of cells from a YAML file: prepared first, measured back to back, resumable.",
    ),
    "models": (
        "effbench.commands.models",
        "models_command",
        "command",
        "List the model cards (reported top-1, params and MACs with their sources).",
    ),
    "backends": (
        "effbench.commands.backends",
        "backends_command",
        "command",
        "List every backend with its version and whether it is usable here (and if not, why).",
    ),
    "results": ("effbench.commands.results", "app", "typer", "Stored results: list them, import spooled ones."),
    "profile": (
        "effbench.commands.profile",
        "profile_command",
        "command",
        "Per-layer runtime times mapped through fused kernels to ONNX nodes.",
    ),
    "report": (
        "effbench.commands.report",
        "report_command",
        "command",
        "HTML dashboard, Markdown summary or CSV of stored results.",
    ),
    "site": ("effbench.commands.site", "app", "typer", "A static results site: history, change points, feed."),
    "gate": ("effbench.commands.gate", "gate_command", "command", "CI regression verdicts: current vs a baseline."),
    "baseline": ("effbench.commands.gate", "baseline_app", "typer", "Save and list regression-gate baselines."),
    "ab": ("effbench.commands.ab", "ab_command", "command", "A/B runs, interleaved, with the gate's verdicts."),
    "max-qps": (
        "effbench.commands.max_qps",
        "max_qps_command",
        "command",
        "The highest LoadGen Server QPS whose p99 meets a bound (bracketing search).",
    ),
    "devices": (
        "effbench.commands.devices",
        "app",
        "typer",
        "Device catalog (list, detect, calibrate, check), settings (show, tune, reset), stability.",
    ),
    "claims": ("effbench.commands.claims", "claims_app", "typer", "Re-measure published speed claims side by side."),
    "farm": ("effbench.commands.farm", "app", "typer", "A device farm on Ray: join, status."),
    "predictor": ("effbench.commands.predict", "app", "typer", "Build, validate and share latency predictors."),
    "predict": (
        "effbench.commands.predict",
        "predict_command",
        "command",
        "Predict a model's latency from a predictor.",
    ),
}


class LazyGroup(TyperGroup):
    """Loads a LAZY command's module only when the command runs (help lists it from LAZY)."""

    def list_commands(self, ctx):
        return [*super().list_commands(ctx), *(n for n in LAZY if n not in self.commands)]

    def get_command(self, ctx, name):
        if name in self.commands or name not in LAZY:
            return super().get_command(ctx, name)
        return typer.core.TyperCommand(name, help=LAZY[name][3], short_help=LAZY[name][3])

    def resolve_command(self, ctx, args):
        if args and args[0] in LAZY and args[0] not in self.commands:
            _load(args[0])
        return super().resolve_command(ctx, args)


def _load(name: str) -> None:
    module, attr, kind, _ = LAZY[name]
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise UsageError(f"`bench {name}` is not available in this installation ({e})") from None
    group = _click_group()
    if kind == "typer":
        group.add_command(typer.main.get_command(obj), name)
    else:
        sub = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
        sub.command(name)(obj)
        group.add_command(typer.main.get_command(sub), name)


app = typer.Typer(
    name="bench",
    cls=LazyGroup,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def bench() -> None:
    """effbench: measure latency, throughput, memory and energy of neural networks, and explain them."""


_GROUP: list[Any] = []


def _click_group():
    if not _GROUP:
        _GROUP.append(typer.main.get_command(app))
    return _GROUP[0]


def _click_classes(name: str) -> tuple[type[BaseException], ...]:
    """Typer vendors its own click (typer._click) in newer releases; accept either."""
    found: list[type[BaseException]] = []
    for module in ("typer._click.exceptions", "typer.exceptions", "click.exceptions"):
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError:
            continue
        if cls is not None:
            found.append(cls)
    return tuple(found)


_TERMINATED: list[int] = []


def _on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM (kill, timeout, CI runners, systemd) stops `bench` the way Ctrl-C does: a
    KeyboardInterrupt in the main thread, so workers are stopped, context managers close and a result
    being written is stored first. Once: a second SIGTERM does not interrupt the stop itself."""
    if not _TERMINATED:
        _TERMINATED.append(signum)
        raise KeyboardInterrupt


def _stopped() -> int:
    """The line and the exit code of a stopped command: 143 (128 + SIGTERM) or 130 (Ctrl-C)."""
    if _TERMINATED:
        error_line("terminated (SIGTERM)")
        return 128 + signal.SIGTERM
    error_line("interrupted")
    return 130


def main(argv: list[str] | None = None) -> int:
    _TERMINATED.clear()
    previous = None
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) != signal.SIG_IGN:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return _main(argv)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(argv: list[str] | None) -> int:
    try:
        rc = _click_group().main(args=argv, prog_name="bench", standalone_mode=False)
    except EffbenchError as e:
        error_line(str(e))
        return e.exit_code
    except _click_classes("NoArgsIsHelpError"):
        return 0
    except _click_classes("UsageError") as e:
        ctx = getattr(e, "ctx", None)
        cmd = ctx.command_path if ctx else "bench"
        error_line(f"{getattr(e, 'format_message', e.__str__)()} (see `{cmd} --help`)")
        return 2
    except _click_classes("Exit") as e:
        rc = getattr(e, "exit_code", 0)
    except _click_classes("Abort"):
        return _stopped()
    except KeyboardInterrupt:
        return _stopped()
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug, not bad input: still one line (EFFBENCH_DEBUG=1 shows the traceback)
        import os

        if os.environ.get("EFFBENCH_DEBUG") == "1":
            raise
        error_line(
            f"internal error: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''} "
            "(set EFFBENCH_DEBUG=1 for the traceback, and please report it)"
        )
        return 1
    if rc == 130:  # typer turns Ctrl-C into exit code 130 by itself, silently; a stopped sweep exits 130
        return _stopped()
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
