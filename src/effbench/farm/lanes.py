"""Progress of a farm sweep, one lane per device: a live display on a terminal, one line per
start and finish otherwise (CI logs)."""

from __future__ import annotations

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from effbench.console import err_console

STYLE = {"ok": "green", "lost": "magenta", "skipped": "yellow"}


class Lanes:
    def __init__(self, devices: list[str], counts: dict[str, int], show: bool | None = None):
        self.live = err_console.is_terminal if show is None else show
        self.counts = dict(counts)  # cells per device
        self.done = {d: 0 for d in devices}
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
            disable=not self.live,
        )
        self.overall = self.progress.add_task("farm", total=sum(counts.values()), status="")
        self.tasks = {d: self.progress.add_task(f"[{d}]", total=1.0, status="queued") for d in devices}
        self.progress.start()

    def _say(self, text: str) -> None:
        if not self.live:
            err_console.print(text, highlight=False, soft_wrap=True)

    def started(self, device: str, label: str, node: dict) -> None:
        where = f"{node.get('node_ip')} ({node.get('host')})"
        self.progress.update(
            self.tasks[device], description=f"[{device}] {label}", completed=0, status=f"started on {where}"
        )
        self._say(f"{escape(f'[{device}]')} start {escape(label)} on {escape(where)}")

    def update(self, device: str, fraction: float, status: str) -> None:
        self.progress.update(self.tasks[device], completed=fraction, status=status)

    def finished(self, device: str, label: str, status: str, note: str = "") -> None:
        self.done[device] += 1
        left = self.counts[device] - self.done[device]
        self.progress.update(
            self.tasks[device],
            description=f"[{device}]",
            completed=1.0,
            status=f"{self.done[device]} done, {left} left",
        )
        self.progress.advance(self.overall)
        style = STYLE.get(status, "red")
        self._say(
            f"{escape(f'[{device}]')} [{style}]{status}[/] {escape(label)}" + (f": {escape(note)}" if note else "")
        )

    def close(self) -> None:
        self.progress.stop()
