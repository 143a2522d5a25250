"""Connecting to the farm, and what it holds now: nodes, their devices, which are busy, queued cells."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import asdict, dataclass, field
from typing import Any

from effbench.errors import UsageError
from effbench.farm.node import parse_address, ray_auth_env
from effbench.farm.resources import device_of, resource_name

NAMESPACE = "effbench"
BOARD_PREFIX = "effbench-sweep-"
CONNECT_TIMEOUT_S = 5.0


def farm_address(address: str | None) -> str:
    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        raise UsageError("no farm given: pass --farm HOST:PORT (or ray://HOST:10001), or set RAY_ADDRESS")
    return address


def connect(address: str) -> None:
    """Attach to the farm as a driver: HOST:PORT from a farm node, ray://HOST:PORT (Ray Client) from
    anywhere else. A farm that does not answer is a one-line error, not a minute of retries."""
    import ray

    target = address[len("ray://") :] if address.startswith("ray://") else address
    ip, port = parse_address(target)
    try:
        with socket.create_connection((ip, port), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as e:
        raise UsageError(
            f"cannot reach the farm at {address}: {e.strerror or e} "
            "(is `bench farm start` running there? check --farm / RAY_ADDRESS)"
        ) from None
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.update(ray_auth_env())
    if ray.is_initialized():
        return
    try:
        ray.init(
            address=address if address.startswith("ray://") else f"{ip}:{port}",
            namespace=NAMESPACE,
            logging_level=logging.WARNING,
            log_to_driver=False,
            configure_logging=True,
        )
    except (ConnectionError, RuntimeError, ValueError) as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        # Ray Client sends the server's whole traceback: its last line says what went wrong
        why = (f"{lines[0]} {lines[-1]}" if len(lines) > 1 else lines[0]) if lines else type(e).__name__
        hint = (
            "see ray_client_server*.err in the head's Ray logs"
            if address.startswith("ray://")
            else f"from a host that is not a farm node, use --farm ray://{ip}:10001"
        )
        raise UsageError(f"cannot join the farm at {address}: {why} ({hint})") from None


def disconnect() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


@dataclass
class DeviceState:
    device: str
    node_ip: str
    node_id: str
    host: str
    capacity: float
    busy: bool
    running: dict[str, Any] | None = None  # the cell measuring now (from its sweep's board)
    queued: int = 0


@dataclass
class FarmView:
    address: str
    nodes: list[dict[str, Any]]
    devices: list[DeviceState]
    sweeps: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def alive_nodes() -> list[dict[str, Any]]:
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def advertised_devices() -> dict[str, float]:
    """Device -> total capacity over the nodes alive now (more than 1 means two nodes claim it)."""
    import ray

    return {d: v for r, v in ray.cluster_resources().items() if (d := device_of(r))}


def boards() -> list[dict[str, Any]]:
    """The snapshots of the sweeps running on the farm now."""
    import ray

    out: list[Any] = []
    for entry in ray.util.list_named_actors(all_namespaces=True):
        name, ns = (entry["name"], entry["namespace"]) if isinstance(entry, dict) else (entry, NAMESPACE)
        if ns != NAMESPACE or not name.startswith(BOARD_PREFIX):
            continue
        try:
            out.append(ray.get(ray.get_actor(name, namespace=ns).snapshot.remote(), timeout=5))
        except Exception:  # a sweep that ended while we asked
            continue
    return out


def farm_view(address: str) -> FarmView:
    import ray

    available = ray.available_resources()
    sweeps = boards()
    running: dict[str, dict] = {}
    queued: dict[str, int] = {}
    for board in sweeps:
        for cell in board["cells"].values():
            if cell["state"] == "running":
                running[cell["device"]] = {**cell, "sweep": board["info"].get("sweep_id")}
            elif cell["state"] == "queued":
                queued[cell["device"]] = queued.get(cell["device"], 0) + 1
    nodes, devices = [], []
    for n in alive_nodes():
        res = n.get("Resources") or {}
        mine = sorted(d for r in res if (d := device_of(r)))
        nodes.append(
            {
                "node_id": n["NodeID"],
                "address": n["NodeManagerAddress"],
                "host": n.get("NodeManagerHostname"),
                "cpus": res.get("CPU", 0),
                "devices": mine,
            }
        )
        for d in mine:
            free = available.get(resource_name(d), 0.0)
            devices.append(
                DeviceState(
                    d,
                    n["NodeManagerAddress"],
                    n["NodeID"],
                    n.get("NodeManagerHostname", ""),
                    res[resource_name(d)],
                    busy=free < res[resource_name(d)],
                    running=running.get(d),
                    queued=queued.get(d, 0),
                )
            )
    return FarmView(address, nodes, sorted(devices, key=lambda s: s.device), sweeps)
