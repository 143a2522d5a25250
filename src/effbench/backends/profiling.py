"""Mapping a runtime's per-layer profile back to the ONNX graph: the structures every backend's
mapping hook fills, and the generic steps (claims, names, structural placement).

A runtime rarely executes the ONNX graph node by node: it fuses Conv + BatchNorm + Relu into one
kernel, folds shape arithmetic away, inserts layout reorders. Each kernel is mapped back to the
group of ONNX nodes it covers. Kernels that cover no ONNX node (layout reorders, memory copies,
inputs/outputs) are unmapped time with a reason, never hidden. A node claimed by two kernels goes
to the first one executed, with a warning. Nodes no kernel claims are placed structurally
(`complete`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

# --------------------------------------------------------------------------- kernel kinds
# Kernels that move data between layouts or memories: they carry tensors, they compute nothing.
LAYOUT_KERNELS = {"ReorderInput", "ReorderOutput", "Reorder", "MemcpyToHost", "MemcpyFromHost", "Memcpy"}
IO_KERNELS = {"Parameter", "Result", "Input", "Output", "Const", "Constant"}

UNMAPPED_REASONS = {
    "layout": "layout reorder (inserted by the runtime, no ONNX node)",
    "copy": "memory copy between devices",
    "io": "graph input/output",
    "not-in-graph": "not found in the runtime's graph",
    "no-names": "the runtime kept no original names and no graph position placed it",
    "no-nodes": "covers no ONNX node",
    "torch-op": "runtime op with no ONNX counterpart (allocation, copy, dispatch)",
    "decomposed": "a part of a decomposed op (a matmul's expand) with no ONNX node of its own",
    "delegate-call": "a delegate call's own time outside its kernels (dispatch, input/output copies)",
}


# --------------------------------------------------------------------------- the mapping
@dataclass
class Kernel:
    """One executed runtime kernel/layer and the ONNX nodes it covers."""

    name: str
    kernel_type: str
    ms: float
    nodes: list[str] = field(default_factory=list)  # ONNX node names, claim order
    how: str = ""  # "runtime" | "name" | "identical" | "walk" | "structure" | "fused-upstream" | ...
    reason: str | None = None  # why it covers nothing (a key of UNMAPPED_REASONS)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Mapping:
    kernels: list[Kernel]
    method: str
    untimed: dict[str, list[str]] = field(default_factory=dict)  # layer that did not run (in place) -> nodes
    warnings: list[str] = field(default_factory=list)
    edges: dict[str, list[str]] = field(default_factory=dict)  # runtime graph: layer -> layers feeding it
    unresolved: dict[str, list[str]] = field(default_factory=dict)  # layer -> original names matching no node

    def owner(self) -> dict[str, str]:
        """ONNX node -> name of the kernel (or untimed layer) that covers it."""
        out: dict[str, str] = {}
        for k in self.kernels:
            for n in k.nodes:
                out.setdefault(n, k.name)
        for layer, nodes in self.untimed.items():
            for n in nodes:
                out.setdefault(n, layer)
        return out


def named_nodes(nodes) -> list:
    """Copies of the nodes, each with a unique name (f"{op_type}_{index}" for unnamed ones): the one
    naming rule of the graph analysis and every profile mapping."""
    import onnx

    named, seen = [], set()
    for index, node in enumerate(nodes):
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        name = node.name or f"{node.op_type}_{index}"
        if name in seen:
            name = f"{name}_{index}"
        seen.add(name)
        copy.name = name
        named.append(copy)
    return named


class OnnxGraph:
    """The original ONNX graph, with node names exactly as `graph.analyze` gives them."""

    def __init__(self, proto):
        g = proto.graph
        self.nodes = named_nodes(g.node)
        self.by_name = {n.name: n for n in self.nodes}
        self.producer: dict[str, str] = {}
        self.consumers: dict[str, list[str]] = defaultdict(list)
        for n in self.nodes:
            for t in n.output:
                if t:
                    self.producer[t] = n.name
            for t in n.input:
                if t:
                    self.consumers[t].append(n.name)
        self.initializers = {t.name for t in g.initializer}
        self.inputs = {vi.name for vi in g.input} - self.initializers
        self.outputs = [vi.name for vi in g.output]
        self.order = {n.name: i for i, n in enumerate(self.nodes)}
        self.tensors = set(self.producer) | self.initializers | self.inputs
        self.folded: set[str] = set()  # nodes the graph analysis folded into constants

    @classmethod
    def load(cls, path) -> OnnxGraph:
        import onnx

        return cls(onnx.load(str(path), load_external_data=False))

    def tensor_order(self, t: str) -> int:
        p = self.producer.get(t)
        return self.order[p] if p is not None else -1

    def resolve_name(self, name: str) -> str | None:
        """An OV-model / runtime name -> ONNX node: node name, output tensor name, or '<node>/<suffix>'."""
        if name in self.by_name:
            return name
        if name in self.producer:
            return self.producer[name]
        prefix = name
        while "/" in prefix.strip("/"):
            prefix = prefix.rsplit("/", 1)[0]
            if prefix in self.by_name:
                return prefix
            if prefix in self.producer:
                return self.producer[prefix]
        return None

    def walk_back(self, starts: Iterable[str], stops: set[str]) -> list[str]:
        """Nodes computing `starts` from `stops` (the start tensors themselves are never stops)."""
        seen: set[str] = set()
        walked: list[str] = []
        stack = [(t, True) for t in starts]
        visited: set[str] = set()
        while stack:
            t, is_start = stack.pop()
            if t in visited or (not is_start and t in stops):
                continue
            visited.add(t)
            p = self.producer.get(t)
            if p is None or p in seen:
                continue
            seen.add(p)
            walked.append(p)
            node = self.by_name[p]
            if node.op_type in ("Shape", "Size"):  # reads only the shape: not the data's producer
                continue
            stack.extend((i, False) for i in node.input if i)
        walked.sort(key=lambda n: self.order[n])
        return walked


def _claim(kernels: list[Kernel], warnings: list[str]) -> None:
    """A node claimed by two kernels goes to the first one executed."""
    first: dict[str, str] = {}
    conflicts: list[str] = []
    for k in kernels:
        kept = []
        for n in k.nodes:
            if n in first:
                conflicts.append(f"{n} (kept in {first[n]}, also claimed by {k.name})")
                continue
            first[n] = k.name
            kept.append(n)
        k.nodes = kept
    if conflicts:
        warnings.append(
            f"{len(conflicts)} ONNX node(s) claimed by two kernels went to the first: "
            + "; ".join(conflicts[:3])
            + (" ..." if len(conflicts) > 3 else "")
        )


def _reason_for_type(kernel_type: str) -> str | None:
    if kernel_type in ("MemcpyToHost", "MemcpyFromHost", "Memcpy"):
        return "copy"
    if kernel_type in LAYOUT_KERNELS:
        return "layout"
    if kernel_type in IO_KERNELS:
        return "io"
    return None


def resolve_all(g: OnnxGraph, names: list[str]) -> tuple[list[str], list[str]]:
    nodes: list[str] = []
    missing: list[str] = []
    for name in names:
        node = g.resolve_name(name)
        if node is None:
            missing.append(name)
        elif node not in nodes:
            nodes.append(node)
    return nodes, missing


# --------------------------------------------------------------------------- structural completion
def complete(mapping: Mapping, g: OnnxGraph, counted: set[str]) -> None:
    """Place the counted ONNX nodes that no kernel claimed, using the graph around them.

    Uncovered nodes form connected regions (siblings reading one tensor together). A region goes to
    a name-less compute kernel lying between the kernels that feed it and those it feeds (the first
    executed, if several); otherwise to the closest kernel it feeds from (walking up through layers
    that did not run and layout reorders: post-op fusion), preferring one whose original names could
    not be resolved; else to the kernel it feeds.
    """
    owner = mapping.owner()
    uncovered = [n for n in g.nodes if n.name in counted and n.name not in owner]
    if not uncovered:
        return
    edges, unresolved = mapping.edges, mapping.unresolved
    kernels = {k.name: k for k in mapping.kernels}
    order = {k.name: i for i, k in enumerate(mapping.kernels)}
    consumers_of: dict[str, list[str]] = defaultdict(list)
    for dst, srcs in edges.items():
        for s in srcs:
            consumers_of[s].append(dst)
    nameless = {k.name for k in mapping.kernels if not k.nodes and k.reason in ("no-names", "no-nodes") and k.ms > 0}

    def mapped(name: str) -> bool:
        return name in kernels and bool(kernels[name].nodes)

    def between(up: set[str], down: set[str]) -> list[str]:
        """Name-less kernels reachable from `up` and reaching `down` without crossing mapped kernels."""
        found = []
        for n in nameless:
            ups = _ancestors(n, edges, mapped)
            downs = _ancestors(n, consumers_of, mapped)
            if (not up or ups & up) and (not down or downs & down) and (up or down):
                found.append(n)
        return sorted(found, key=lambda n: order[n])

    un = {n.name for n in uncovered}
    regions = _regions(g, un)
    counts: dict[str, int] = defaultdict(int)
    for region in regions:
        rset = set(region)
        up_layers = {
            owner[p]
            for n in region
            for i in g.by_name[n].input
            if (p := g.producer.get(i)) and p not in rset and p in owner
        }
        down_layers = {
            owner[c]
            for n in region
            for o in g.by_name[n].output
            for c in g.consumers.get(o, [])
            if c not in rset and c in owner
        }
        up = set().union(set(), *(_nearest(x, edges, mapped) for x in up_layers))
        down = set().union(set(), *(_nearest(x, consumers_of, mapped) for x in down_layers))
        target, how = None, ""
        candidates = between(up_layers | up, down_layers | down) if edges else []
        if candidates:
            target, how = candidates[0], "structure"
        else:
            # post-op fusion first: the closest kernel upstream; one that lost original names first
            for pool, how, closest in ((up, "fused-upstream", -1), (down, "fused-downstream", 0)):  # noqa: B007
                pick = [k for k in pool if k in unresolved] or list(pool)
                if pick:
                    target = sorted(pick, key=lambda k: order.get(k, 0))[closest]
                    break
        if target is None:
            continue
        k = kernels[target]
        k.nodes.extend(region)
        k.nodes.sort(key=lambda n: g.order[n])
        k.reason = None
        k.extra.setdefault("placed", {})
        k.extra["placed"][how] = k.extra["placed"].get(how, 0) + len(region)
        if not k.how:
            k.how = how
        counts[how] += len(region)
        for n in region:
            owner[n] = target
    if counts:
        mapping.warnings.append(
            "ONNX nodes the runtime named no kernel for, placed by graph position: "
            + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        )


def _nearest(layer: str, edges: dict[str, list[str]], mapped) -> set[str]:
    """`layer` itself when it is a mapped kernel, else the nearest mapped kernels along `edges`
    (through layers that did not run and layout reorders)."""
    return {layer} if mapped(layer) else _ancestors(layer, edges, mapped)


def _ancestors(start: str, edges: dict[str, list[str]], stop) -> set[str]:
    """Layers reachable from `start` along `edges`, stopping at (and including) mapped kernels."""
    out, frontier, seen = set(), list(edges.get(start, [])), {start}
    while frontier:
        x = frontier.pop()
        if x in seen:
            continue
        seen.add(x)
        if stop(x):
            out.add(x)
            continue
        frontier.extend(edges.get(x, []))
    return out


def _regions(g: OnnxGraph, names: set[str]) -> list[list[str]]:
    """Connected groups of `names` (through tensors between them), each in graph order."""
    parent = {n: n for n in names}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for n in names:
        for o in g.by_name[n].output:
            for c in g.consumers.get(o, []):
                if c in names:
                    parent[find(c)] = find(n)
    # siblings reading the same activation (the Slices a runtime turns into one Split) go together
    for t, readers in g.consumers.items():
        if t in g.initializers:
            continue
        inside = [c for c in readers if c in names]
        for c in inside[1:]:
            parent[find(c)] = find(inside[0])
    groups: dict[str, list[str]] = defaultdict(list)
    for n in names:
        groups[find(n)].append(n)
    regions = [sorted(v, key=lambda n: g.order[n]) for v in groups.values()]
    return sorted(regions, key=lambda r: g.order[r[0]])


def map_by_name(backend: str, layers, g: OnnxGraph) -> Mapping:
    kernels = []
    for lt in layers:
        node = g.resolve_name(lt.name)
        k = Kernel(
            lt.name,
            lt.op_type,
            float(lt.time_ms),
            [node] if node else [],
            "name" if node else "",
            extra=dict(lt.extra or {}),
        )
        if node is None:
            k.reason = _reason_for_type(lt.op_type) or "not-in-graph"
        kernels.append(k)
    mapping = Mapping(kernels, f"{backend}: kernel names matched to ONNX node names")
    _claim(kernels, mapping.warnings)
    return mapping


def map_reported(backend: str, layers) -> Mapping:
    """Kernels that name their ONNX nodes themselves (LayerTime.nodes)."""
    kernels = [
        Kernel(
            lt.name,
            lt.op_type,
            float(lt.time_ms),
            list(lt.nodes),
            "runtime" if lt.nodes else "",
            extra=dict(lt.extra or {}),
        )
        for lt in layers
    ]
    mapping = Mapping(kernels, f"{backend}: node names reported by the runtime")
    _claim(kernels, mapping.warnings)
    for k in kernels:
        if not k.nodes:
            k.reason = _reason_for_type(k.kernel_type) or "no-nodes"
    return mapping
