"""Models and backends that exist only for the test suite."""

import os
import signal
import time

import torch
from torch import nn


def tiny_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=1, groups=8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 10),
    )


class _XnnpackFallback(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        y = self.conv(x)
        y = y + y.mean(dim=1, keepdim=True)  # XNNPACK's mean takes only the two innermost dimensions
        y = torch.cumsum(y, dim=3)  # an op XNNPACK has no partitioner config for
        return self.fc(y.mean(dim=(2, 3)))


def xnnpack_fallback() -> nn.Module:
    """Two nodes ExecuTorch's XNNPACK partitioner leaves to the portable kernels, one it says why."""
    return _XnnpackFallback()


def not_a_module():
    return 42


class _Svd(nn.Module):
    def forward(self, x):
        return torch.linalg.svd(x.flatten(1)[:, :16].reshape(-1, 4, 4)).S.flatten(1)


def svd_model() -> nn.Module:
    """The TorchScript ONNX exporter has no symbolic for aten::linalg_svd: an export that fails."""
    return _Svd()


def segfault_model() -> nn.Module:
    """A factory whose native code crashes the process that builds it."""
    os.kill(os.getpid(), signal.SIGSEGV)
    raise AssertionError("unreachable")


def hanging_model() -> nn.Module:
    """A factory that never returns (a download that stalls, a lock never released)."""
    time.sleep(3600)
    raise AssertionError("unreachable")


class _Resized(nn.Module):
    """A model that brings any input to its own 32 px first (as some user models do)."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x):
        return self.body(nn.functional.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False))


def tiny_cnn_32() -> nn.Module:
    """tiny_cnn declaring its data config the timm way: 32 px, its own mean/std, no crop, bicubic."""
    model = _Resized(tiny_cnn())
    model.pretrained_cfg = {
        "input_size": (3, 32, 32),
        "mean": (0.5, 0.5, 0.5),
        "std": (0.25, 0.25, 0.25),
        "crop_pct": 1.0,
        "interpolation": "bicubic",
    }
    return model


class _WindowPad(nn.Module):
    """EfficientViT's window padding: conv, then a pad of H and W in the NHWC layout, then conv."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 3)

    def forward(self, x):
        y = self.a(x).permute(0, 2, 3, 1)
        y = torch.nn.functional.pad(y, (0, 0, 0, 1, 0, 1))
        return self.b(y.permute(0, 3, 1, 2))


def window_pad() -> nn.Module:
    return _WindowPad()
