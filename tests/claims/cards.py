"""Claim cards the tests write: a null-backend busy-wait pair (a known, exact ratio) and a real pair."""

from __future__ import annotations

from pathlib import Path

import yaml

PAPER = {"title": "Busy-wait pairs", "year": 2026, "link": "https://example.org/busy"}
NULL_SETTINGS = {
    "device": "this machine",
    "device_kind": "cpu",
    "runtime": "null backend",
    "backend": "null",
    "source": "the test",
}


def tiny_onnx(path: Path) -> str:
    """A one-node ONNX model (Identity on a 1x3x8x8 image): the null backend never runs it, and unlike a
    timm name it costs nothing to resolve and count."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["output"])], path.stem, [x], [y])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph), str(path))
    return str(path)


def busy(model: str, us: int) -> dict:
    return {"name": model, "options": {"busy_us": us}}


def null_claim(
    name: str,
    ratio: float,
    a_us: int = 1000,
    b_us: int = 1500,
    kind: str = "faster",
    models=("mobilenetv3_small_050", "mobilenetv3_small_050"),
    tolerance: float = 0.1,
) -> dict:
    return {
        "name": name,
        "says": f"{a_us} us is {ratio}x faster than {b_us} us",
        "says_source": "the test",
        "kind": kind,
        "metric": "latency",
        "ratio": ratio,
        "ratio_source": "the test",
        "tolerance": tolerance,
        "models": [busy(models[0], a_us), busy(models[1], b_us)],
        "settings": dict(NULL_SETTINGS),
    }


def real_pair_claim(name: str = "small-pair-ort") -> dict:
    return {
        "name": name,
        "says": "MobileNetV3-Small-0.5 is faster than EfficientViT-M0",
        "says_source": "the test",
        "kind": "faster",
        "metric": "latency",
        "ratio": 1.2,
        "ratio_source": "the test",
        "models": [{"name": "mobilenetv3_small_050"}, {"name": "efficientvit_m0"}],
        "settings": {
            "device": "this machine",
            "device_kind": "cpu",
            "runtime": "ONNX Runtime",
            "backend": "onnxruntime",
            "threads": 1,
            "source": "the test",
        },
    }


def write_card(folder: Path, claims: list[dict], name: str = "card.yaml", paper: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(yaml.safe_dump({"paper": paper or PAPER, "claims": claims}, sort_keys=False))
    return path
