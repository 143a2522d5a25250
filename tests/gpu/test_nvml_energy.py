"""The NVML meter on a real GPU: UUID matching, counter and power, short energy windows."""

from effbench.backends import nvml
from effbench.backends.cuda_util import torch_device_uuid
from tests.gpu._requirements import needs_nvml, run_cell, tiny_cfg

pytestmark = needs_nvml


def test_meter_matches_the_cuda_device_by_uuid():
    meter, reason = nvml.open_meter("cuda:0")
    assert reason is None and meter is not None
    try:
        assert meter.uuid == torch_device_uuid(0)
        info = meter.info()
        assert info["matched_by"] == "uuid" and info["driver_version"]
        power = meter.read_power_mw()
        assert power is not None and power > 0
        assert info["power_field"] in ("instant", "average")
        if meter.has_counter:
            energy = meter.read_energy_mj()
            assert energy is not None and energy > 0
        snap = meter.snapshot()
        assert snap["temperature_c"] is not None
    finally:
        meter.close()


def test_a_cell_with_short_energy_windows():
    cfg = tiny_cfg("torch", batch_size=64, energy_window_s=2.0, options={"energy": "1", "idle_s": "5"})
    r = run_cell(cfg)
    e = r.energy
    assert e is not None and e.available is True, e
    w = e.readings
    assert w["windows"] == 2 and len(w["samples_j_per_image"]) == 2
    assert e.joules_per_image is not None and e.joules_per_image > 0
    assert w["idle_w"] > 0 and "dynamic" in w
    assert w["idle"]["seconds"] >= 5
    g = w["gpu"]
    assert g["uuid"] and g["temperature_before_c"] is not None and g["power_limit_w"]
    if not w["estimated"]:
        assert w["cross_check"]["ratio_to_counter"] > 0
