"""torch -> Core ML ML Program (.mlpackage) with coremltools, on any OS; cached like other artifacts.

Conversion paths, in order (the one that worked is recorded as `export_path` in the manifest, the
artifact's meta and the result's runtime info):

1. `torch.export.export(...).run_decompositions({})` then `ct.convert` (coremltools' recommended
   path). `aten.alias` nodes are removed from the exported graph first: coremltools cannot convert
   them ("Unsupported fx node alias", apple/coremltools#2517; EfficientViT hits it), and in an
   inference graph without mutation an alias is the identity. The manifest lists this under
   `workarounds` when it happened.
2. On failure, TorchScript tracing (`torch.jit.trace` then `ct.convert`), recorded as
   "torchscript-trace (fallback after: <first error>)".

When both fail, the cell fails with the converter's own first line for each path.

The cache (export/cache.get_or_build) checks that its `filename` is a *file*; an .mlpackage is a
directory. So the builder writes the package as `model.mlpackage/` next to a small JSON manifest,
`model.mlpackage.json`, which is the artifact's main file (`Artifact.path`); the manifest names the
package directory and says how it was made. Both live in the same cache directory, so the package is
built in the temporary directory and renamed into place together with the manifest, atomically.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

from effbench.errors import RunFailed, UsageError
from effbench.export.cache import Artifact, get_or_build

PACKAGE = "model.mlpackage"
MANIFEST = PACKAGE + ".json"
PRECISIONS = ("fp32", "fp16")
RECIPE = 1  # bump when the conversion steps change, so cached packages are rebuilt
INPUT_NAME = "input"
OUTPUT_NAME = "output"


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0][:300] if lines else type(e).__name__


def _version(pkg: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


@contextlib.contextmanager
def _quiet():
    """coremltools prints progress bars, import-time warnings and ERROR logs for ops it then
    reports in its exception anyway: keep them out of the user's terminal and the worker's stderr."""
    loggers = [logging.getLogger(n) for n in ("coremltools", "torch.export", "torch._export")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    sink = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _strip_aliases(exported) -> int:
    """Remove aten.alias nodes (identity in an inference graph). Returns how many went."""
    import torch

    targets = {torch.ops.aten.alias.default}
    alias_copy = getattr(torch.ops.aten, "alias_copy", None)
    if alias_copy is not None:
        targets.add(alias_copy.default)
    removed = 0
    graph = exported.graph
    for node in list(graph.nodes):
        if node.op == "call_function" and node.target in targets and node.args:
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)
            removed += 1
    if removed:
        graph.lint()
    return removed


def _convert(source, input_shape: tuple[int, ...], precision: str):
    import coremltools as ct
    import numpy as np

    return ct.convert(
        source,
        source="pytorch",
        convert_to="mlprogram",
        inputs=[ct.TensorType(name=INPUT_NAME, shape=tuple(input_shape), dtype=np.float32)],
        outputs=[ct.TensorType(name=OUTPUT_NAME, dtype=np.float32)],
        compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
        skip_model_load=True,  # compiling needs macOS; the backend loads it there
    )


def convert_torch(model, input_shape: tuple[int, ...], precision: str = "fp32") -> tuple[Any, dict[str, Any]]:
    """Convert `model` for one fixed input shape. Returns (MLModel, how) or raises RunFailed with
    the converter's first line."""
    import torch

    if precision not in PRECISIONS:
        raise UsageError(f"Core ML export precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    x = torch.randn(*input_shape)
    attempts: list[dict[str, str]] = []
    workarounds: list[str] = []
    with _quiet(), torch.inference_mode(False), torch.no_grad():
        try:
            import coremltools  # noqa: F401
        except ImportError:
            raise UsageError("coremltools is not installed: pip install coremltools (or effbench[coreml])") from None
        try:
            exported = torch.export.export(model, (x,)).run_decompositions({})
            n = _strip_aliases(exported)
            if n:
                workarounds.append(
                    f"removed {n} aten.alias node(s) before conversion "
                    "(coremltools cannot convert aten.alias: apple/coremltools#2517)"
                )
            mlmodel = _convert(exported, input_shape, precision)
            path = "torch.export"
        except Exception as e:
            attempts.append({"path": "torch.export", "error": _first_line(e)})
            mlmodel = None
        if mlmodel is None:
            try:
                traced = torch.jit.trace(model, x, check_trace=False)
                mlmodel = _convert(traced, input_shape, precision)
                path = f"torchscript-trace (fallback after: {attempts[0]['error']})"
            except Exception as e:
                attempts.append({"path": "torchscript-trace", "error": _first_line(e)})
    if mlmodel is None:
        first, second = attempts[0]["error"], attempts[-1]["error"]
        raise RunFailed(
            f"Core ML conversion failed: {first} (torch.export path; the torchscript-trace "
            f"fallback failed too: {second})"
        )
    return mlmodel, {"export_path": path, "workarounds": workarounds, "attempts": attempts}


def export_coreml(model, input_shape: tuple[int, ...], target: Path, precision: str = "fp32") -> dict[str, Any]:
    """Write `model.mlpackage/` and its manifest `target` (model.mlpackage.json) side by side."""
    mlmodel, how = convert_torch(model, input_shape, precision)
    package = target.parent / PACKAGE
    with _quiet():
        mlmodel.save(str(package))
    manifest = {
        "format": "coreml-mlprogram",
        "package": PACKAGE,
        "input": INPUT_NAME,
        "input_shape": list(input_shape),
        "outputs": [OUTPUT_NAME],
        "precision": precision,
        "compute_precision": "FLOAT16" if precision == "fp16" else "FLOAT32",
        "export_path": how["export_path"],
        "workarounds": how["workarounds"],
        "failed_attempts": how["attempts"],
        "coremltools": _version("coremltools"),
        "torch": _version("torch"),
    }
    target.write_text(json.dumps(manifest, indent=1))
    return manifest


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of a cached Core ML artifact, with `package_path` resolved."""
    try:
        manifest = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise RunFailed(
            f"broken Core ML artifact manifest {path}: {e} (delete the cache entry and export again)"
        ) from None
    package = Path(path).parent / manifest.get("package", PACKAGE)
    if not package.is_dir():
        raise RunFailed(f"Core ML package missing next to {path} (delete the cache entry and export again)")
    manifest["package_path"] = str(package)
    return manifest


def coreml_artifact(src, input_shape: tuple[int, ...], base_parts: dict[str, Any], precision: str = "fp32") -> Artifact:
    """The cached Core ML artifact for `src` at `input_shape` and compute `precision` (fixed at
    conversion time, so fp32 and fp16 are two artifacts)."""
    if src.spec.kind == "onnx":
        raise UsageError(
            f"{src.spec.id} is an ONNX file: Core ML export needs a PyTorch model (a timm name or a "
            "factory); coremltools no longer converts ONNX"
        )
    if precision not in PRECISIONS:
        raise UsageError(f"Core ML runs {', '.join(PRECISIONS)}, not {precision}")
    parts = {
        **base_parts,
        "precision": precision,
        "recipe": RECIPE,
        "coremltools": _version("coremltools"),
        "timm": _version("timm"),
    }
    art = get_or_build("coreml", parts, MANIFEST, lambda t: export_coreml(src.module(), input_shape, t, precision))
    manifest = read_manifest(art.file)
    art.meta.update({k: manifest.get(k) for k in ("export_path", "workarounds", "precision", "package_path")})
    return art
