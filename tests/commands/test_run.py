"""`bench run`'s options are generated from RunConfig's fields: a setting is one field."""

from __future__ import annotations

from typing import Annotated

import pytest
import typer
from pydantic import Field
from typer.testing import CliRunner

from effbench.commands.run import build_run_command, cells_of
from effbench.errors import UsageError
from effbench.harness.config import RunConfig
from effbench.harness.flags import Flag
from effbench.harness.prepare import check_cell
from effbench.harness.store import Store
from tests.conftest import FAST

NULL = ["--model", "efficientvit_m0", "--backend", "null"]


class WithFrobs(RunConfig):
    """A run setting added the way a contributor adds one: a field that declares its flag."""

    frobs: Annotated[
        int, Field(ge=1, le=64), Flag("--frobs", help="Frobs per cell (added by a test).", example="--frobs 3")
    ] = 1


def _command(config: type[RunConfig]) -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
    app.command("run")(build_run_command(config))
    return app


def _cells(config: type[RunConfig], *args: str) -> list[RunConfig]:
    ctx = typer.main.get_command(_command(config)).make_context("run", [*NULL, *args])
    return cells_of(ctx.params, config)


def test_a_new_field_is_an_option_hashed_and_stored(tmp_path):
    runner = CliRunner()
    shown = runner.invoke(_command(WithFrobs), ["--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "--frobs" in shown.output and "Frobs per cell" in shown.output
    assert "--frobs" not in runner.invoke(_command(RunConfig), ["--help"], env={"COLUMNS": "200"}).output

    [default] = _cells(WithFrobs)
    [five] = _cells(WithFrobs, "--frobs", "5")
    assert five.frobs == 5 and five.config_hash() != default.config_hash()
    # at its default a new setting leaves the hash as it was before the field existed: stored results still match
    assert default.config_hash() == _cells(RunConfig)[0].config_hash()

    db = tmp_path / "r.db"
    ran = runner.invoke(_command(WithFrobs), [*NULL, *FAST, "--frobs", "5", "--in-process", "--db", str(db)])
    assert ran.exit_code == 0, ran.output
    [record] = Store(str(db)).records()
    assert (
        record["config"]["frobs"] == 5
        and record["config_hash"] == _cells(WithFrobs, *FAST, "--frobs", "5")[0].config_hash()
    )


def test_a_bad_value_of_a_new_field_names_its_flag_and_example():
    with pytest.raises(UsageError, match=r"invalid --frobs 0: .*greater than or equal to 1 \(e\.g\. --frobs 3\)"):
        _cells(WithFrobs, "--frobs", "0")


def test_list_flags_give_one_cell_per_value_size_by_size():
    cells = _cells(RunConfig, "--batch", "1,8", "--input-size", "160,224")
    assert [(c.input_size, c.batch_size) for c in cells] == [(160, 1), (160, 8), (224, 1), (224, 8)]


def test_cpus_are_checked_against_this_machine_only_for_a_device_here(tmp_path):
    with pytest.raises(UsageError, match="--cpus.*not available here"):
        _cells(RunConfig, "--cpus", "4096")
    # an ssh device has CPUs of its own: 4096 may well be one of them, so it is not refused here
    remote = RunConfig(model="efficientvit_m0", backend="null", device="board", cpus=[4096])
    assert remote.cpus == [4096]
    # a devices.yaml entry measured on this machine is checked where the device is known
    devices = tmp_path / "devices.yaml"
    devices.write_text("devices:\n  box:\n    kind: cpu\n")
    here = remote.model_copy(update={"device": "box", "devices_file": str(devices)})
    with pytest.raises(UsageError, match="invalid --cpus .*device 'box'.*not available here"):
        check_cell(here)
