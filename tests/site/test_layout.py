"""File names and markup from hostile names: safe, distinct, escaped."""

from __future__ import annotations

from effbench.site.layout import slug


def test_slugs_are_safe_file_names_and_distinct():
    names = ["efficientvit_m0", "<script>alert(1)</script>", "pkg.mod:factory", "pkg.mod_factory", "../../etc"]
    slugs = [slug(n) for n in names]
    assert slugs[0] == "efficientvit_m0"
    assert len(set(slugs)) == len(slugs)
    for s in slugs:
        assert "/" not in s and "<" not in s and ":" not in s and not s.startswith(".")
