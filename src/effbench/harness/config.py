"""Typed configuration of one cell (model x backend x device x batch x precision x scenario).

Defaults come from effbench.harness.defaults, the one place they are stated (the command line reads
them there too).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from effbench.core.probes import gate
from effbench.core.scenarios import SCENARIOS as SCENARIO_REGISTRY
from effbench.core.scenarios import get_scenario
from effbench.core.scenarios import own_settings as scenario_settings
from effbench.core.settings import MeasureSettings
from effbench.harness import flags
from effbench.harness.defaults import RUN_DEFAULTS as DEFAULTS
from effbench.harness.flags import Flag
from effbench.harness.flags import parse_duration as parse_duration
from effbench.harness.flags import parse_int_list as parse_int_list
from effbench.harness.flags import parse_percent as parse_percent

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
SCENARIOS = tuple(sorted(SCENARIO_REGISTRY))
MAX_BATCH = 4096

# Options that change what is measured go into the configuration hash; these do not.
# The thermal gate, pauses and telemetry set the conditions, not what is measured.
_NOT_HASHED = {
    "tag",
    "timeout_s",
    "db",
    "devices_file",
    "telemetry",
    "max_start_temp",
    "cooldown_timeout_s",
    "cooldown_s",
}
# The settings hashed even at their defaults (every stored hash was made with them). Any other one is
# hashed only when it is not at its default, so that adding a setting keeps every stored hash.
_HASHED_ALWAYS = frozenset(
    {
        *("model", "backend", "device", "scenario", "batch_size", "precision", "threads", "cpus", "input_size"),
        *("warmup_s", "warmup_iters", "duration_s", "min_iters", "max_iters", "target_ci", "max_duration_s"),
        *("requests", "profile_iters", "compile", "pretrained", "weights", "parity", "seed", "options"),
        *("channels_last", "cuda_graph", "energy_window_s", "calib", "calib_size", "eval", "eval_labels"),
        *("eval_limit", "skip_bad_images", "max_drop", "max_fallback", "crop_pct", "interpolation", "mean", "std"),
    }
)


class RunConfig(BaseModel):
    """One cell. A field with a Flag is a `bench run` option (commands/run.py generates them): adding a
    run setting is adding a field here, with its default in harness/defaults.py."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: Annotated[str, Flag("--model", "-m", help="Card name, timm:<name>, path.onnx, or package.module:factory.")]
    backend: Annotated[str, Flag("--backend", "-b", help="Backend name or alias (`bench backends`).")]
    device: Annotated[str, Flag("--device", help="cpu, cuda:0, or a devices.yaml name.")] = DEFAULTS["device"]
    # before batch_size: a command line's cells go size by size, each with every batch
    input_size: Annotated[
        int | None,
        Field(ge=8, le=4096),
        Flag(
            "--input-size",
            help="Input resolution, or a list: 160,224,288 (one cell each; export cached per size).",
            example="--input-size 224 or 160,224,288",
            parse=flags.int_list("size in pixels", "size", "expected a size or a comma list of sizes"),
            expands=True,
        ),
    ] = DEFAULTS["input_size"]
    batch_size: Annotated[
        int,
        Field(ge=1, le=MAX_BATCH),
        Flag(
            "--batch",
            help="Batch size, or a list: 1,8,32 (one cell each).",
            example="--batch 1,8,32",
            parse=flags.int_list("positive integer", "batch size", "expected a comma list of positive integers"),
            expands=True,
        ),
    ] = DEFAULTS["batch_size"]
    precision: Annotated[
        Literal["fp32", "fp16", "bf16", "int8"],
        Flag("--precision", help="fp32 | bf16 | fp16 | int8 (set explicitly in the runtime; int8 is calibrated)."),
    ] = DEFAULTS["precision"]
    scenario: Annotated[  # a registered scenario (effbench.core.scenarios)
        str,
        Flag(
            "--scenario",
            help="latency (one at a time) | throughput (requests in flight) | sustained (slowdown over --duration) "
            "| MLPerf LoadGen's singlestream | multistream | server | offline.",
        ),
    ] = DEFAULTS["scenario"]
    threads: Annotated[
        int | None,
        Field(ge=1, le=1024),
        Flag("--threads", help="Runtime's own thread setting.", example="--threads 2"),
    ] = DEFAULTS["threads"]
    cpus: Annotated[  # big / little: resolved on the device
        list[int] | Literal["big", "little"] | None,
        Flag(
            "--cpus",
            help="Pin the worker to these CPUs, e.g. 0,1 or 0-3, or to a big.LITTLE cluster: big | little.",
            example="--cpus 0,1",
            parse=flags.cpus,
        ),
    ] = DEFAULTS["cpus"]
    warmup_s: Annotated[
        float,
        Field(ge=0, le=3600),
        Flag("--warmup", help="Warm-up seconds (also --warmup-iters).", example="--warmup 1"),
    ] = DEFAULTS["warmup_s"]
    warmup_iters: Annotated[
        int,
        Field(ge=0, le=10_000_000),
        Flag("--warmup-iters", help="Minimum warm-up iterations.", example="--warmup-iters 10"),
    ] = DEFAULTS["warmup_iters"]
    duration_s: Annotated[
        float,
        Field(gt=0, le=86_400),
        Flag(
            "--duration",
            help="Minimum measuring time: seconds, or 90s, 10m, 1h.",
            example="--duration 3 or --duration 10m",
            parse=flags.seconds,
        ),
    ] = DEFAULTS["duration_s"]
    min_iters: Annotated[
        int,
        Field(ge=1, le=100_000_000),
        Flag("--min-iters", help="Minimum measured iterations.", example="--min-iters 30"),
    ] = DEFAULTS["min_iters"]
    max_iters: Annotated[
        int,
        Field(ge=1, le=100_000_000),
        Flag(
            "--max-iters", help="Stop after this many iterations (bounds stored samples).", example="--max-iters 200000"
        ),
    ] = DEFAULTS["max_iters"]
    target_ci: Annotated[  # relative half-width of the median's 95% CI
        float | None,
        Field(gt=0, lt=1),
        Flag(
            "--target-ci",
            help="Measure until the median's 95% CI half-width is within this, e.g. 1%.",
            example="--target-ci 1%",
            parse=flags.parse_percent,
        ),
    ] = DEFAULTS["target_ci"]
    max_duration_s: Annotated[
        float,
        Field(gt=0, le=86_400),
        Flag("--max-duration", help="Upper bound on measuring seconds with --target-ci.", example="--max-duration 60"),
    ] = DEFAULTS["max_duration_s"]
    requests: Annotated[
        int | None,
        Field(ge=1, le=1024),
        Flag("--requests", help="Requests in flight (throughput).", example="--requests 4"),
    ] = DEFAULTS["requests"]
    profile_iters: int | None = Field(DEFAULTS["profile_iters"], ge=1, le=100_000)  # `bench profile`'s own
    window_s: Annotated[
        float | None,
        Field(gt=0, le=86_400),
        Flag(
            "--window",
            help="Sustained scenario: window length, e.g. 60s (default: a tenth of --duration, <= 60s).",
            example="--window 60s",
            parse=flags.seconds,
            elsewhere="measures in windows",
        ),
    ] = DEFAULTS["window_s"]
    target_qps: Annotated[
        float | None,
        Field(gt=0, le=10_000_000),
        Flag(
            "--target-qps",
            help="LoadGen server: queries/s offered (default: half a short latency run's rate).",
            example="--target-qps 100",
            parse=flags.number,
        ),
    ] = DEFAULTS["target_qps"]
    latency_bound_ms: Annotated[
        float | None,
        Field(gt=0, le=3_600_000),
        Flag(
            "--latency-bound",
            help="LoadGen server: the p99 bound, e.g. 15ms (a bare number is ms).",
            example="--latency-bound 15ms",
            parse=flags.milliseconds,
        ),
    ] = DEFAULTS["latency_bound_ms"]
    samples_per_query: Annotated[
        int,
        Field(ge=1, le=4096),
        Flag("--samples-per-query", help="LoadGen multistream: frames per query.", example="--samples-per-query 8"),
    ] = DEFAULTS["samples_per_query"]
    telemetry: Annotated[
        bool, Flag("--telemetry/--no-telemetry", help="Read temperatures, clocks and load around cells.")
    ] = DEFAULTS["telemetry"]
    max_start_temp: Annotated[  # thermal gate, C
        float | None,
        Flag(
            "--max-start-temp",
            help="Thermal gate: wait until the hottest sensor is below this many C.",
            example="--max-start-temp 45",
        ),
    ] = DEFAULTS["max_start_temp"]
    cooldown_timeout_s: Annotated[
        float,
        Field(ge=0, le=86_400),
        Flag(
            "--cooldown-timeout",
            help="Thermal gate: wait at most this long (then go on, with a warning).",
            example="--cooldown-timeout 10m",
            parse=flags.seconds,
        ),
    ] = DEFAULTS["cooldown_timeout_s"]
    cooldown_s: Annotated[
        float,
        Field(ge=0, le=86_400),
        Flag(
            "--cooldown",
            help="Pause this long before each cell, e.g. 30s.",
            example="--cooldown 30s",
            parse=flags.seconds,
        ),
    ] = DEFAULTS["cooldown_s"]
    compile: Annotated[bool, Flag("--compile", help="torch.compile the model (torch backend).")] = DEFAULTS["compile"]
    pretrained: Annotated[
        bool, Flag("--pretrained", help="Pretrained timm weights (local hub cache first; needs network otherwise).")
    ] = DEFAULTS["pretrained"]
    weights: Annotated[  # a state_dict file, resolved to an absolute path
        str | None, Flag("--weights", help="A state_dict (.pth/.pt or .safetensors) to load.")
    ] = DEFAULTS["weights"]
    parity: Annotated[bool, Flag("--parity/--no-parity", help="Compare outputs with the reference.")] = DEFAULTS[
        "parity"
    ]
    seed: Annotated[int, Flag("--seed", help="Seed of random weights and inputs.")] = DEFAULTS["seed"]
    options: dict[str, str] = Field(default_factory=dict)  # --opt, typed per backend (backends.*.Options)
    channels_last: Annotated[bool, Flag("--channels-last", help="channels_last (torch).")] = DEFAULTS["channels_last"]
    cuda_graph: Annotated[bool, Flag("--cuda-graph", help="Capture a CUDA graph (torch, TensorRT).")] = DEFAULTS[
        "cuda_graph"
    ]
    energy_window_s: Annotated[
        float,
        Field(gt=0, le=3600),
        Flag("--energy-window", help="Seconds per energy window (NVML).", example="--energy-window 10"),
    ] = DEFAULTS["energy_window_s"]
    calib: Annotated[str | None, Flag("--calib", help="int8 calibration images: an ImageFolder or a folder.")] = (
        DEFAULTS["calib"]
    )
    calib_size: Annotated[
        int,
        Field(ge=1, le=1_000_000),
        Flag("--calib-size", help="Calibration images to use.", example="--calib-size 300"),
    ] = DEFAULTS["calib_size"]
    eval: Annotated[
        str | None, Flag("--eval", help="Measure top-1/top-5 on this ImageFolder, on the timed engine.")
    ] = DEFAULTS["eval"]
    eval_labels: Annotated[
        str | None, Flag("--eval-labels", help="File mapping folder or file names to the model's class indices.")
    ] = DEFAULTS["eval_labels"]
    eval_limit: Annotated[
        int | None,
        Field(ge=1),
        Flag("--eval-limit", help="Evaluate at most this many images.", example="--eval-limit 1000"),
    ] = DEFAULTS["eval_limit"]
    skip_bad_images: Annotated[bool, Flag("--skip-bad-images", help="Count and skip unreadable images.")] = DEFAULTS[
        "skip_bad_images"
    ]
    max_drop: Annotated[  # accuracy-aware int8: tolerated top-1 drop, points
        float | None,
        Field(gt=0, lt=100),
        Flag(
            "--max-drop",
            help="int8 on openvino: accuracy-aware quantisation within this top-1 drop, e.g. 1%.",
            example="--max-drop 1%",
            parse=flags.percent_points,
        ),
    ] = DEFAULTS["max_drop"]
    # a run fails when more than this % of the model (MACs, else nodes) ran outside the requested
    # delegate/device or precision (the backend's placement summary)
    max_fallback: Annotated[
        float | None,
        Field(ge=0, le=100),
        Flag(
            "--max-fallback",
            help="Fail the run (exit 1, recorded) when more than this share of the model ran outside the "
            "requested delegate/device or precision, e.g. 5%.",
            parse=flags.percent_points,
        ),
    ] = DEFAULTS["max_fallback"]
    # preprocessing of --eval / --calib images where the model's own data configuration does not say (or to override it)
    crop_pct: Annotated[
        float | None,
        Field(gt=0, le=1),
        Flag("--crop-pct", help="Image preprocessing: centre-crop fraction (default: the model's, else 0.875)."),
    ] = DEFAULTS["crop_pct"]
    interpolation: Annotated[
        Literal["bilinear", "bicubic", "nearest"] | None,
        Flag("--interpolation", help="Resize: bilinear | bicubic | nearest."),
    ] = DEFAULTS["interpolation"]
    mean: Annotated[str | None, Flag("--mean", help="Normalisation mean, e.g. 0.485,0.456,0.406 (ImageNet's).")] = (
        DEFAULTS["mean"]
    )
    std: Annotated[str | None, Flag("--std", help="Normalisation std, e.g. 0.229,0.224,0.225 (ImageNet's).")] = (
        DEFAULTS["std"]
    )
    timeout_s: Annotated[
        float,
        Field(gt=0, le=7 * 86_400),
        Flag("--timeout", help="Kill the worker after this many seconds.", example="--timeout 900"),
    ] = DEFAULTS["timeout_s"]
    tag: str | None = DEFAULTS["tag"]  # --tag (commands/options.py: shared by every command that stores)
    db: str | None = None
    devices_file: str | None = None

    @field_validator("cpus")
    @classmethod
    def _cpus(cls, v, info: ValidationInfo):
        if v is None:
            return v
        if not isinstance(v, str):
            if not v or any(c < 0 for c in v):
                raise ValueError("cpus must be a non-empty list of CPU indices >= 0")
            v = sorted(set(v))
        # a devices.yaml name may be an ssh device with CPUs of its own: harness/prepare.check_cell decides
        why = local_cpus_problem(v) if runs_here(info.data.get("device", "")) else None
        if why:
            raise ValueError(why)
        return v

    @field_validator("duration_s", "window_s", "cooldown_s", "cooldown_timeout_s", mode="before")
    @classmethod
    def _duration_units(cls, v):
        if isinstance(v, str):  # a sweep file may say 10m or 60s
            return parse_duration(v) if v.strip() else None
        return v

    @field_validator("scenario")
    @classmethod
    def _known_scenario(cls, v):
        if v not in SCENARIO_REGISTRY:
            raise ValueError(f"unknown scenario; known: {', '.join(SCENARIOS)}")
        return v

    @field_validator("max_start_temp")
    @classmethod
    def _plausible_temp(cls, v):
        why = gate.check_limit(v)
        if why:
            raise ValueError(why)
        return v

    @model_validator(mode="after")
    def _scenario_accepts(self):
        scenario = get_scenario(self.scenario)
        for name in set(scenario_settings()) - set(scenario.own_settings):
            # another scenario's setting (a sweep gives it to every cell): unused here, and back at its default
            # so that it neither reaches the worker nor changes the configuration hash
            setattr(self, name, DEFAULTS[name])
        settings = MeasureSettings(
            runtime=self.backend,
            input_shape=[self.batch_size],
            scenario=self.scenario,
            duration_s=self.duration_s,
            **{name: getattr(self, name) for name in scenario.own_settings},
        )
        why = scenario.check(settings)
        if why:
            raise ValueError(f"--scenario {self.scenario}: {why}")
        return self._timeout_covers_the_waits(scenario.certain_s(settings))

    def _timeout_covers_the_waits(self, scenario_s: float):
        """A long sustained run, a pause and a thermal gate's wait all happen inside the cell's
        --timeout: the default grows to cover them; a --timeout given that cannot is refused."""
        waits = scenario_s + self.cooldown_s + (self.cooldown_timeout_s if self.max_start_temp is not None else 0.0)
        if not waits:
            return self
        if self.timeout_s == DEFAULTS["timeout_s"]:
            self.timeout_s = DEFAULTS["timeout_s"] + waits
        elif self.timeout_s < waits:
            raise ValueError(
                f"--timeout {self.timeout_s:g} s is shorter than the cell's sustained run, pause and thermal gate "
                f"({waits:g} s): give a longer --timeout"
            )
        return self

    @field_validator("options", mode="before")
    @classmethod
    def _option_strings(cls, v):
        if isinstance(v, dict):  # a sweep file may give numbers and booleans
            return {str(k): str(val).lower() if isinstance(val, bool) else str(val) for k, val in v.items()}
        return v

    @field_validator("backend")
    @classmethod
    def _canonical_backend(cls, v):
        from effbench.backends.registry import canonical_name

        return canonical_name(v)

    @field_validator("weights", "calib", "eval", "eval_labels")
    @classmethod
    def _absolute(cls, v):
        return os.path.abspath(os.path.expanduser(v)) if v else v

    def config_hash(self) -> str:
        fields = type(self).model_fields
        data = {
            k: v
            for k, v in self.model_dump().items()
            if k not in _NOT_HASHED and (k in _HASHED_ALWAYS or v != fields[k].get_default(call_default_factory=True))
        }
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def label(self) -> str:
        return (
            f"{self.model} | {self.backend} | {self.device} | b{self.batch_size} | {self.precision} | {self.scenario}"
        )

    def to_dict(self) -> dict[str, Any]:
        d = self.model_dump()
        if d.get("db"):
            from effbench.harness.urls import redact

            d["db"] = redact(d["db"])
        return d


def runs_here(device: str) -> bool:
    """Whether the device is this machine by its very name (a devices.yaml name may be remote)."""
    return device in ("cpu", "local", "cuda") or device.startswith("cuda:")


def local_cpus_problem(cpus: list[int] | str) -> str | None:
    """Why a worker on this machine cannot be pinned to these CPUs (None: it can)."""
    if isinstance(cpus, str):
        from effbench.core.cell import pinned_cpus

        try:
            pinned_cpus(cpus)
        except ValueError as e:
            return f"{e}; pin to CPU indices instead"
        return None
    usable = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    missing = sorted(set(cpus) - set(usable))
    if missing:
        return f"CPU(s) {', '.join(map(str, missing))} not available here (usable: {','.join(map(str, usable))})"
    return None
