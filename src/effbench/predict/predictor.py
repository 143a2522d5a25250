"""A per-device latency predictor: the measured kernel table, one regressor per kernel type, and a
per-model correction learned on whole models; saved as one JSON file a teammate can import.

A kernel whose signature is in the table is predicted by its measurement; any other by its type's
regressor; a kernel of a type nothing measured is unknown (and said). The whole model is
    c0 + c1 * kernels + sum over types t of b_t * (predicted time of the kernels of type t),
with c0 the per-inference cost, c1 the per-kernel dispatch cost and b_t how a type's kernels run in
a model against alone, fitted on the build's zoo models (relative least squares, b_t drawn to 1).
"""

from __future__ import annotations

import datetime
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from effbench.errors import UsageError, safe_name
from effbench.predict.kernels import Kernel, features_of

FORMAT = "effbench-predictor"
VERSION = 1
MIN_BOOSTED = 20  # rows of a kernel type below which a log-linear fit replaces gradient boosting
LAMBDAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0)
RIDGE = 1e-2  # per row, on the log-linear slopes (features are log2 sizes, of order 10-30)
EXTRAPOLATE = 4.0  # how far past its measured times a log-linear kernel type may predict


def predictors_dir() -> Path:
    from effbench.paths import state_dir

    return state_dir() / "predictors"


def predictor_id(backend: str, device: str) -> str:
    return f"{backend}-{device}".replace("/", "_").replace(":", "_")


# --------------------------------------------------------------------------- per-kernel regressors
def _target(ns: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(ns, 0.0) / 1e3)


def _untarget(y: np.ndarray) -> np.ndarray:
    return np.expm1(y) * 1e3


def fit_regressor(rows: list[dict[str, Any]]) -> dict[str, Any]:
    x = np.array([r["features"] for r in rows], dtype=float)
    ns = np.array([r["kernel_ns"] for r in rows], dtype=float)
    y = _target(ns)
    if len(rows) >= MIN_BOOSTED:
        import lightgbm

        model = lightgbm.LGBMRegressor(
            n_estimators=400,
            learning_rate=0.05,
            num_leaves=31,
            min_child_samples=3,
            subsample=1.0,
            colsample_bytree=1.0,
            deterministic=True,
            verbose=-1,
            random_state=0,
        )
        model.fit(x, y)
        return {"kind": "lightgbm", "rows": len(rows), "model": model.booster_.model_to_string()}
    if len(rows) >= 3:  # log time against log work and log traffic
        a = np.column_stack([np.ones(len(x)), x[:, 0], x[:, 1] + x[:, 2]])
        # work and traffic move together: a light ridge keeps their slopes from cancelling each other out
        ridge = np.diag([0.0, RIDGE, RIDGE]) * len(rows)
        coef = np.linalg.solve(a.T @ a + ridge, a.T @ y)
        return {
            "kind": "loglinear",
            "rows": len(rows),
            "coef": coef.tolist(),
            "range_ns": [float(np.min(ns)), float(np.max(ns))],
        }
    return {"kind": "median", "rows": len(rows), "value": float(np.median(y))}


class _Regressor:
    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.booster = None
        if spec["kind"] == "lightgbm":
            import lightgbm

            self.booster = lightgbm.Booster(model_str=spec["model"])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        kind = self.spec["kind"]
        if kind == "lightgbm" and self.booster is not None:
            y = self.booster.predict(x)
        elif kind == "loglinear":
            c = self.spec["coef"]
            y = c[0] + c[1] * x[:, 0] + c[2] * (x[:, 1] + x[:, 2])
            if "range_ns" in self.spec:  # a few rows predict at most EXTRAPOLATE times past what they measured
                lo, hi = self.spec["range_ns"]
                return np.clip(_untarget(y), lo / EXTRAPOLATE, hi * EXTRAPOLATE)
        else:
            y = np.full(len(x), self.spec["value"])
        return _untarget(np.asarray(y, dtype=float))


# --------------------------------------------------------------------------- the model-level correction
def _design(models: list[dict[str, Any]], types: list[str]) -> tuple[np.ndarray, np.ndarray]:
    x = np.array([[1.0, float(m["kernels"])] + [float(m["sums"].get(t, 0.0)) for t in types] for m in models])
    y = np.array([float(m["measured_ns"]) for m in models])
    return x, y


def _solve(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """Relative least squares with b_t drawn to 1 (weight lam) and c0, c1 lightly to 0."""
    a = x / y[:, None]
    scale = np.sqrt(np.mean(a**2, axis=0))
    scale[scale == 0] = 1.0
    a_s = a / scale
    prior_w = np.full(x.shape[1], math.sqrt(lam))
    prior_w[:2] = math.sqrt(lam) * 0.1
    prior_t = np.concatenate([[0.0, 0.0], np.ones(x.shape[1] - 2)]) * scale  # in scaled units
    big_a = np.vstack([a_s, np.diag(prior_w)])
    big_y = np.concatenate([np.ones(len(y)), prior_w * prior_t])
    beta_s, *_ = np.linalg.lstsq(big_a, big_y, rcond=None)
    beta = beta_s / scale
    beta[:2] = np.maximum(beta[:2], 0.0)
    beta[2:] = np.clip(beta[2:], 0.2, 5.0)
    return beta


def fit_correction(models: list[dict[str, Any]]) -> dict[str, Any]:
    """c0, c1 and b_t, with lambda chosen by leave-one-model-out error, and the band of
    measured/predicted ratios that error left (its 5th and 95th percentiles)."""
    types = sorted({t for m in models for t, v in m["sums"].items() if v > 0})
    if len(models) < 3:
        return {
            "c0_ns": 0.0,
            "per_kernel_ns": 0.0,
            "scale": {t: 1.0 for t in types},
            "band": [0.8, 1.25],
            "lambda": None,
            "loo": None,
        }
    x, y = _design(models, types)
    best: tuple[float, float, np.ndarray] | None = None
    for lam in LAMBDAS:
        pred = np.empty(len(y))
        for i in range(len(y)):
            keep = np.arange(len(y)) != i
            pred[i] = x[i] @ _solve(x[keep], y[keep], lam)
        err = float(np.sqrt(np.mean(((pred - y) / y) ** 2)))
        if best is None or err < best[0]:
            best = (err, lam, pred)
    assert best is not None  # LAMBDAS is not empty
    err, lam, pred = best
    beta = _solve(x, y, lam)
    ratios = y / pred
    from effbench.predict.stats import accuracy

    return {
        "c0_ns": float(beta[0]),
        "per_kernel_ns": float(beta[1]),
        "scale": {t: float(b) for t, b in zip(types, beta[2:])},
        "lambda": lam,
        "band": [float(np.quantile(ratios, 0.05)), float(np.quantile(ratios, 0.95))],
        "loo": accuracy(pred, y),
    }


# --------------------------------------------------------------------------- prediction
UNKNOWN_WARN_SHARE = 0.10  # an unknown FLOPs share from which a prediction says it is partial


@dataclass
class KernelPrediction:
    kernel: Kernel
    ns: float | None  # in the model (after its type's scale); None: unknown
    source: str  # "table" | "regressor" | "unknown"


@dataclass
class Prediction:
    total_ns: float
    low_ns: float
    high_ns: float
    kernel_sum_ns: float  # the kernels alone, before the per-model correction
    overhead_ns: float  # c0 + c1 * kernels
    kernels: list[KernelPrediction]
    unknown: dict[str, Any] = field(default_factory=dict)

    @property
    def ms(self) -> float:
        return self.total_ns / 1e6

    @property
    def measured_kernels(self) -> int:
        """Kernels whose time comes from a measurement (the table, or a regressor fitted on it)."""
        return sum(kp.source != "unknown" for kp in self.kernels)

    def refusal(self, model: str, predictor_id: str) -> str | None:
        """Why this is no prediction at all (nothing of the model was measured), with what to build."""
        if self.kernels and self.measured_kernels:
            return None
        ops = ", ".join(self.unknown.get("ops", [])[:6]) or "none"
        return (
            f"predictor {predictor_id} has no measured kernel for {model} (its {len(self.kernels)} kernel(s), "
            f"operators {ops}, were never measured): build on it with `bench predictor build --zoo {model}` "
            "(or rerun a cut build to resume it)"
        )

    def unknown_warning(self, model: str) -> str | None:
        """Said before the number when a large share of the model's FLOPs has no time in it."""
        share = float(self.unknown.get("flops_share", 0.0))
        if share < UNKNOWN_WARN_SHARE:
            return None
        return (
            f"{share:.0%} of {model}'s FLOPs ({self.unknown['kernels']} of {self.unknown['of']} kernels) are in "
            "kernels this predictor never measured: their time is missing from the number below"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "predicted_ms": self.total_ns / 1e6,
            "low_ms": self.low_ns / 1e6,
            "high_ms": self.high_ns / 1e6,
            "kernel_sum_ms": self.kernel_sum_ns / 1e6,
            "overhead_ms": self.overhead_ns / 1e6,
            "unknown": self.unknown,
            "layers": [
                {
                    "type": kp.kernel.type,
                    "nodes": kp.kernel.nodes,
                    "config": kp.kernel.describe(),
                    "ms": None if kp.ns is None else kp.ns / 1e6,
                    "source": kp.source,
                }
                for kp in self.kernels
            ],
        }


@dataclass
class Predictor:
    data: dict[str, Any]
    _regressors: dict[str, _Regressor] = field(default_factory=dict, repr=False)

    @property
    def id(self) -> str:
        return self.data["id"]

    @property
    def backend(self) -> str:
        return self.data["backend"]

    @property
    def device(self) -> str:
        return self.data["device"]

    @property
    def validation(self) -> dict[str, Any] | None:
        return self.data.get("validation")

    def accuracy_line(self) -> str:
        """The validation, or where there is none, that and the build's estimate for unseen models."""
        from effbench.predict.stats import describe, describe_unseen

        text = describe(self.validation)
        unseen = describe_unseen(self.data["correction"].get("unseen"))
        if unseen and not (self.validation or {}).get("models"):
            text += f"; {unseen}"
        return text

    def table(self) -> dict[str, float]:
        return {r["signature"]: float(r["kernel_ns"]) for r in self.data["table"]}

    def regressor(self, kind: str) -> _Regressor | None:
        if kind not in self._regressors and kind in self.data["regressors"]:
            self._regressors[kind] = _Regressor(self.data["regressors"][kind])
        return self._regressors.get(kind)

    def kernel_times(self, kernels: list[Kernel]) -> list[tuple[float | None, str]]:
        """Each kernel alone, as measured (table) or regressed; (None, "unknown") when neither."""
        table = self.table()
        out: list[tuple[float | None, str]] = [
            (table[k.signature], "table") if k.signature in table else (None, "unknown") for k in kernels
        ]
        by_type: dict[str, list[int]] = {}
        for i, (k, (ns, _)) in enumerate(zip(kernels, out)):
            if ns is None and k.covered:
                by_type.setdefault(k.type, []).append(i)
        for kind, idx in by_type.items():
            reg = self.regressor(kind)
            if reg is None:
                continue
            values = reg(np.array([features_of(kernels[i].to_dict()) for i in idx], dtype=float))
            for i, v in zip(idx, values):
                out[i] = (float(max(v, 0.0)), "regressor")
        return out

    def predict(self, kernels: list[Kernel]) -> Prediction:
        corr = self.data["correction"]
        scale = corr["scale"]
        parts = []
        for k, (ns, source) in zip(kernels, self.kernel_times(kernels)):
            parts.append(KernelPrediction(k, None if ns is None else ns * scale.get(k.type, 1.0), source))
        kernel_sum = sum(kp.ns for kp in parts if kp.ns is not None)
        overhead = corr["c0_ns"] + corr["per_kernel_ns"] * len(kernels)
        total = overhead + kernel_sum
        lo, hi = self.band()
        missing = [kp for kp in parts if kp.ns is None]
        unknown: dict[str, Any] = {}
        if missing:
            flops = sum(k.flops for k in kernels) or 1
            unknown = {
                "kernels": len(missing),
                "of": len(kernels),
                "ops": sorted({op for kp in missing for op in kp.kernel.ops}),
                "flops_share": sum(kp.kernel.flops for kp in missing) / flops,
            }
        return Prediction(total, total * lo, total * hi, kernel_sum, overhead, parts, unknown)

    def band(self) -> tuple[float, float]:
        """measured/predicted ratios expected for 90% of models: the leave-one-out band of the build,
        widened to the held-out error when the predictor was validated, else to the build's own
        estimate for unseen models (crossval)."""
        lo, hi = self.data["correction"]["band"]
        val = self.validation or self.data["correction"].get("unseen") or {}
        if val.get("abs_error_p90") is not None:
            e = val["abs_error_p90"]
            lo, hi = min(lo, 1 / (1 + e)), max(hi, 1 / max(1 - e, 0.05))
        return 1 / hi, 1 / lo  # predicted-time multipliers: measured = predicted * ratio

    # ----------------------------------------------------------------------- files
    def save(self, path: Path | None = None) -> Path:
        path = path or predictors_dir() / f"{self.id}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.data))
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, path: Path) -> Predictor:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise UsageError(f"predictor file {path} not found") from None
        except (OSError, ValueError) as e:
            raise UsageError(
                f"{path} is not a predictor file ({type(e).__name__}); export one with `bench predictor export`"
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UsageError(f"{path} is not an effbench predictor file; export one with `bench predictor export`")
        if int(data.get("version", 0)) > VERSION:
            raise UsageError(
                f"{path} is a predictor of format version {data.get('version')}, newer than this "
                f"effbench reads ({VERSION}); upgrade effbench"
            )
        for key in ("id", "backend", "device", "identity", "table", "regressors", "correction"):
            if key not in data:
                raise UsageError(f"{path} is an incomplete predictor file (no {key!r}); rebuild or re-export it")
        for key in ("backend", "device"):
            if not isinstance(data[key], str):
                raise UsageError(f"{path}: {key} must be a name (got {type(data[key]).__name__})")
        if data["id"] != predictor_id(data["backend"], data["device"]):
            raise UsageError(
                f"{path}: id {str(data['id'])[:60]!r} is not the id of its backend and device "
                f"({predictor_id(data['backend'], data['device'])!r}); export the predictor again"
            )
        safe_name(data["id"], "id", path)
        return cls(data)


def new_data(backend: str, device: str, identity: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "id": predictor_id(backend, device),
        "backend": backend,
        "device": device,
        "identity": identity,
        "built": {"at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")},
        "table": [],
        "regressors": {},
        "correction": {},
        "training_models": [],
        "validation": None,
    }


def fit(data: dict[str, Any]) -> Predictor:
    """Fit the regressors on the table and the correction on the training models (in place)."""
    by_type: dict[str, list[dict[str, Any]]] = {}
    for row in data["table"]:
        by_type.setdefault(row["type"], []).append(row)
    data["regressors"] = {kind: fit_regressor(rows) for kind, rows in sorted(by_type.items())}
    data["correction"] = {"c0_ns": 0.0, "per_kernel_ns": 0.0, "scale": {}, "band": [1.0, 1.0]}
    predictor = Predictor(data)
    models = data.get("training_models") or []
    for m in models:
        kernels = [Kernel.from_dict(k) for k in m["kernel_list"]]
        sums: dict[str, float] = {}
        for k, (ns, _) in zip(kernels, predictor.kernel_times(kernels)):
            if ns is not None:
                sums[k.type] = sums.get(k.type, 0.0) + ns
        m["sums"], m["kernels"] = sums, len(kernels)
    data["correction"] = fit_correction(models)
    predictor._regressors.clear()
    return predictor
