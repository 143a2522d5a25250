"""The claim card schema: one YAML file per paper, with one or more claims.

A claim compares two models, A and B, and says A is R times faster (lower latency or higher
throughput) than B, or as fast as B. R is either given (`ratio`, with its source) or derived from
the two published figures (`models[i].published`). Every number names where it comes from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from typing_extensions import Self

DEVICE_KINDS = ("cpu", "gpu", "mobile", "tpu", "npu")
KINDS = ("faster", "as_fast")
METRICS = ("latency", "throughput")
UNITS = {"latency": "ms", "throughput": "img/s"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Paper(_Strict):
    title: str = Field(min_length=1)
    year: int = Field(ge=1980, le=2100)
    link: str = Field(pattern=r"^https?://\S+$")
    authors: str | None = None
    venue: str | None = None


class Number(_Strict):
    """A figure as published: value, unit (ms for latency, img/s for throughput), where it is printed."""

    value: float = Field(gt=0)
    unit: Literal["ms", "img/s"]
    source: str = Field(min_length=1)


class ModelRef(_Strict):
    name: str = Field(min_length=1)  # what `bench run --model` takes: a timm name, timm:<name>, a factory
    label: str | None = None  # the paper's name for it
    resolution: int | None = Field(None, ge=8)  # overrides settings.resolution for this model
    options: dict[str, str] = Field(default_factory=dict)  # backend options for this model only
    published: Number | None = None
    unavailable: str | None = None  # why effbench cannot build it (the card author's word)

    @field_validator("options", mode="before")
    @classmethod
    def _stringify(cls, v: Any) -> Any:
        return {str(k): str(val) for k, val in v.items()} if isinstance(v, dict) else v

    @property
    def display(self) -> str:
        if self.label:
            return self.label
        extra = [f"{self.resolution}px"] if self.resolution else []
        extra += [f"{k}={v}" for k, v in self.options.items()]
        return f"{self.name} ({', '.join(extra)})" if extra else self.name


class Settings(_Strict):
    """How the paper measured: each field is applied here where it can be, else the verification says why not."""

    device: str = Field(min_length=1)  # as published, e.g. "Nvidia V100 GPU"
    device_kind: Literal["cpu", "gpu", "mobile", "tpu", "npu"]
    runtime: str = Field(min_length=1)  # as published, e.g. "PyTorch (torch.jit.trace, AMP)"
    backend: str | None = None  # the effbench backend that runtime is, if effbench has one
    batch: int = Field(1, ge=1)
    threads: int | None = Field(None, ge=1)
    precision: Literal["fp32", "fp16", "bf16", "int8"] = "fp32"
    resolution: int | None = Field(None, ge=8)
    what: Literal["inference", "training step"] = "inference"  # what the published time covers
    source: str = Field(min_length=1)


class Claim(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", max_length=100)
    says: str = Field(min_length=1)  # the claim in the paper's own words
    says_source: str = Field(min_length=1)  # where those words are (abstract, Section 4.1 ...)
    kind: Literal["faster", "as_fast"]
    metric: Literal["latency", "throughput"]
    ratio: float | None = Field(None, gt=0)
    ratio_source: str | None = None
    tolerance: float = Field(0.1, ge=0, lt=1)
    models: list[ModelRef] = Field(min_length=2, max_length=2)
    settings: Settings
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Self:
        a, b = self.models
        if self.ratio is None:
            if a.published is None or b.published is None:
                raise ValueError("give `ratio` (with `ratio_source`) or `published` figures for both models")
            want = UNITS[self.metric]
            for m in (a, b):
                unit = m.published.unit if m.published else None
                if unit != want:
                    raise ValueError(
                        f"{m.display}: a {self.metric} claim needs published figures in {want}, got {unit}"
                    )
        elif not self.ratio_source:
            raise ValueError("`ratio` needs `ratio_source`: where the published ratio is printed")
        if self.kind == "as_fast" and self.tolerance == 0:
            raise ValueError("an as_fast claim needs a tolerance > 0 (the band around 1 that counts as equal)")
        if (a.name, a.resolution, a.options) == (b.name, b.resolution, b.options):
            raise ValueError("models[0] and models[1] are the same configuration: nothing to compare")
        return self

    @property
    def published_ratio(self) -> float:
        """A's speed over B's: >1 means A is faster (B's latency / A's, or A's throughput / B's)."""
        if self.ratio is not None:
            return self.ratio
        a, b = (m.published.value for m in self.models)  # type: ignore[union-attr]
        return b / a if self.metric == "latency" else a / b

    @property
    def published_ratio_source(self) -> str:
        if self.ratio is not None:
            return str(self.ratio_source)
        a, b = self.models
        pa, pb = a.published, b.published
        if pa is None or pb is None:  # the validator demands both where there is no ratio
            return "derived: published figures missing"
        return (
            f"derived: {a.display} {pa.value:g} {pa.unit} ({pa.source}), "
            f"{b.display} {pb.value:g} {pb.unit} ({pb.source})"
        )

    @property
    def statement(self) -> str:
        """The claim as effbench tests it, in one line."""
        a, b = (m.display for m in self.models)
        what = "throughput" if self.metric == "throughput" else "speed (latency)"
        if self.kind == "as_fast":
            return f"{a} is as fast as {b} ({what} ratio 1 ± {self.tolerance:.0%})"
        return f"{a} is {self.published_ratio:.3g}x {b} in {what} (tolerance {self.tolerance:.0%})"

    def unbuildable(self) -> list[tuple[ModelRef, str]]:
        return [(m, m.unavailable) for m in self.models if m.unavailable]


class CardFile(_Strict):
    paper: Paper
    claims: list[Claim] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        seen: set[str] = set()
        for c in self.claims:
            if c.name in seen:
                raise ValueError(f"claim name {c.name!r} appears twice")
            seen.add(c.name)
        return self
