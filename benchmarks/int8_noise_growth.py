"""How far int8-sized noise grows through a model, in fp32: why efficientvit_m0 int8 fails parity on every
runtime (ExecuTorch, ONNX Runtime, OpenVINO, LiteRT alike) with effbench's seeded random weights.

Quantising a tensor to int8 moves each value by up to half a step (1/255 of its range). This adds that
much uniform noise to the input only, runs the fp32 model, and prints the relative L2 change after each
top-level block and the parity figures (max relative error, cosine) of the fp32 outputs, for the seeded
weights effbench measures (models.loaders.RANDOM_NORMS) and for timm's own init. A model whose fp32
outputs already miss the int8 tolerance (max rel err 0.2, cosine 0.95) from input rounding alone cannot
pass it once every layer is rounded, whatever the runtime or its quantiser settings.

    python benchmarks/int8_noise_growth.py [--model efficientvit_m0] [--trials 3]
"""

from __future__ import annotations

import argparse

import numpy as np

from effbench.harness.parity import TOLERANCES, compare
from effbench.models.loaders import build_torch_model
from effbench.models.registry import resolve


def noise_growth(model, x, noise) -> tuple[list[tuple[str, float]], np.ndarray, np.ndarray]:
    import torch

    seen: dict[str, list] = {}
    hooks = [
        m.register_forward_hook(lambda _m, _i, o, n=n: seen.setdefault(n, []).append(o.detach().clone()))
        for n, m in model.named_modules()
        if n and n.count(".") in (0, 2)  # top-level modules and a stage's parts (stages.0.blocks)
    ]
    with torch.no_grad():
        ref, moved = model(x).numpy(), model(x + noise).numpy()
    for h in hooks:
        h.remove()
    growth = [(n, float((a - b).norm() / a.norm())) for n, (a, b) in seen.items() if a.norm() > 0]
    return growth, ref, moved


def main() -> None:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientvit_m0")
    ap.add_argument("--trials", type=int, default=3)
    args = ap.parse_args()
    spec = resolve(args.model)
    shape = (1, *spec.input_shape)
    x = torch.from_numpy(np.random.default_rng(0).standard_normal(shape, dtype=np.float32))
    tol = TOLERANCES["int8"]
    print(f"{args.model}: int8-sized noise on the input only (1/255 of its range), fp32 model; int8 tolerance {tol}")
    for label, seeded in (("seeded norms (what effbench measures)", True), ("timm init", False)):
        if seeded:
            model = build_torch_model(spec, False, 0).eval()
        else:  # build_torch_model seeds a random timm model's norms: timm's own init instead
            import timm

            torch.manual_seed(0)
            model = timm.create_model(spec.target, pretrained=False).eval()
        figures = []
        for t in range(args.trials):
            noise = torch.from_numpy(np.random.default_rng(t + 1).uniform(-0.5, 0.5, shape).astype(np.float32))
            growth, ref, moved = noise_growth(model, x, noise * float(x.max() - x.min()) / 255)
            p = compare([moved], [ref], "int8")
            figures.append(f"max rel err {p.max_rel_err:.3f}, cosine {p.cosine:.4f}")
        print(f"\n{label}: logits std {ref.std():.3g}")
        print(f"  input  {float((noise * float(x.max() - x.min()) / 255).norm() / x.norm()):.4f}")
        for n, g in growth:
            print(f"  {n:28s} {g:.4f}")
        print("  outputs: " + "; ".join(figures))


if __name__ == "__main__":
    main()
