"""Real data without a download: scikit-learn's bundled digits (1,797 8x8 images) written as PNG
ImageFolders, and a small CNN trained on them for a few seconds, saved as a state_dict.

Layout of the `digits` fixture (class folders '0'..'9', so folder index == digit):
    root/train/<digit>/<n>.png   about 1,300 images (training and calibration)
    root/val/<digit>/<n>.png     500 images (evaluation)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

SIZE = 16  # the model input (the 8x8 digits are upscaled by the preprocessing)
VAL = 500


@dataclass
class Digits:
    root: Path
    train: Path
    val: Path


@pytest.fixture(scope="session")
def digits(tmp_path_factory) -> Digits:
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    order = np.random.default_rng(0).permutation(len(data.target))
    root = tmp_path_factory.mktemp("digits")
    for split, idx in (("val", order[:VAL]), ("train", order[VAL:])):
        for n in idx:
            folder = root / split / str(int(data.target[n]))
            folder.mkdir(parents=True, exist_ok=True)
            pixels = np.round(data.images[n] * (255.0 / 16.0)).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(folder / f"{n:04d}.png")
    return Digits(root, root / "train", root / "val")


def digits_preprocess(batch: int = 1):
    from effbench.accuracy.preprocess import resolve_preprocess

    return resolve_preprocess([batch, 3, SIZE, SIZE], crop_pct=1.0)


@dataclass
class Trained:
    weights: Path
    module: object  # the trained torch module, eval mode
    train_accuracy: float


@pytest.fixture(scope="session")
def trained(digits, tmp_path_factory) -> Trained:
    """digits_cnn trained for three epochs (about two seconds)."""
    import torch
    from digits_models import digits_cnn

    from effbench.accuracy.data import find_images, prepare_images

    prepared = prepare_images(find_images(digits.train), digits_preprocess())
    x = torch.from_numpy(prepared.preprocess.normalize(prepared.pixels))
    y = torch.from_numpy(prepared.labels)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny net on a shared machine: one thread trains fastest
    torch.manual_seed(0)
    model = digits_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _epoch in range(3):
        for idx in torch.randperm(len(y), generator=gen).split(32):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean())
    torch.set_num_threads(threads)
    path = tmp_path_factory.mktemp("weights") / "digits_cnn.pth"
    torch.save(model.state_dict(), path)
    return Trained(path, model, acc)
