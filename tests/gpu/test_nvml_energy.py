"""The NVML meter on a real GPU: UUID matching, counter and power, short energy windows."""

from tests.gpu._requirements import needs_nvml, tiny_cfg

pytestmark = needs_nvml


def test_meter_matches_the_cuda_device_by_uuid():
    from effbench.backends import nvml
    from effbench.backends.cuda_util import torch_device_uuid

    meter, reason = nvml.open_meter("cuda:0")
    assert reason is None
    try:
        assert meter.uuid == torch_device_uuid(0)
        info = meter.info()
        assert info["matched_by"] == "uuid" and info["driver_version"]
        assert meter.read_power_mw() > 0
        if meter.has_counter:
            assert meter.read_energy_mj() > 0
        snap = meter.snapshot()
        assert snap["temperature_c"] is not None
    finally:
        meter.close()


def test_a_cell_with_short_energy_windows():
    from effbench.harness.runner import run_cell

    cfg = tiny_cfg("torch", batch_size=64, energy_window_s=2.0, options={"energy": "1", "idle_s": "1"})
    r = run_cell(cfg)
    e = r.energy
    assert e["available"] is True, e
    assert e["windows"] == 2 and len(e["samples_j_per_image"]) == 2
    assert e["joules_per_image"] > 0
    assert e["idle_w"] > 0 and "dynamic" in e
    g = e["gpu"]
    assert g["uuid"] and g["temperature_before_c"] is not None and g["power_limit_w"]
    if not e["estimated"]:
        assert e["cross_check"]["ratio_to_counter"] > 0
