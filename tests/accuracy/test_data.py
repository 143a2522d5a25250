"""Image sets: torchvision's ImageFolder order, labels files, subsets, content hashes, the decode cache,
and every bad input as one line naming the file or option and the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from effbench.accuracy.calibration import calibration_set
from effbench.accuracy.data import content_hash, find_images, prepare_images, select
from effbench.accuracy.evaluate import check_classes
from effbench.errors import UsageError

from .conftest import digits_preprocess


def _png(path: Path, value: int = 128, size=(8, 8)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size, value, np.uint8), mode="L").save(path)
    return path


def _folder(root: Path, classes=("cat", "dog"), per_class=3) -> Path:
    for c in classes:
        for i in range(per_class):
            _png(root / c / f"{i}.png", 40 * i)
    return root


def _one_line_error(fn, *needles):
    with pytest.raises(UsageError) as e:
        fn()
    text = str(e.value)
    assert "\n" not in text and e.value.exit_code == 2
    for needle in needles:
        assert needle in text, text
    return text


def test_imagefolder_order_and_labels_equal_torchvision(digits):
    from torchvision.datasets import ImageFolder

    ours = find_images(digits.val, num_classes=10)
    theirs = ImageFolder(str(digits.val))
    assert ours.classes == theirs.classes
    assert [str(f) for f in ours.files] == [p for p, _ in theirs.samples]
    assert ours.labels == theirs.targets and ours.labels_source == "imagefolder"


def test_labels_file_forms(tmp_path):
    root = _folder(tmp_path / "set", ("n02", "n01"))
    explicit = tmp_path / "explicit.txt"
    explicit.write_text("# folder index\nn01 7\nn02,3\n")
    assert set(find_images(root, labels_file=explicit, num_classes=10).labels) == {7, 3}
    synsets = tmp_path / "LOC_synset_mapping.txt"
    synsets.write_text("n00 tench, Tinca tinca\nn01 goldfish\nn02 great white shark\n")
    imgs = find_images(root, labels_file=synsets, num_classes=1000)
    assert dict(zip((f.parent.name for f in imgs.files), imgs.labels)) == {"n01": 1, "n02": 2}
    assert imgs.labels_source == f"file:{synsets.resolve()}"
    as_json = tmp_path / "labels.json"
    as_json.write_text(json.dumps({"n01": 0, "n02": 1}))
    assert find_images(root, labels_file=as_json, num_classes=2).labels == [0, 0, 0, 1, 1, 1]  # n01 sorts first


def test_flat_folder_with_a_labels_file_of_file_names(tmp_path):
    flat = tmp_path / "flat"
    for i in range(4):
        _png(flat / f"val_{i}.png", i * 50)
    (flat / "notes.txt").write_text("not an image")
    labels = tmp_path / "val.txt"
    labels.write_text("".join(f"val_{i}.png {i % 2}\n" for i in range(4)))
    imgs = find_images(flat, labels_file=labels, num_classes=2)
    assert [f.name for f in imgs.files] == [f"val_{i}.png" for i in range(4)] and imgs.labels == [0, 1, 0, 1]
    assert find_images(flat, option="--calib", need_labels=False).labels is None  # calibration needs none


def test_subset_is_balanced_across_classes(digits):
    imgs = find_images(digits.val, num_classes=10)
    chosen = select(imgs, 50)
    counts = np.bincount([imgs.labels[i] for i in chosen], minlength=10)
    assert counts.min() == counts.max() == 5
    assert select(imgs, None) == list(range(len(imgs.files)))


def test_content_hash_follows_content_and_labels(tmp_path):
    root = _folder(tmp_path / "set")
    imgs = find_images(root)
    h = content_hash(imgs, select(imgs, None))
    assert h == content_hash(find_images(root), select(imgs, None))
    _png(root / "cat" / "1.png", 255)  # same name, new pixels
    assert content_hash(find_images(root), select(imgs, None)) != h


def test_prepared_images_are_cached_and_padded(tmp_path):
    root = _folder(tmp_path / "set", per_class=5)
    pre = digits_preprocess()
    first = prepare_images(find_images(root), pre)
    again = prepare_images(find_images(root), pre)
    assert first.path == again.path and len(first) == 10
    batches = list(first.batches(4))
    assert [v for _, v in batches] == [4, 4, 2] and all(b.shape == (4, 3, 16, 16) for b, _ in batches)
    assert np.array_equal(batches[-1][0][2], batches[-1][0][3])  # padding repeats the last real image
    wrapped = list(first.batches(4, wrap=True))
    assert [v for _, v in wrapped] == [4, 4, 4] and np.array_equal(wrapped[-1][0][2], batches[0][0][0])


def test_calibration_from_a_folder_and_generated(tmp_path):
    root = _folder(tmp_path / "calib", per_class=4)
    pre = digits_preprocess()
    cal = calibration_set(root, pre, size=6)
    assert cal.source == "dir" and len(cal.images) == 6 and cal.warning is None
    assert cal.hash == calibration_set(root, pre, size=6).hash != calibration_set(root, pre, size=5).hash
    gen = calibration_set(None, pre, size=6)
    assert gen.source == "generated" and "accuracy is not" in gen.record()["warning"]
    _one_line_error(lambda: calibration_set(root, pre, size=0), "--calib-size")


# --- bad input: one line each, before any measuring -------------------------------------------------


def test_missing_or_empty_folders(tmp_path):
    _one_line_error(lambda: find_images(tmp_path / "nope"), "--eval", "no such folder")
    (tmp_path / "empty").mkdir()
    _one_line_error(
        lambda: find_images(tmp_path / "empty", option="--calib", need_labels=False), "--calib", "no images found"
    )
    (tmp_path / "f.png").write_bytes(b"")
    _one_line_error(lambda: find_images(tmp_path / "f.png"), "is a file")
    root = _folder(tmp_path / "set")
    (root / "empty_class").mkdir()
    _one_line_error(lambda: find_images(root), "class folder 'empty_class' has no images")


def test_flat_folder_without_labels_for_evaluation(tmp_path):
    _png(tmp_path / "flat" / "a.png")
    _one_line_error(lambda: find_images(tmp_path / "flat"), "flat folder", "--eval-labels")


def test_unreadable_image_names_the_file_or_is_skipped(tmp_path):
    root = _folder(tmp_path / "set")
    bad = root / "dog" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    imgs = find_images(root)
    text = _one_line_error(lambda: prepare_images(imgs, digits_preprocess()), str(bad), "--skip-bad-images")
    assert text.startswith("--eval: cannot read image")
    ok = prepare_images(imgs, digits_preprocess(), skip_bad_images=True)
    assert len(ok) == 6 and [s["file"] for s in ok.skipped] == ["dog/broken.png"]
    assert ok.describe()["skipped_images"] == 1 and "dog/broken.png" not in ok.files
    truncated = root / "cat" / "cut.png"
    shutil.copy(root / "cat" / "0.png", truncated)
    truncated.write_bytes(truncated.read_bytes()[:40])
    _one_line_error(lambda: prepare_images(find_images(root), digits_preprocess(), skip_bad_images=False), "cut.png")


def test_more_classes_than_model_outputs(digits, tmp_path):
    _one_line_error(
        lambda: find_images(digits.val, num_classes=5), "has 10 class folders", "5 outputs", "--eval-labels"
    )
    prepared = prepare_images(find_images(digits.val), digits_preprocess(), limit=20)
    _one_line_error(lambda: check_classes(prepared, 5), "class index 9", "5 outputs")
    check_classes(prepared, 10)


def test_labels_file_problems(tmp_path):
    root = _folder(tmp_path / "set", ("n01", "n02"))
    bad = tmp_path / "bad.txt"
    bad.write_text("n01 0\nn02 12\n")
    _one_line_error(
        lambda: find_images(root, labels_file=bad, num_classes=10), "line 2", "'n02' is class 12", "10 outputs"
    )
    partial = tmp_path / "partial.txt"
    partial.write_text("n01 0\nn99 1\n")
    _one_line_error(lambda: find_images(root, labels_file=partial), "no class for class folder 'n02'")
    other = tmp_path / "other.txt"
    other.write_text("x 0\ny 1\n")
    _one_line_error(lambda: find_images(root, labels_file=other), "names none of the class folders")
    mixed = tmp_path / "mixed.txt"
    mixed.write_text("n01 0\nn02 goldfish\n")
    _one_line_error(lambda: find_images(root, labels_file=mixed), "line 2", "mixes")
    twice = tmp_path / "twice.txt"
    twice.write_text("n01 0\nn01 1\n")
    _one_line_error(lambda: find_images(root, labels_file=twice), "listed twice")
    _one_line_error(lambda: find_images(root, labels_file=tmp_path / "missing.txt"), "--eval-labels", "no such file")
    bad_json = tmp_path / "l.json"
    bad_json.write_text('{"n01": "zero"}')
    _one_line_error(lambda: find_images(root, labels_file=bad_json), "JSON object of name -> class index")


def test_class_folders_the_model_cannot_be_mapped_to_need_a_labels_file(tmp_path):
    root = tmp_path / "pets"
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(root / name / "a.png")
    _one_line_error(lambda: find_images(root, num_classes=1000), "2 class folders (cat, dog)", "--eval-labels")
    labels = tmp_path / "labels.txt"
    labels.write_text("cat 281\ndog 207\n")
    assert find_images(root, labels_file=labels, num_classes=1000).labels == [281, 207]
