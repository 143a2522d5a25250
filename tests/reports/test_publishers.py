"""Report views are publishers with one publish() contract: the built-ins through the adapter, and a new
view as one file, found without touching any other file."""

from __future__ import annotations

import effbench.reports.views as views_package
from effbench.reports.common import Section
from effbench.reports.data import to_rows
from effbench.reports.html import VIEW_IDS, render_html
from effbench.reports.publish import ViewContext, publish_views, report_views, view_ids
from tests.reports.test_views import _rec

NEW_VIEW = """
from effbench.reports.common import Section
from effbench.reports.publish import Publisher


class CountView(Publisher):
    id = "result-count"
    order = 15

    def publish(self, ctx):
        return [Section(self.id, "How many", "counts", f"<p>{len(ctx.rows)} rows counted</p>")]
"""


def test_builtin_views_publish_one_section_each_in_page_order():
    rows = to_rows([_rec(), _rec(backend="openvino")])
    sections = publish_views(report_views(), ViewContext(rows))
    assert [s.id for s in sections] == VIEW_IDS == view_ids()
    assert all(isinstance(s, Section) for s in sections)


def test_a_subset_of_views_in_the_order_asked():
    rows = to_rows([_rec()])
    sections = publish_views(report_views(["claims", "speed-accuracy"]), ViewContext(rows))
    assert [s.id for s in sections] == ["claims", "speed-accuracy"]


def test_a_new_view_is_one_file(tmp_path, monkeypatch):
    (tmp_path / "count_view.py").write_text(NEW_VIEW)
    monkeypatch.setattr(views_package, "__path__", [*views_package.__path__, str(tmp_path)])
    ids = view_ids()
    assert ids[:3] == ["speed-accuracy", "result-count", "precision"]  # placed by its order
    html = render_html([_rec(), _rec(id="y" * 32)])
    assert 'id="result-count"' in html and "2 rows counted" in html
