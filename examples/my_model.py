"""A user's own model: `bench run --model examples.my_model:tiny_lowformer --backend ov --input-size 224`
(run from the repository root so that `examples` is importable, or put the module on PYTHONPATH)."""

import torch
from torch import nn


class _Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.pw = nn.Conv2d(c, c, 1)
        self.act = nn.Hardswish()

    def forward(self, x):
        return x + self.pw(self.act(self.dw(x)))


def tiny_lowformer() -> nn.Module:
    """Randomly initialised; a factory takes no arguments and returns an nn.Module."""
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, stride=2, padding=1),
        nn.Hardswish(),
        *[_Block(32) for _ in range(4)],
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 1000),
    )


if __name__ == "__main__":
    print(tiny_lowformer()(torch.randn(1, 3, 224, 224)).shape)
