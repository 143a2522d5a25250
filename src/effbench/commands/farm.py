"""`bench farm`: start the head, join a node with its devices, see the farm, stop this host's nodes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, Iterable, List, Optional

import typer
from typing_extensions import Annotated

from effbench.commands.options import format_option
from effbench.console import console, one_line_errors
from effbench.errors import UsageError

if TYPE_CHECKING:
    from effbench.farm.cluster import FarmView
    from effbench.farm.node import NodePlan, NodeRecord

app = typer.Typer(
    name="farm",
    no_args_is_help=True,
    help="A device farm on Ray: devices as resources, one measurement per device at a time.",
)

DEVICE_HELP = "A device this host owns or reaches over ssh, named as in its devices.yaml (repeatable)."
CPUS_HELP = "CPUs Ray may use on this host: keep it small, Ray's own work must not load the CPU being measured."


def _plan(
    node_ip: str,
    devices: list[str],
    num_cpus: int,
    devices_file: str | None,
    temp_dir: str | None,
    object_store_mb: int | None,
    checks: Iterable[Callable[[], None]] = (),
    **kw: Any,
) -> NodePlan:
    """The node's plan once its input is checked, then `checks` (its addresses): all before Ray starts,
    so that a mistake costs seconds and leaves no process behind."""
    from effbench.farm.node import NodePlan, check_devices

    if num_cpus < 0:
        raise UsageError("--num-cpus must be 0 or more")
    check_devices(devices, devices_file)
    for check in checks:
        check()
    return NodePlan(
        node_ip=node_ip,
        devices=devices,
        num_cpus=num_cpus,
        devices_file=devices_file,
        temp_dir=temp_dir,
        object_store_mb=object_store_mb,
        **kw,
    )


def _run(plan: NodePlan, background: bool) -> int:
    from effbench.farm.node import start_node, stop_requests

    if background:
        return _started(start_node(plan), plan, background)
    with stop_requests() as stop:
        return _started(start_node(plan), plan, background, stop)


def _started(rec: NodeRecord, plan: NodePlan, background: bool, stop: dict[str, bool] | None = None) -> int:
    from effbench.farm.node import wait_node

    what = (
        f"head {plan.node_ip}:{plan.head_port}" if plan.head_port else f"node {plan.node_ip} (head {plan.head_address})"
    )
    devices = ", ".join(plan.devices) or "none"
    console.print(f"farm {what} is up: devices {devices}; pid {rec.pid}, log {rec.log}", highlight=False)
    if background:
        console.print("stop it with: bench farm stop", highlight=False)
        return 0
    console.print("in the foreground: Ctrl-C (or SIGTERM) stops it", highlight=False)
    assert stop is not None
    return wait_node(rec, stop)


@app.command("start")
@one_line_errors
def start_command(
    address: str = typer.Argument(
        ..., help="IP[:PORT] of this host that every node and port binds to (port 6379 by default)."
    ),
    device: Optional[List[str]] = typer.Option(None, "--device", "-d", help=DEVICE_HELP),
    num_cpus: int = typer.Option(1, "--num-cpus", help=CPUS_HELP),
    devices_file: Optional[str] = typer.Option(None, "--devices-file", help="This host's devices.yaml."),
    dashboard: bool = typer.Option(
        False, "--dashboard/--no-dashboard", help="Ray's dashboard, bound to ADDRESS (off by default)."
    ),
    temp_dir: Optional[str] = typer.Option(None, "--temp-dir", help="Ray's folder for sessions, sockets and logs."),
    object_store_mb: Optional[int] = typer.Option(None, "--object-store-mb", help="Ray's object store size (MB)."),
    background: bool = typer.Option(False, "--background", help="Return once the node is up."),
) -> int:
    """Start the farm's head node here (it may own devices too)."""
    from effbench.farm.node import check_own_address, check_port_free, parse_address

    ip, port = parse_address(address, "head address")
    return _run(
        _plan(
            ip,
            list(device or []),
            num_cpus,
            devices_file,
            temp_dir,
            object_store_mb,
            head_port=port,
            dashboard=dashboard,
            checks=(lambda: check_own_address(ip, "head address"), lambda: check_port_free(ip, port)),
        ),
        background,
    )


@app.command("join")
@one_line_errors
def join_command(
    head: str = typer.Argument(..., help="HOST:PORT of the farm's head node."),
    device: Optional[List[str]] = typer.Option(None, "--device", "-d", help=DEVICE_HELP),
    node_ip: Optional[str] = typer.Option(
        None, "--node-ip", help="This host's address on the farm network (default: the one that routes to the head)."
    ),
    num_cpus: int = typer.Option(1, "--num-cpus", help=CPUS_HELP),
    devices_file: Optional[str] = typer.Option(None, "--devices-file", help="This host's devices.yaml."),
    temp_dir: Optional[str] = typer.Option(None, "--temp-dir", help="Ray's folder for sessions, sockets and logs."),
    object_store_mb: Optional[int] = typer.Option(None, "--object-store-mb", help="Ray's object store size (MB)."),
    background: bool = typer.Option(False, "--background", help="Return once the node is up."),
) -> int:
    """Join the farm with the devices this host owns (or reaches over ssh as a proxy)."""
    from effbench.farm.node import check_head_answers, check_own_address, parse_address, parse_ip, route_address

    head_ip, head_port = parse_address(head, "head address")
    ip = parse_ip(node_ip, "--node-ip") if node_ip else route_address(head_ip, head_port)
    if not device:
        raise UsageError("no --device given: a farm node advertises the devices it owns, e.g. --device raspberry-pi-5")
    return _run(
        _plan(
            ip,
            list(device),
            num_cpus,
            devices_file,
            temp_dir,
            object_store_mb,
            head_address=f"{head_ip}:{head_port}",
            checks=(lambda: check_own_address(ip, "--node-ip"), lambda: check_head_answers(head_ip, head_port)),
        ),
        background,
    )


@app.command("stop")
@one_line_errors
def stop_command() -> int:
    """Stop the farm nodes this host started (with `bench farm start/join`)."""
    from effbench.farm.node import started_nodes, stop_nodes

    nodes = started_nodes()
    if not nodes:
        console.print("no farm node started from this host is running")
        return 0
    stop_nodes(nodes)
    for rec in nodes:
        console.print(f"stopped {rec.name} (pid {rec.pid})", highlight=False)
    return 0


@app.command("status")
@one_line_errors
def status_command(
    farm: Optional[str] = typer.Option(
        None, "--farm", envvar="RAY_ADDRESS", help="HOST:PORT of the head (or ray://HOST:10001)."
    ),
    fmt: Annotated[str, format_option("table", "json")] = "table",
) -> int:
    """The farm's nodes and devices: which are busy, with what, and how many cells wait for each."""
    from effbench.farm import cluster

    address = cluster.farm_address(farm)
    cluster.connect(address)
    try:
        view = cluster.farm_view(address)
    finally:
        cluster.disconnect()
    if fmt == "json":
        print(json.dumps(view.to_dict(), indent=1, default=str))
        return 0
    _print_view(view)
    return 0


def _print_view(view: FarmView) -> None:
    from rich.table import Table

    nodes = Table(title=f"farm {view.address}: {len(view.nodes)} node(s)")
    for col in ("node", "address", "host", "CPUs", "devices"):
        nodes.add_column(col)
    for n in view.nodes:
        nodes.add_row(n["node_id"][:12], n["address"], str(n["host"]), f"{n['cpus']:g}", ", ".join(n["devices"]) or "-")
    console.print(nodes)
    devices = Table(title="devices")
    for col in ("device", "node", "state", "measuring", "queued"):
        devices.add_column(col)
    for d in view.devices:
        state = (
            "[red]claimed by 2+ nodes[/]" if d.capacity != 1 else ("[yellow]busy[/]" if d.busy else "[green]free[/]")
        )
        running = "-"
        if d.running:
            phase = f", {d.running['phase']}" if d.running.get("phase") else ""
            running = f"{d.running['label']} (sweep {d.running['sweep']}{phase})"
        devices.add_row(d.device, f"{d.node_ip} ({d.host})", state, running, str(d.queued))
    console.print(devices if view.devices else "no device is advertised: `bench farm join HEAD --device NAME`")
