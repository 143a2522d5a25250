"""The publisher contract every report view and site page keeps (after asv's OutputPublisher).

A publisher is one class with one method, `publish(ctx)`, returning what it made: a report view returns
its `Section` (a list of one), a site page publisher its pages (one per device, per model, ...). `bench
report` and `bench site` both run the same view publishers over the rows they were given.

A new view is one file in `effbench/reports/views/` holding one `Publisher` subclass with an `id` and
an `order`: `report_views()` finds it. Views written in the older shape, a function `rows -> Section`
(every view of this package today), take part through the `SectionView` adapter below.
"""

from __future__ import annotations

import importlib
import pkgutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, ClassVar, Generic, TypeVar

from effbench.reports.common import Section
from effbench.reports.data import Row
from effbench.reports.views import (
    claims,
    device_stability,
    environment,
    gap,
    matrix,
    max_qps,
    placement,
    precision,
    prediction,
    resolution,
    results,
    roofline,
    speed,
    stability,
    sustained,
    timeshare,
)

C = TypeVar("C")
O = TypeVar("O")


@dataclass
class ViewContext:
    """What a report view is given: the rows to draw and the report's own options."""

    rows: list[Row]
    reference: str | None = None  # the backend the matrix computes speed-ups against


class Publisher(ABC, Generic[C, O]):
    """One view or page: `publish(ctx)` returns its outputs and writes nothing itself."""

    id: ClassVar[str] = ""
    order: ClassVar[int] = 1000  # place among the views of a page, lowest first

    @abstractmethod
    def publish(self, ctx: C) -> list[O]: ...


class SectionView(Publisher[ViewContext, Section]):
    """Adapter for a view written as a builder function `rows -> Section` (or `rows, reference -> Section`)."""

    def __init__(self, view_id: str, order: int, builder: Callable[..., Section], takes_reference: bool = False):
        self.view_id, self.view_order, self.builder, self.takes_reference = view_id, order, builder, takes_reference

    def publish(self, ctx: ViewContext) -> list[Section]:
        section = self.builder(ctx.rows, ctx.reference) if self.takes_reference else self.builder(ctx.rows)
        return [section]


BUILTIN_VIEWS: list[SectionView] = [
    SectionView("speed-accuracy", 10, speed.speed_section),
    SectionView("precision", 20, precision.precision_section),
    SectionView("roofline", 30, roofline.roofline_section),
    SectionView("efficiency-gap", 40, gap.gap_section),
    SectionView("prediction", 50, prediction.prediction_section),
    SectionView("where-time-goes", 60, timeshare.timeshare_section),
    SectionView("backend-matrix", 70, matrix.matrix_section, takes_reference=True),
    SectionView("placement", 75, placement.placement_section),
    SectionView("claims", 80, claims.claims_section),
    SectionView("stability", 90, stability.stability_section),
    SectionView("sustained", 92, sustained.sustained_section),
    SectionView("max-qps", 93, max_qps.max_qps_section),
    SectionView("resolution", 94, resolution.resolution_section),
    SectionView("device-stability", 95, device_stability.device_stability_section),
    SectionView("environment", 100, environment.environment_section),
    SectionView("results", 110, results.results_section),
]


def _view_key(view: Publisher) -> tuple[int, str]:
    if isinstance(view, SectionView):
        return view.view_order, view.view_id
    return type(view).order, type(view).id


def _discovered() -> list[Publisher]:
    """An instance of every Publisher subclass defined in a module of effbench.reports.views."""
    import effbench.reports.views as package

    found: list[Publisher] = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Publisher)
                and value.__module__ == module.__name__
                and not getattr(value, "__abstractmethods__", None)
            ):
                found.append(value())
    return found


def report_views(ids: list[str] | None = None) -> list[Publisher]:
    """The views of the report in page order (only `ids`, in that order, when given)."""
    views: list[Publisher] = [*BUILTIN_VIEWS, *_discovered()]
    if ids is None:
        return sorted(views, key=_view_key)
    by_id = {_view_key(v)[1]: v for v in views}
    return [by_id[i] for i in ids if i in by_id]


def view_ids() -> list[str]:
    return [_view_key(v)[1] for v in report_views()]


def publish_views(views: list[Publisher], ctx: ViewContext) -> list[Section]:
    return [section for view in views for section in view.publish(ctx)]
