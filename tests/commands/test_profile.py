"""`bench profile` takes its run settings from RunConfig's field declarations, as `bench run` does:
the same flag names, help, parser and bad-value line; its own options and defaults beside them."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from effbench.commands.profile import OWN_DEFAULTS, RUN_SETTINGS, profile_command
from effbench.harness.run_options import flags_of
from effbench.harness.store import Store
from tests.conftest import FAST, one_line

NULL = ["--model", "efficientvit_m0", "--backend", "null"]
# every option `bench profile --help` listed before its run settings were generated
LISTED_BEFORE = (
    *("--model", "-m", "--backend", "-b", "--device", "--iters", "--threads", "--precision", "--batch", "--top"),
    *("--sort", "--warmup", "--warmup-iters", "--duration", "--min-iters", "--input-size", "--opt", "--db"),
    *("--out", "-o", "--tag", "--timeout", "--isolate", "--in-process", "--store", "--no-store", "--help"),
)


def _command() -> Any:
    app = typer.Typer(add_completion=False)
    app.command("profile")(profile_command)
    return typer.main.get_command(app)


def test_each_run_setting_is_the_run_config_fields_flag():
    params = {p.name: p for p in _command().params}
    flags = flags_of()
    assert set(RUN_SETTINGS) <= set(params)
    for name in RUN_SETTINGS:
        flag, param = flags[name], params[name]
        assert getattr(param, "help", None) == flag.help, name
        assert [*param.opts, *param.secondary_opts] == [n for names in flag.names for n in names.split("/")], name
    # a profile warms up 1 s and measures 3 s, stated apart from `bench run`'s defaults
    assert OWN_DEFAULTS == {"warmup_s": 1.0, "duration_s": 3.0}
    assert (params["warmup_s"].default, float(str(params["duration_s"].default))) == (1.0, 3.0)


def test_help_lists_every_option_it_listed_before(cli):
    shown = cli("profile", "--help", env={"COLUMNS": "200"})
    assert shown.returncode == 0, shown.output
    words = set(shown.stdout.replace("│", " ").split())
    assert [o for o in LISTED_BEFORE if o not in words] == []


@pytest.mark.parametrize(
    "args,line",
    [
        (["--batch", "x"], "invalid --batch 'x': 'x' is not a positive integer"),
        (["--duration", "5parsecs"], "invalid --duration '5parsecs': unknown unit 'parsecs'"),
        (["--threads", "0"], "invalid --threads 0: input should be greater than or equal to 1 (e.g. --threads 2)"),
        (["--input-size", "3"], "invalid --input-size 3: input should be greater than or equal to 8"),
        (["--warmup", "-1"], "invalid --warmup -1.0: input should be greater than or equal to 0 (e.g. --warmup 1)"),
    ],
)
def test_a_bad_run_setting_is_the_line_bench_run_prints(args, line, cli, tmp_path):
    db = str(tmp_path / "r.db")
    profiled = one_line(cli("profile", *NULL, *args, "--db", db), 2, line)
    assert profiled.replace("profile", "run") == one_line(cli("run", *NULL, *args, "--db", db), 2, line)


def test_each_batch_size_is_a_cell_of_its_own(cli, tmp_path):
    """The null backend has no per-layer times: each cell is timed and stored, each says why it has
    no profile, in one line, exit 1."""
    db = str(tmp_path / "r.db")
    r = cli("profile", *NULL, "--batch", "1,2", *FAST, "--in-process", "--db", db)
    line = one_line(r, 1, "batch 1: no per-layer profile", "; batch 2: no per-layer profile")
    assert "reported no per-layer times" in line
    timed = Store(db).results(profiled=False)
    assert sorted(t.batch_size for t in timed) == [1, 2] and all(t.ok for t in timed)
