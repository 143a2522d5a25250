"""Claim cards: the shipped catalogue, validation with one-line errors, and where user cards come from."""

from __future__ import annotations

import sys

import pytest

from effbench.claims.library import (
    ENTRY_POINT_GROUP,
    ENV_DIRS,
    builtin_entries,
    load_library,
    parse_card,
    unbuildable_models,
)
from effbench.errors import UsageError
from tests.claims.cards import null_claim, write_card
from tests.conftest import bench


def test_shipped_catalogue_has_ten_buildable_claims_with_sources():
    import timm

    entries = builtin_entries()
    buildable = [e for e in entries if not unbuildable_models(e.claim)]
    assert len(buildable) >= 10, [e.name for e in buildable]
    assert len({e.paper.title for e in buildable}) >= 5
    for e in entries:
        c = e.claim
        assert c.published_ratio > 0 and c.published_ratio_source and c.says and c.settings.source
        assert e.paper.link.startswith("https://") and e.paper.year >= 2018
        for m in c.models:
            if m.unavailable:  # the card's reason must be true: timm really lacks the model
                assert not timm.is_model(m.name), m.name
            else:
                assert timm.is_model(m.name), f"{e.name}: {m.name} is not a timm model"


def test_unbuildable_claims_say_why():
    lib = load_library()
    missing = dict(unbuildable_models(lib.get("elasticvit-s1-vs-efficientnet-b0").claim))
    assert "ElasticViT-S1" in missing and "not in timm" in missing["ElasticViT-S1"]
    assert unbuildable_models(lib.get("efficientvit-m5-vs-mobilenetv3-large-cpu").claim) == []


def test_derived_ratio_follows_the_metric():
    entry = load_library().get("efficientformer-l1-vs-l7-latency")
    assert entry.claim.ratio is None
    assert entry.claim.published_ratio == pytest.approx(7.0 / 1.6)  # B's latency over A's
    assert "derived" in entry.claim.published_ratio_source


BAD = [
    ("missing key", "claims[0].models[1].name", lambda c: c["models"][1].pop("name")),
    ("wrong type", "claims[0].tolerance", lambda c: c.update(tolerance="lots")),
    ("unknown key", "claims[0].settings.batchsize", lambda c: c["settings"].update(batchsize=4)),
    ("bad kind", "claims[0].kind", lambda c: c.update(kind="quicker")),
    ("one model", "claims[0].models", lambda c: c["models"].pop()),
    ("same pair", "claims[0]", lambda c: c["models"][1].update(options={"busy_us": "1000"})),
    ("ratio without source", "claims[0]", lambda c: c.pop("ratio_source")),
    ("unknown backend", "claims[0].settings.backend", lambda c: c["settings"].update(backend="tensorflw")),
]


@pytest.mark.parametrize("what,key,spoil", BAD, ids=[b[0] for b in BAD])
def test_malformed_card_names_the_file_and_key(tmp_path, what, key, spoil):
    claim = null_claim("x", 1.5)
    spoil(claim)
    path = write_card(tmp_path, [claim])
    with pytest.raises(UsageError) as err:
        parse_card(path.read_text(), str(path))
    msg = str(err.value)
    assert msg.startswith(f"{path}: key '{key}'") and "\n" not in msg, msg


def test_bad_yaml_and_duplicate_names(tmp_path):
    with pytest.raises(UsageError, match=r"x.yaml: not valid YAML at line 2"):
        parse_card("paper: {title: t\nclaims: [", "x.yaml")
    write_card(tmp_path, [null_claim("efficientvit-m5-vs-mobilenetv3-large-cpu", 1.5)])
    with pytest.raises(UsageError, match="already defined in built-in efficientvit.yaml: rename"):
        load_library([tmp_path])


def test_malformed_card_on_the_command_line_is_one_line_exit_2(tmp_path):
    claim = null_claim("x", 1.5)
    claim["models"][1].pop("name")
    write_card(tmp_path, [claim], "broken.yaml")
    res = bench("claims", "list", "--claims-dir", tmp_path)
    assert res.returncode == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "broken.yaml: key 'claims[0].models[1].name': field required" in lines[0]
    assert "Traceback" not in res.output
    res = bench("claims", "list", "--claims-dir", tmp_path / "nowhere")
    assert res.returncode == 2 and "claims directory not found" in res.stderr and "Traceback" not in res.output


def test_env_dirs_and_cli_dirs_add_claims(tmp_path, monkeypatch):
    write_card(tmp_path / "env", [null_claim("from-env", 1.5)])
    write_card(tmp_path / "cli", [null_claim("from-cli", 2.0)], "other.yml")
    monkeypatch.setenv(ENV_DIRS, str(tmp_path / "env"))
    lib = load_library([tmp_path / "cli"])
    assert lib.get("from-env").origin.endswith("card.yaml")
    assert lib.get("from-cli").claim.published_ratio == 2.0
    with pytest.raises(UsageError, match="unknown claim 'from-clj'; did you mean from-cli"):
        lib.get("from-clj")


def _install_entry_point(root, name: str, value: str) -> None:
    """A real installed distribution (a dist-info folder on sys.path) declaring an effbench.claims entry point."""
    info = root / "fakeclaims-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakeclaims\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{name} = {value}\n")


def test_entry_point_package_of_cards(tmp_path, monkeypatch):
    pkg = tmp_path / "fakeclaims_pkg"
    write_card(pkg, [null_claim("from-entry-point", 1.5)])
    (pkg / "__init__.py").write_text("")
    _install_entry_point(tmp_path, "mine", "fakeclaims_pkg")
    monkeypatch.syspath_prepend(str(tmp_path))
    entry = load_library().get("from-entry-point")
    assert "fakeclaims_pkg" in entry.origin


def test_broken_entry_point_is_one_line(tmp_path, monkeypatch):
    _install_entry_point(tmp_path, "broken", "no_such_module_for_claims")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UsageError) as err:
        load_library()
    assert "entry point 'broken = no_such_module_for_claims' (effbench.claims)" in str(err.value)
    assert "\n" not in str(err.value)
    sys.modules.pop("no_such_module_for_claims", None)


def test_verify_refuses_unbuildable_and_unusable_in_one_line(tmp_path):
    res = bench("claims", "verify", "elasticvit-s1-vs-efficientnet-b0", "--db", tmp_path / "r.db")
    assert res.returncode == 2, res.output
    assert res.stderr.count("\n") == 1 and "cannot be verified here: effbench cannot build ElasticViT-S1" in res.stderr
    res = bench(
        "claims", "verify", "efficientvit-m5-vs-mobilenetv3-large-cpu", "--backend", "coreml", "--db", tmp_path / "r.db"
    )
    assert res.returncode == 2 and "backend 'coreml' is not usable on cpu here" in res.stderr, res.output
    assert not (tmp_path / "r.db").exists()  # refused before any work


def test_show_prints_the_rule_and_sources():
    res = bench("claims", "show", "efficientvit-m5-vs-mobilenetv3-large-cpu")
    assert res.returncode == 0, res.output
    text = " ".join(res.stdout.split())
    assert "45.2% higher throughput" in text and "speed_test.py" in text
    assert "at or above 1.31" in text  # 1.452 x (1 - 10%)
    assert "bench claims verify efficientvit-m5-vs-mobilenetv3-large-cpu" in text


def test_a_phone_claim_gets_readings_on_the_phone_runtimes():
    from effbench.backends.registry import get_backend
    from effbench.claims.plan import default_backends

    phone = next(e for e in builtin_entries() if e.claim.settings.device_kind == "mobile")
    backends, note = default_backends(phone, "cpu")
    mobile = [b for b in ("litert", "executorch") if get_backend(b).unavailable_reason("cpu") is None]
    assert mobile and set(mobile) <= set(backends) and note
    server = next(e for e in builtin_entries() if e.claim.settings.device_kind not in ("mobile", "gpu"))
    assert not {"litert", "executorch"} & set(default_backends(server, "cpu")[0])
