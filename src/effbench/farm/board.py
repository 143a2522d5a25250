"""A sweep's public state on the farm: a small named Ray actor per sweep.

The cells' tasks tell it when they start (on which node) and how far they are; the submitting side
reads it for its lanes and for naming the node of a lost cell; `bench farm status` reads every
board for the queued and running cells. The actor belongs to the submitting process and ends with it.
"""

from __future__ import annotations

import time
from typing import Any


class SweepBoard:
    def __init__(self, info: dict[str, Any], cells: dict[str, dict[str, Any]]):
        self.info = info
        self.cells = {key: {**cell, "state": "queued"} for key, cell in cells.items()}

    def started(self, key: str, node: dict[str, Any], at: float) -> None:
        cell = self.cells[key]
        if cell["state"] == "queued":  # a result that beat its own start message stays finished
            cell.update(state="running", node=node, started_unix=at)

    def progress(self, key: str, event: dict[str, Any]) -> None:
        cell = self.cells[key]
        if cell["state"] == "running":
            cell.update(
                phase=event.get("phase", ""),
                fraction=event.get("fraction", 0.0),
                detail=event.get("detail", ""),
                updated_unix=time.time(),
            )

    def finished(self, key: str, status: str) -> None:
        self.cells[key]["state"] = status

    def snapshot(self) -> dict[str, Any]:
        return {"info": self.info, "cells": self.cells}


def open_board(sweep_id: str, info: dict[str, Any], cells: dict[str, dict[str, Any]]) -> Any:
    """The board actor, kept on the submitting side's node (never a device's node, where its process
    would share the CPU being measured)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from effbench.farm.cluster import BOARD_PREFIX, NAMESPACE

    place: dict[str, Any]
    try:
        place = {
            "scheduling_strategy": NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=True)
        }
    except Exception:  # a Ray Client driver has no node of its own: the head holds the board
        place = {"resources": {"node:__internal_head__": 0.001}}
    actor = ray.remote(SweepBoard).options(
        name=BOARD_PREFIX + sweep_id, namespace=NAMESPACE, num_cpus=0, max_restarts=0, **place
    )
    return actor.remote(info, cells)
