"""torch -> ExecuTorch (.pte): torch.export, then to_edge_transform_and_lower with the XNNPACK
partitioner (no partitioner with `--opt delegate=none`: ExecuTorch's portable kernels), in a fresh
process. int8: the XNNPACK PT2E quantiser (symmetric, per-channel) calibrated on the --calib images
before lowering. Beside the .pte: placement.json, where each node of the lowered graph runs (the
runtime's Python API cannot say) and why a node stayed out of XNNPACK (export.xnnpack_reasons),
which the session hands back in every result, and the ETRecord `bench profile` maps kernels with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from effbench.errors import RunFailed
from effbench.export.cache import Artifact, get_or_build
from effbench.export.isolated import isolated, quiet, refused
from effbench.export.pipeline import ModelSource, base_parts, package_versions, require_torch_model
from effbench.export.xnnpack_reasons import fallback_reasons, partitioner_reasons

PACKAGES = ("executorch", "torch", "torchao", "timm")
PLACEMENT_FILE = "placement.json"
PLACEMENT_VERSION = 2  # part of the cache key: 2 says why each node fell back


def _shape(node: Any) -> list[int] | None:
    shape = getattr(getattr(node, "meta", {}).get("val"), "shape", None)
    return [int(d) for d in shape] if shape is not None else None


def node_macs(node: Any) -> int | None:
    """Multiply-accumulates of the compute nodes of an exported graph (from their fake tensors)."""
    target, out = str(node.target), _shape(node)
    if out is None or not node.args:
        return None
    numel = int(np.prod(out))
    if "convolution" in target and len(node.args) > 1:
        w = _shape(node.args[1])
        return numel * int(np.prod(w[1:])) if w else None
    if "linear" in target and len(node.args) > 1:
        w = _shape(node.args[1])
        return numel * w[-1] if w else None
    if any(k in target for k in ("aten_mm", "aten_bmm", "aten_addmm", "aten.mm", "aten.bmm", "aten.addmm")):
        a = _shape(node.args[-2] if "addmm" in target else node.args[0])
        return numel * a[-1] if a else None
    return None


def _op(node: Any) -> str:
    """aten.convolution.default -> convolution."""
    parts = str(getattr(node.target, "__name__", node.target)).split(".")
    return parts[1] if parts[0] == "aten" and len(parts) > 1 else parts[0]


def _precision(node: Any) -> str:
    ins = [a for a in node.args if hasattr(a, "target")]
    return "int8" if any("dequantize" in str(a.target) for a in ins) else "fp32"


def placement_rows(graph_module: Any, delegate: str) -> list[list[Any]]:
    """[name, op, unit, precision, MACs] of every call of the lowered graph, delegated ones included."""
    rows: list[list[Any]] = []
    fallback = "portable kernels"
    for node in graph_module.graph.nodes:
        if node.op == "get_attr" and node.name.startswith("lowered_module_"):
            lowered = getattr(graph_module, node.name)
            for inner in lowered.original_module.graph.nodes:
                if inner.op == "call_function":
                    rows.append([inner.name, _op(inner), "XNNPACK", _precision(inner), node_macs(inner)])
        elif node.op == "call_function" and "executorch_call_delegate" not in str(node.target):
            if "getitem" in str(node.target) or "quantize" in str(node.target):
                continue
            rows.append([node.name, _op(node), fallback, _precision(node), node_macs(node)])
    return rows


def _export(
    src: ModelSource, input_shape: tuple[int, ...], target: str, delegate: str, calib: list | None = None
) -> int:
    import torch
    from executorch.exir import to_edge_transform_and_lower

    from effbench.models.loaders import count_params

    module = src.module().eval()
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(input_shape, dtype=np.float32))
    partitioners: list[Any] = []
    configs: list[Any] = []
    if delegate == "xnnpack":
        from executorch.backends.xnnpack.partition.config import ALL_PARTITIONER_CONFIGS, ConstantPadConfig
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

        # int8: a pad left between quantised nodes (EfficientViT pads its NHWC windows) was lowered to
        # XNNPACK, which refused it when the program loaded (StaticConstantPad: invalid parameter,
        # "error: 0x1" at the first call); the pad runs in the portable kernels instead
        configs = [c for c in ALL_PARTITIONER_CONFIGS if calib is None or c is not ConstantPadConfig]
        partitioners = [XnnpackPartitioner(configs=configs)]
    try:
        with quiet(), torch.no_grad(), partitioner_reasons() as said:
            program = torch.export.export(module, (x,))
            if calib is not None:
                program = torch.export.export(_quantized(program, calib), (x,))
            edge = to_edge_transform_and_lower(program, partitioner=partitioners, generate_etrecord=True)
            lowered = edge.exported_program().graph_module
            rows = placement_rows(lowered, delegate)
            reasons = fallback_reasons(lowered, rows, said, configs, calib is not None) if partitioners else {}
            et = edge.to_executorch()
    except Exception as e:
        raise RunFailed(f"ExecuTorch export of {src.spec.id} failed: {refused(e)}") from None
    Path(target).write_bytes(et.buffer)
    (Path(target).parent / PLACEMENT_FILE).write_text(
        json.dumps({"delegate": delegate, "nodes": rows, "reasons": reasons})
    )
    try:
        et.get_etrecord().save(str(Path(target).parent / "etrecord.bin"))
    except Exception:  # the per-op profile then names kernels only
        pass
    return count_params(module)


def _quantized(program: Any, calib: list[np.ndarray]) -> Any:
    """The XNNPACK PT2E quantiser: symmetric int8, per-channel weights, calibrated on `calib` batches."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
        XNNPACKQuantizer,
        get_symmetric_quantization_config,
    )
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    prepared = prepare_pt2e(program.module(), quantizer)
    for batch in calib:
        prepared(torch.from_numpy(batch))
    return convert_pt2e(prepared)


def pte_artifact(
    src: ModelSource, input_shape: tuple[int, ...], exporter: str = "", options: dict | None = None, **_: Any
) -> Artifact:
    require_torch_model(src, "ExecuTorch")
    delegate = (options or {}).get("delegate") or "xnnpack"
    parts = {
        **base_parts(src, input_shape),
        "format": "pte",
        "delegate": delegate,
        "placement": PLACEMENT_VERSION,
        **package_versions(PACKAGES),
    }
    source = ModelSource(src.spec, src.pretrained, src.seed)  # unbuilt: the child builds the module
    return get_or_build(
        "pte",
        parts,
        "model.pte",
        lambda t: {"params": isolated(_export, source, input_shape, str(t), delegate), "recipe_of": source.recipe()},
    )


def quantize_pte(
    source: str | Path, target: str | Path, calib: Any, batch_size: int, options: Any = None, **_: Any
) -> dict[str, Any]:
    """int8 .pte from the model the fp32 .pte was exported from (its recipe, in the fp32 artifact's
    meta.json): PT2E quantisation needs the PyTorch graph, not the lowered program."""
    from effbench.models.registry import ModelSpec

    recipe = json.loads((Path(source).parent / "meta.json").read_text()).get("recipe_of")
    if not recipe:
        raise RunFailed(f"the fp32 ExecuTorch artifact {source} does not say which model it came from")
    spec = ModelSpec(
        recipe["id"], recipe["kind"], recipe["target"], tuple(recipe["input_shape"]), weights=recipe.get("weights")
    )
    src = ModelSource(spec, bool(recipe.get("pretrained")), int(recipe.get("seed", 0)))
    delegate = getattr(options, "delegate", None) or "xnnpack"
    batches = list(calib.batches(batch_size))
    isolated(_export, src, (batch_size, *spec.input_shape), str(target), delegate, batches)
    return {
        "method": "xnnpack-pt2e",
        "scheme": "symmetric int8, per-channel weights",
        "calibration": calib.record(),
        "calibration_batches": len(batches),
        "batch_size": batch_size,
        "versions": package_versions(("executorch", "torchao")),
    }
