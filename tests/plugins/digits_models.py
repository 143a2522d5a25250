"""A small CNN for scikit-learn's bundled 8x8 digits, upscaled to RGB images (the accuracy tests train it).

`bench run --model digits_models:digits_cnn --weights W.pth --input-size 16 ...` builds it; any input
of at least 8x8 pixels works (adaptive pooling to 4x4 before the classifier).
"""

from torch import nn


def digits_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(4),
        nn.Flatten(),
        nn.Linear(32 * 16, 10),
    )
