"""Random timm weights look trained: seeded non-zero normalisation layers (models.loaders.RANDOM_NORMS),
so no exporter can fold a branch away and logits have a realistic scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from effbench.models.loaders import RANDOM_NORMS, build_torch_model, norm_layers, weights_hash, weights_key
from effbench.models.registry import resolve

MODEL = "timm:test_resnet"  # timm zero-initialises 368 BatchNorm scales of its residual branches


def _input_dependence(model, shape) -> float:
    """How much the logits of two different images differ, relative to the logits' spread: near 0 when
    dead branches leave the output almost constant."""
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).numpy()
    return float(np.std(y[0] - y[1]) / np.std(y))


def test_no_normalisation_scale_is_zero_and_the_output_depends_on_the_input():
    import timm

    spec = resolve(MODEL, 64)
    plain = timm.create_model("test_resnet").eval()
    assert sum(int((m.weight == 0).sum()) for m in norm_layers(plain)) > 0  # what timm does on its own
    model = build_torch_model(spec, seed=0)
    assert all(bool((m.weight != 0).all()) for m in norm_layers(model))
    assert all(bool((m.bias != 0).any()) for m in norm_layers(model) if m.bias is not None)
    seeded, zeroed = _input_dependence(model, spec.input_shape), _input_dependence(plain, spec.input_shape)
    assert seeded > 0.5 and seeded > 5 * zeroed, (seeded, zeroed)
    assert not model.training


def test_the_weights_are_seeded_and_their_scheme_is_in_the_cache_key():
    spec = resolve(MODEL, 64)
    a, b, c = (build_torch_model(spec, seed=s) for s in (0, 0, 1))
    assert weights_hash(a) == weights_hash(b) != weights_hash(c)
    assert weights_key(spec, 0)["init"] == RANDOM_NORMS


@pytest.mark.slow
def test_the_litert_artifact_of_efficientvit_m0_keeps_its_size_and_nodes():
    """With timm's zero scales the converter folded whole branches away (2.47 MB instead of 10.1 MB)."""
    from ai_edge_litert.interpreter import Interpreter

    from effbench.analysis.graph import analyze
    from effbench.export.litert_export import tflite_artifact
    from effbench.export.pipeline import ModelSource, onnx_artifact

    src = ModelSource(resolve("efficientvit_m0", None))
    shape = (1, *src.spec.input_shape)
    art = tflite_artifact(src, shape)
    params = art.meta["params"]
    assert art.bytes > 0.95 * 4 * params  # every fp32 weight is still there
    ops = Interpreter(model_path=str(art.path))._get_ops_details()
    compute = sum(op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL") for op in ops)
    onnx_compute = sum(n.macs > 0 for n in analyze(str(onnx_artifact(src, shape).path)).nodes)
    assert compute >= 0.9 * onnx_compute, (compute, onnx_compute)
