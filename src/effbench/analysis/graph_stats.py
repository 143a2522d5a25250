"""The numbers a graph analysis produces (per node, per fused group, per graph): plain data with no
onnx import, so a cached analysis loads without the ONNX library."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class NodeStats:
    name: str
    op_type: str
    inputs: list[str]
    outputs: list[str]
    macs: int
    other_flops: int
    flops: int
    params: int
    param_bytes: int
    bytes_read: int
    bytes_written: int
    intensity: float


@dataclass
class GroupStats:
    """A fused runtime kernel covering several ONNX nodes."""

    nodes: list[str]
    macs: int
    flops: int
    params: int
    bytes_read: int
    bytes_written: int
    intensity: float


@dataclass
class GraphAnalysis:
    nodes: list[NodeStats]
    macs: int
    flops: int
    other_flops: int
    params: int
    peak_activation_bytes: int
    precision: str
    input_shapes: dict[str, list[int]]
    # op_type -> number of nodes of op types with no counting rule (counted as 0 FLOPs).
    uncounted: dict[str, int] = field(default_factory=dict)
    # Nodes computed from constants only (weights, static shapes): folded away like a runtime would.
    folded_nodes: list[str] = field(default_factory=list)
    # Bytes of every activation tensor and of every weight tensor, for aggregate().
    tensor_bytes: dict[str, int] = field(default_factory=dict, repr=False)
    weight_bytes: dict[str, int] = field(default_factory=dict, repr=False)
    weight_elements: dict[str, int] = field(default_factory=dict, repr=False)
    output_names: list[str] = field(default_factory=list, repr=False)

    def node(self, name: str) -> NodeStats:
        for stats in self.nodes:
            if stats.name == name:
                return stats
        raise KeyError(f"no node named {name!r} in the analysed graph")

    def by_op_type(self) -> dict[str, dict]:
        """op_type -> summed statistics, largest FLOPs first."""
        keys = ("macs", "flops", "other_flops", "params", "bytes_read", "bytes_written")
        table: dict[str, dict] = {}
        for stats in self.nodes:
            row = table.setdefault(stats.op_type, {"count": 0, **dict.fromkeys(keys, 0)})
            row["count"] += 1
            for key in keys:
                row[key] += getattr(stats, key)
        return dict(sorted(table.items(), key=lambda item: -item[1]["flops"]))

    def to_json(self) -> dict:
        """Everything, for the analysis cache (`from_json` restores it)."""
        d = asdict(self)
        d["nodes"] = [asdict(n) for n in self.nodes]
        return d

    @classmethod
    def from_json(cls, data: dict) -> GraphAnalysis:
        d = dict(data)
        d["nodes"] = [NodeStats(**n) for n in d["nodes"]]
        return cls(**d)

    def to_dict(self) -> dict:
        return {
            "precision": self.precision,
            "input_shapes": self.input_shapes,
            "macs": self.macs,
            "flops": self.flops,
            "other_flops": self.other_flops,
            "params": self.params,
            "peak_activation_bytes": self.peak_activation_bytes,
            "uncounted": self.uncounted,
            "folded_nodes": len(self.folded_nodes),
            "nodes": [asdict(stats) for stats in self.nodes],
        }
