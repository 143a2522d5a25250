"""The backend contract.

A backend is one file that says: its name and aliases, its options (a typed model, validated before
any work), the artifact format it consumes, whether it is usable here (and if not, exactly why),
how to open an artifact into a Session (`effbench.core.session`), and how its per-layer profile maps
back to the ONNX graph. Backends register through the entry-point group `effbench.backends`.

A backend whose `core_runtime` names a runtime of `effbench.core.runtimes` needs no `open` of its
own, and runs on remote devices through the agent as well.

A backend owns its format: `exporter` and `quantizer` name (as "module:function", imported only when a
cell needs them) the function that makes its artifact and the one that makes its int8 artifact; the
export layer and the harness call them without knowing which backend they serve (see `traits`).
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from effbench.core.session import LayerTime, Session, ThroughputRun
from effbench.core.settings import MeasureSettings
from effbench.errors import UsageError

__all__ = [
    "ArtifactRef",
    "Backend",
    "BackendOptions",
    "DelegateOptions",
    "LayerTime",
    "Session",
    "ThroughputRun",
    "package_version",
    "parse_flag",
]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_flag(value: Any) -> bool:
    """'1' / 'true' / 'yes' / 'on' (and their opposites) -> bool, for boolean options."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("expected a boolean: 1/0, true/false, yes/no or on/off")


class BackendOptions(BaseModel):
    """Base of every backend's options: unknown keys are refused, values are typed."""

    model_config = ConfigDict(extra="forbid", frozen=True)


DELEGATES = ("xnnpack", "none")


class DelegateOptions(BackendOptions):
    """The options of a runtime that delegates to XNNPACK (LiteRT, ExecuTorch)."""

    delegate: str = Field("xnnpack", description="xnnpack (default) or none: the runtime's own CPU kernels")

    @field_validator("delegate", mode="before")
    @classmethod
    def _known(cls, v):
        name = str(v).strip().lower()
        if name not in DELEGATES:
            close = difflib.get_close_matches(name, DELEGATES, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"{hint}delegates: {', '.join(DELEGATES)}")
        return name


@dataclass(frozen=True)
class ArtifactRef:
    """What a backend opens: the artifact's format and file, or (torch) how to build the module."""

    format: str
    path: str | None = None
    key: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] | None = None  # kind, target, seed, pretrained, weights: the torch module to build

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "path": self.path, "key": self.key, "meta": self.meta, "model": self.model}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArtifactRef:
        return cls(**data)


class Backend(ABC):
    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    artifact_format: ClassVar[str]  # "torch" | "onnx" | "openvino" | "coreml" | "tensorrt" | "none"
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    devices: ClassVar[tuple[str, ...]] = ("cpu",)  # device kinds it can run on
    description: ClassVar[str] = ""
    Options: ClassVar[type[BackendOptions]] = BackendOptions
    core_runtime: ClassVar[str | None] = None  # a runtime of effbench.core.runtimes (agent-capable)
    packages: ClassVar[tuple[str, ...]] = ()  # distributions whose versions a result records
    preload: ClassVar[tuple[str, ...]] = ()  # modules a fork server imports once for its workers
    maps_by_op_type: ClassVar[bool] = False  # its profile names no ONNX nodes: compared per op type
    # "module:function" that makes the artifact: f(src, input_shape, exporter, **cell) -> export.cache.Artifact;
    # None: the standard exporter of its format, effbench.export.pipeline:<artifact_format>_artifact
    exporter: ClassVar[str | None] = None
    # "module:function" that quantises the fp32 artifact into a target path:
    # f(source_path, target_path, calib, batch_size, options, *, max_drop, validation) -> info dict
    quantizer: ClassVar[str | None] = None
    int8_method: ClassVar[str | None] = None  # the quantiser's name in records and cache keys
    # "module:function" that reads back what ran in int8: f(artifact_path, onnx_path, after, threads) -> dict;
    # None: the session's placement summary says it
    int8_coverage: ClassVar[str | None] = None
    accuracy_aware_int8: ClassVar[bool] = False  # its quantiser takes --max-drop with --eval as validation
    does_work: ClassVar[bool] = True  # False: it measures the harness itself (no artifact, no energy)
    reads_runtime_graph_for_int8: ClassVar[bool] = False  # int8 coverage needs Session.runtime_graph()

    @abstractmethod
    def version(self) -> str | None:
        """The runtime's version, or None when it is not installed."""

    def unavailable_reason(self, device: str = "cpu") -> str | None:
        """None when usable on `device`; otherwise why not, in words a user can act on."""
        if self.version() is None:
            return f"{self.name} runtime not installed"
        kind = device.split(":")[0]
        if kind not in self.devices:
            return f"{self.name} does not run on {device!r} (runs on: {', '.join(self.devices)})"
        return None

    def exporter_ref(self) -> str:
        return self.exporter or f"effbench.export.pipeline:{self.artifact_format}_artifact"

    def traits(self) -> dict[str, Any]:
        """What the backend declares about itself: whether it does work, which precisions, devices and
        artifact format, and which int8 quantiser (bench backends shows them)."""
        return {
            "does_work": self.does_work,
            "precisions": list(self.precisions),
            "devices": list(self.devices),
            "format": self.artifact_format,
            "int8": self.int8_method if self.quantizer else None,
        }

    def quant_settings(self, options: BackendOptions | None) -> dict[str, Any]:
        """The int8 quantiser's settings from the typed options: what is recorded and goes into the
        quantised artifact's cache key."""
        return {}

    def check_precision(self, precision: str, device: str = "cpu") -> str | None:
        if precision not in self.precisions:
            return f"{self.name} on {device} runs {', '.join(self.precisions)}, not {precision}"
        return None

    def runtime_options(self, options: BackendOptions, cell: Any) -> dict[str, Any]:
        """What the session needs (MeasureSettings.runtime_options) of the typed options and of the
        cell's configuration (`cell`: device, precision, scenario and the run flags)."""
        return options.model_dump(exclude_none=True)

    def open(self, artifact: ArtifactRef, settings: MeasureSettings) -> Session:
        """Load the artifact for inputs of settings.input_shape with the settings' threads and precision."""
        if self.core_runtime is None:
            raise NotImplementedError(f"backend {self.name!r} has no core runtime: it must implement open()")
        from effbench.core.runtimes import open_session

        return open_session(self.core_runtime, str(artifact.path), settings)

    def map_profile(self, layers: list[LayerTime], graph, runtime_graph: Any):
        """The hook of the per-layer mapping: `layers` of a profile onto `graph` (a
        backends.profiling.OnnxGraph), helped by `runtime_graph` (what Session.runtime_graph gave).
        By default kernels are matched to ONNX nodes by name."""
        from effbench.backends.profiling import map_by_name

        return map_by_name(self.name, layers, graph)

    def kernel_op_type(self, layer_name: str) -> str | None:
        """For a backend that maps by op type: the ONNX op type a kernel stands for."""
        return None

    # --- options -----------------------------------------------------------------------------

    def parse_options(self, raw: dict[str, str], extra: type[BaseModel] | None = None) -> BackendOptions:
        """Typed options from `--opt KEY=VALUE` strings. `extra` is a model of the options every
        backend takes (the harness's); its keys are accepted and left out here."""
        common = set(extra.model_fields) if extra is not None else set()
        mine = {k: v for k, v in raw.items() if k not in common}
        known = sorted(set(self.Options.model_fields) | common)
        for key in mine:
            if key not in self.Options.model_fields:
                close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise UsageError(
                    f"unknown option {key!r} for {self.name}; {hint}options: {', '.join(known) or 'none'} "
                    f"(`bench backends --options {self.name}`)"
                )
        try:
            return self.Options(**mine)
        except ValidationError as e:
            raise UsageError(describe_option_error(self.name, e, mine)) from None


def describe_option_error(owner: str, err: ValidationError, given: dict[str, Any]) -> str:
    """One line naming the option, what it accepts and what it got."""
    first = err.errors()[0]
    key = str(first["loc"][0]) if first["loc"] else "?"
    ctx = first.get("ctx") or {}
    if ctx.get("expected"):
        accepted = f"accepted: {ctx['expected']}"
    else:
        accepted = first["msg"].lower().removeprefix("value error, ")
    return f"invalid --opt {key}={given.get(key)!r} for {owner}: {accepted} (`bench backends --options {owner}`)"


def type_name(annotation: Any) -> str:
    """A field's type as people read it: "int | None", "'latency' | 'throughput'"."""
    import typing

    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if args:
        return " | ".join(type_name(a) for a in args)
    return "None" if annotation is type(None) else getattr(annotation, "__name__", str(annotation))


def package_version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None
