"""Tiny models for the Core ML conversion paths (used as `tests.backends.bad_models:<factory>`)."""

import torch
from torch import nn


class SvdNet(nn.Module):
    """torch.linalg.svdvals: coremltools converts it on neither path."""

    def forward(self, x):
        return torch.linalg.svdvals(x.flatten(2))


class BranchyNet(nn.Module):
    """Data-dependent control flow: torch.export refuses it, tracing bakes in one branch."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        if y.sum() > 0:
            return y.mean((2, 3)) * 2
        return y.mean((2, 3))


def svd_net() -> nn.Module:
    return SvdNet()


def branchy_net() -> nn.Module:
    return BranchyNet()
