"""The build's estimate for unseen models: a fold's own kernels leave the table, and the estimate
widens the interval of a predictor nobody has validated yet. Hand-made tables, no measurement."""

from __future__ import annotations

import pytest

from effbench.predict.crossval import unseen_model_cv
from effbench.predict.kernels import detect, load
from effbench.predict.predictor import fit, new_data
from tests.predict.graphs import tiny_cnn

CHANNELS = [8, 12, 16, 20, 24, 28, 32]


def _data(tmp_path, names, slow=None):
    """Training models named `names`, one tiny CNN width each; a kernel's time is linear in its work,
    except the kernels of `slow`, measured (alone and in its whole model) ten times slower."""
    data = new_data("openvino", "cpu", {"backend_version": "x", "cpu": "y"})
    rows = {}
    for name, c in zip(names, CHANNELS):
        kernels = detect(load(tiny_cnn(tmp_path / f"{name}.onnx", channels=c)))
        factor = 10.0 if name == slow else 1.0
        times = [factor * (2000.0 + k.flops / 50 + (k.bytes_read + k.bytes_written) / 20) for k in kernels]
        for k, ns in zip(kernels, times):
            rows[k.signature] = {"signature": k.signature, "type": k.type, "features": k.features(), "kernel_ns": ns}
        data["training_models"].append(
            {
                "model": name,
                "input_shape": [1, 3, 32, 32],
                "measured_ns": sum(times),
                "flops": sum(k.flops for k in kernels),
                "kernel_list": [k.to_dict() for k in kernels],
            }
        )
    data["table"] = list(rows.values())
    return data


def test_a_left_out_model_is_predicted_without_its_own_kernels(tmp_path):
    names = [f"m{i}" for i in range(6)]
    data = _data(tmp_path, names, slow="m3")
    predictor = fit(data)
    slow = next(m for m in data["training_models"] if m["model"] == "m3")
    from effbench.predict.kernels import Kernel

    whole = predictor.predict([Kernel.from_dict(k) for k in slow["kernel_list"]]).total_ns
    assert whole == pytest.approx(slow["measured_ns"], rel=0.35)  # its own table rows: close to measured
    cv = unseen_model_cv(data)
    assert cv is not None and cv["models"] == len(names) and cv["folds"] == 6
    # left out, m3's kernels come from regressors fitted on the normal models: ten times too fast
    assert cv["max_abs_error"] > 0.6
    assert cv["within_10"] < 1.0


def test_too_few_model_names_give_no_estimate(tmp_path):
    assert unseen_model_cv(_data(tmp_path, ["a", "b", "c"])) is None


def test_an_unvalidated_predictor_says_its_unseen_estimate_and_widens_its_band(tmp_path):
    data = _data(tmp_path, [f"m{i}" for i in range(7)], slow="m5")
    predictor = fit(data)
    narrow = predictor.band()
    data["correction"]["unseen"] = unseen_model_cv(data)
    wide = predictor.band()
    assert wide[0] <= narrow[0] and wide[1] >= narrow[1] and wide != narrow
    assert "on unseen zoo models (6-fold" in predictor.accuracy_line()
    data["validation"] = {"models": 20, "within_10": 0.9, "within_5": 0.5, "rmspe": 0.08, "spearman": 0.99}
    assert "on unseen" not in predictor.accuracy_line()  # a validation is the better figure
