"""How a predictor does on models it has never seen, estimated from its own build.

The correction's leave-one-model-out error keeps the left-out model's kernels in the table (and its
other resolution among the training models), so it says how well the kernel sum and the correction
explain a model whose every kernel was measured. A new architecture is different: most of its kernels
were never measured and come from the regressors. Here the zoo's model names are split into folds;
for each fold, the kernels only its models use leave the table and its models leave the correction's
training set, everything is fitted again, and the fold's models are predicted from the rest.
"""

from __future__ import annotations

import copy
from typing import Any

from effbench.predict.kernels import Kernel
from effbench.predict.predictor import fit
from effbench.predict.stats import accuracy

FOLDS = 6


def unseen_model_cv(data: dict[str, Any], folds: int = FOLDS) -> dict[str, Any] | None:
    """Accuracy statistics (stats.accuracy) of predicting each zoo model with its name's fold left
    out of the build, or None with fewer model names than folds."""
    models = data.get("training_models") or []
    names = sorted({m["model"] for m in models})
    if len(names) < folds:
        return None
    predicted, measured = [], []
    for f in range(folds):
        left_out = set(names[f::folds])
        train = [m for m in models if m["model"] not in left_out]
        kept = {k["signature"] for m in train for k in m["kernel_list"]}
        fold = {key: value for key, value in data.items() if key not in ("table", "training_models")}
        fold["table"] = [r for r in data["table"] if r["signature"] in kept]
        fold["training_models"] = copy.deepcopy(train)
        predictor = fit(fold)
        for m in models:
            if m["model"] in left_out:
                predicted.append(predictor.predict([Kernel.from_dict(k) for k in m["kernel_list"]]).total_ns)
                measured.append(float(m["measured_ns"]))
    return {**accuracy(predicted, measured), "folds": folds}
