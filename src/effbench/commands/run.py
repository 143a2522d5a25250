"""`bench run`: one model on one backend, one cell per batch size and input size.

Its options are generated from RunConfig's fields (each declares its Flag once, harness/flags.py);
the options that are not run settings (--opt, --db, --out, --tag, --isolate, --store, --dynamic)
are declared here or in commands/options.py. `run_options` gives another command (bench profile)
the run settings it takes, declared as here.
"""

from __future__ import annotations

import functools
import inspect
import shlex
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Optional, get_args, get_origin

import typer
from typing_extensions import Annotated

from effbench.commands.launch import early_fork_server, local_workers, say_once
from effbench.commands.options import DbOption, IsolateOption, OptOption, OutOption, StoreOption, TagOption
from effbench.console import console, error_line, result_table
from effbench.errors import UsageError
from effbench.harness.config import RunConfig
from effbench.harness.flags import Flag
from effbench.harness.run_options import cells_from_flags, flags_of, parse_opts
from effbench.harness.sink import ResultSink, check_out_writable

if TYPE_CHECKING:
    from effbench.harness.result import Result


def cell_options(
    opt: OptOption = None,
    db: DbOption = None,
    out: OutOption = None,
    tag: TagOption = None,
    isolate: IsolateOption = True,
    store_results: StoreOption = True,
) -> None:
    """The options every command that runs cells takes besides its run settings (the signature is
    all that is used)."""


def _not_run_settings(
    dynamic: Annotated[
        bool,
        typer.Option(
            "--dynamic",
            help="Also export one graph with dynamic batch/height/width and measure it at each listed shape "
            "(first run after a shape switch, steady latency) against the static cells (onnxruntime).",
        ),
    ] = False,
) -> None:
    """`bench run`'s own option beyond the run settings and cell_options (the signature is all that is used)."""


def _cli_type(annotation: Any) -> Any:
    """The type click reads a field's value as: its own for a number, a string or a switch, else text
    that RunConfig validates (a Literal's choices are named in the help)."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    if get_origin(annotation) not in (None, Literal) and len(args) == 1:  # X | None
        annotation = args[0]
    return annotation if annotation in (bool, int, float, str) else str


def _option(name: str, flag: Flag, info: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    required = info.is_required()
    if default is inspect.Parameter.empty:
        default = ... if required else info.get_default(call_default_factory=True)
    kind = str if flag.parse is not None else _cli_type(info.annotation)
    if flag.parse is not None and default is not None and default is not ...:
        default = str(default)  # the parser reads the default as it reads the command line
    annotation = kind if required or default is not None else Optional[kind]
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(default, *flag.names, help=flag.help),
        annotation=annotation,
    )


def run_options(
    names: Iterable[str], config: type[RunConfig] = RunConfig, defaults: dict[str, Any] | None = None
) -> list[inspect.Parameter]:
    """The options of these RunConfig fields exactly as `bench run` declares them (flag, type, help; a
    bad value is then named by `cells_from_flags` with the field's example), for another command;
    `defaults` gives a field another default there."""
    flags, defaults = flags_of(config), defaults or {}
    return [
        _option(name, flags[name], config.model_fields[name], defaults.get(name, inspect.Parameter.empty))
        for name in names
    ]


def options_of(signature_only: Callable[..., None]) -> list[inspect.Parameter]:
    """The options a signature-only function declares, as keyword-only parameters."""
    params = inspect.signature(signature_only, eval_str=True).parameters.values()
    return [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]


def with_options(command: Callable[..., Any], parameters: list[inspect.Parameter]) -> None:
    """Give a `**params` command these options: what typer reads is the signature and annotations."""
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}


def cells_of(params: dict[str, Any], config: type[RunConfig] = RunConfig) -> list[RunConfig]:
    """The cells of a `bench run` command line (click's parameters, by name)."""
    values = {name: params[name] for name in flags_of(config)}
    return cells_from_flags(values, config, options=parse_opts(params["opt"]), tag=params["tag"])


def build_run_command(config: type[RunConfig] = RunConfig) -> Callable[..., None]:
    """`bench run` for this RunConfig (a subclass with more fields gets their options too)."""

    def run(**params: Any) -> None:
        """Export, run and measure one model on one backend (one cell per batch size and input size)."""
        launchers: dict = {}
        server = early_fork_server(params["isolate"])
        try:
            _run(cells_of(params, config), params, launchers, server)
        finally:
            for launcher in launchers.values():
                launcher.close()
            if server is not None:
                server.close()

    with_options(
        run, [*run_options(flags_of(config), config), *options_of(cell_options), *options_of(_not_run_settings)]
    )
    return run


run_command = build_run_command()


def _run(cells: list[RunConfig], params: dict[str, Any], launchers: dict, server: Any) -> None:
    from effbench.harness.prepare import check_cell
    from effbench.harness.scheduler import prepare_cells, run_cells
    from effbench.harness.store import Store

    isolate, out = params["isolate"], params["out"]
    check_out_writable(out)
    launchers.update(local_workers(isolate, [params["backend"]], server))  # its start-up overlaps the checks
    checked = [check_cell(cell) for cell in cells]  # unknown model / backend / option / precision: before any work
    if params["dynamic"]:
        from effbench.harness.dynamic_shapes import check as check_dynamic

        for c in checked:
            check_dynamic(c)
    store = Store(params["db"]) if params["store_results"] else None
    # built in a process of its own: a factory that returns no module or a weights file that does not
    # fit is exit 2 before measuring; one that fails or crashes is the cell's record (the run goes on)
    prepared = prepare_cells(cells, checked=checked, isolate=isolate)
    sink = ResultSink(out, store, "bench run")
    on_result: Callable[[Result], None] = sink
    if params["dynamic"]:
        from effbench.harness.dynamic_shapes import with_dynamic

        on_result = with_dynamic(sink, prepared, cells[0].duration_s)
    try:
        results = run_cells(cells, isolate=isolate, on_result=on_result, launchers=launchers, prepared=prepared)
    except KeyboardInterrupt:
        sink.summary()  # a result spooled on the way out is named with its import command
        raise
    records = [r.to_dict() for r in results]
    console.print(result_table(records, title="bench run"))
    say_once(records)
    for r in records:
        if r["status"] != "ok":
            error_line(f"{r['model']} on {r['backend']} (batch {r['batch_size']}): {r['status']}: {r['error']}")
    code = sink.summary()
    if (
        code
        or any(r["status"] != "ok" for r in records)
        or any((r.get("parity") or {}).get("ok") is False for r in records)
    ):
        raise typer.Exit(1)


@functools.cache
def _run_parser() -> Any:
    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    app.command("run")(run_command)
    return typer.main.get_command(app)


def parse_run_args(text: str) -> list[RunConfig]:
    """Cells from a `bench run` option string, e.g. "--model a.onnx --backend ort --batch 1"."""
    try:
        ctx = _run_parser().make_context("run", shlex.split(text))
    except Exception as e:
        msg = e.format_message() if hasattr(e, "format_message") else str(e)
        raise UsageError(f"bad run options {text!r}: {msg}") from None
    return cells_of(ctx.params)
