"""Device catalog: the shipped file, validation errors, lookup, CPU detection, the CLI."""

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from effbench.commands.devices import app
from effbench.devices import catalog as cat
from effbench.devices.catalog import (
    DEFAULT_FILE,
    DeviceSpec,
    get_device,
    load_catalog,
    local_device_name,
    match_device,
    parse_catalog,
)
from effbench.devices.detect import cpu_info, detect_cpu, isa_rates
from effbench.errors import UsageError

REPO_ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [
    "local-cpu",
    "h100-sxm",
    "h200",
    "a100-sxm-80gb",
    "v100-sxm2",
    "rtx-4090",
    "jetson-agx-orin-64gb",
    "raspberry-pi-5",
    "jetson-agx-orin-cpu",
    "graviton3",
    "apple-m2",
    "xeon-8480",
]


@pytest.fixture(scope="module")
def shipped() -> dict[str, DeviceSpec]:
    return load_catalog(DEFAULT_FILE)


# --- the shipped catalog -----------------------------------------------------------------


def test_repo_root_devices_yaml_is_the_packaged_copy():
    assert (REPO_ROOT / "devices.yaml").read_bytes() == DEFAULT_FILE.read_bytes()


def test_shipped_catalog_has_every_device_with_sources(shipped):
    assert list(shipped) == SHIPPED
    for name, spec in shipped.items():
        assert spec.kind in ("cpu", "gpu", "npu")
        assert spec.description, name
        assert spec.peak("fp32", "spec"), f"{name} has no fp32 peak"
        if spec.detect:
            continue
        assert spec.memory_bandwidth is not None, name
        for precision, peak in [*spec.peak_flops.items(), ("bandwidth", spec.memory_bandwidth)]:
            assert peak.source.startswith(("spec:", "derived:")), (name, precision, peak.source)


def test_shipped_peaks_are_dense_and_ordered(shipped):
    h100, a100, v100 = shipped["h100-sxm"], shipped["a100-sxm-80gb"], shipped["v100-sxm2"]
    assert h100.peak("fp16") > h100.peak("tf32") > h100.peak("fp32")
    assert h100.peak("int8") == pytest.approx(2 * h100.peak("fp16"), rel=1e-3)
    assert h100.peak("fp16") < 1.0e15  # 1979 TFLOPS is the sparse figure
    assert a100.peak("fp16") == 312e12 and a100.peak("tf32") == 156e12
    assert shipped["h200"].peak("bf16") == h100.peak("bf16")
    assert shipped["h200"].bandwidth() > h100.bandwidth() > a100.bandwidth() > v100.bandwidth()
    assert v100.peak("bf16") is None  # no bf16 hardware: must not borrow the fp16 tensor rate
    for name, spec in shipped.items():
        for precision, peak in spec.peak_flops.items():
            if precision != "fp32":
                assert peak.value >= spec.peak("fp32", "spec"), (name, precision)


def test_derived_cpu_entries_agree_with_the_detection_arithmetic(shipped):
    a76 = isa_rates("ARM", None, None, "Raspberry Pi 5", {"asimd", "asimdhp", "asimddp"}, 0xD0B)
    pi5 = shipped["raspberry-pi-5"]
    for precision in ("fp32", "fp16", "int8"):
        assert pi5.peak(precision) == pytest.approx(4 * 2.4e9 * a76[precision].per_cycle)
    spr = isa_rates(
        "GenuineIntel",
        6,
        143,
        "Intel(R) Xeon(R) Platinum 8480+",
        {"avx2", "fma", "avx512f", "avx512_fp16", "amx_bf16", "amx_int8", "avx512_vnni"},
    )
    xeon = shipped["xeon-8480"]
    for precision in ("fp32", "fp16", "bf16", "int8"):
        assert xeon.peak(precision) == pytest.approx(56 * 2.0e9 * spr[precision].per_cycle)


# --- resolution and lookup ---------------------------------------------------------------


def test_resolution_order(tmp_path, monkeypatch):
    def one(name):
        p = tmp_path / f"{name}.yaml"
        p.write_text(f"devices:\n  {name}:\n    kind: npu\n    peak_flops: {{int8: 1.0e+12}}\n")
        return p

    explicit, env, local = one("explicit"), one("env"), one("local")
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.delenv(cat.ENV_VAR, raising=False)
    assert "h100-sxm" in load_catalog()  # nothing else: the packaged default
    (workdir / "devices.yaml").write_text(local.read_text())
    assert list(load_catalog()) == ["local"]
    monkeypatch.setenv(cat.ENV_VAR, str(env))
    assert list(load_catalog()) == ["env"]
    assert list(load_catalog(explicit)) == ["explicit"]
    assert load_catalog(explicit)["explicit"].peak("int8") == 1e12
    assert load_catalog(explicit)["explicit"].peak_entry("int8").source == "unspecified"
    monkeypatch.setenv(cat.ENV_VAR, str(tmp_path / "missing.yaml"))
    with pytest.raises(UsageError, match="not found"):
        load_catalog()


def test_get_device_suggests_close_names(shipped):
    assert get_device("h100-sxm", catalog=shipped).kind == "gpu"
    with pytest.raises(UsageError) as e:
        get_device("h100", catalog=shipped)
    msg = str(e.value)
    assert "did you mean" in msg and "h100-sxm" in msg.split("known:")[0] and "\n" not in msg


def test_precision_aliases_and_fallbacks(shipped):
    h100, cpu = shipped["h100-sxm"], shipped["local-cpu"]
    assert h100.peak("float16") == h100.peak("fp16") and h100.peak("bfloat16") == h100.peak("bf16")
    assert cpu.peak("tf32") == cpu.peak("fp32")  # TF32 on hardware without it runs as fp32
    assert h100.peak("tf32") != h100.peak("fp32")
    assert h100.peak("fp32", "calibrated") is None and h100.peak("fp32", "best") == 67e12


def test_match_device(shipped):
    assert match_device(shipped, "NVIDIA H100 80GB HBM3") == "h100-sxm"
    assert match_device(shipped, "Tesla V100-SXM2-32GB") == "v100-sxm2"
    assert match_device(shipped, "NVIDIA A100-SXM4-80GB") == "a100-sxm-80gb"
    assert match_device(shipped, "NVIDIA H100 PCIe") is None
    assert local_device_name(shipped) == "local-cpu"


# --- validation errors -------------------------------------------------------------------

BAD = [
    (
        "devices:\n  foo:\n    kind: gpu\n    peak_flops:\n      fp32: {value: fast, source: x}\n",
        ["device 'foo'", "peak_flops.fp32.value must be a positive number", "'fast'"],
    ),
    (
        "devices:\n  foo:\n    kind: gpu\n    peak_flops: {fp32: -5}\n",
        ["device 'foo'", "peak_flops.fp32.value must be a positive number", "-5"],
    ),
    (
        "devices:\n  foo:\n    kind: gpu\n    memory_bandwidth: {value: true}\n",
        ["device 'foo'", "memory_bandwidth.value must be a positive number"],
    ),
    ("devices:\n  foo:\n    kind: tpu\n", ["device 'foo'", "kind must be one of cpu, gpu, npu", "'tpu'"]),
    ("devices:\n  foo:\n    description: no kind\n", ["device 'foo'", "'kind' is missing"]),
    ("devices:\n  foo: 3\n", ["device 'foo'", "must be a mapping", "got 3"]),
    ("devices:\n  foo:\n    kind: gpu\n    peak_flop: {fp32: 1.0e+12}\n", ["device 'foo'", "unknown key 'peak_flop'"]),
    (
        "devices:\n  foo:\n    kind: gpu\n    ssh: {host: me@box, port: twenty}\n",
        ["device 'foo'", "ssh.port must be an integer"],
    ),
    (
        "devices:\n  foo:\n    kind: gpu\n    detect: true\n",
        ["device 'foo'", "detect: true is only supported for kind cpu"],
    ),
    ("devices:\n  foo:\n    kind: gpu\n   peak_flops: {fp32: 1}\n", ["not valid YAML", "line 4"]),
    ("- just a list\n", ["top-level 'devices:' mapping"]),
]


@pytest.mark.parametrize(
    "text, expected",
    BAD,
    ids=[
        "non-number",
        "negative",
        "bool",
        "unknown-kind",
        "missing-kind",
        "not-mapping",
        "typo-key",
        "ssh-port",
        "detect-gpu",
        "malformed-yaml",
        "no-devices",
    ],
)
def test_bad_entries_give_one_line_usage_errors(tmp_path, text, expected):
    path = tmp_path / "devices.yaml"
    path.write_text(text)
    with pytest.raises(UsageError) as e:
        load_catalog(path)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(str(path))
    for part in expected:
        assert part in msg, msg


def test_ssh_fields_are_kept_and_unknown_ones_refused():
    spec = parse_catalog(
        "devices:\n  pi:\n    kind: cpu\n    ssh: pi@raspberrypi.local\n"
        "  box:\n    kind: gpu\n    ssh: {host: gpu-box, port: 2222, python: /opt/py/bin/python,"
        " workdir: /srv/bench, options: [-J, bastion]}\n"
    )
    assert spec["pi"].ssh.host == "pi@raspberrypi.local"
    box = spec["box"].ssh
    assert (box.port, box.python, box.workdir, box.options) == (
        2222,
        "/opt/py/bin/python",
        "/srv/bench",
        ["-J", "bastion"],
    )
    with pytest.raises(UsageError, match="unknown key 'ssh.jump'.*options"):  # the runner would refuse it at run time
        parse_catalog("devices:\n  box:\n    kind: gpu\n    ssh: {host: gpu-box, jump: bastion}\n")


# --- detection ---------------------------------------------------------------------------


def _physical_cores(cpus) -> int:
    """Distinct (package, core) pairs among `cpus`, read here from sysfs topology (SMT siblings share
    a core); where topology is not readable, every CPU counts as a core."""
    topo = Path("/sys/devices/system/cpu")
    pairs = set()
    for c in cpus:
        t = topo / f"cpu{c}" / "topology"
        try:
            pairs.add(((t / "physical_package_id").read_text().strip(), (t / "core_id").read_text().strip()))
        except OSError:
            pairs.add(("cpu", str(c)))
    return len(pairs)


def test_detect_cpu_on_this_machine():
    spec = detect_cpu()
    d = spec.detected
    affinity = os.sched_getaffinity(0)
    assert d["model"]
    assert d["usable_cpus"] == len(affinity)
    assert d["cores"] == _physical_cores(affinity)
    fp32 = spec.peak_flops["fp32"]
    assert fp32.value == pytest.approx(d["cores"] * d["ghz"] * 1e9 * d["rates"]["fp32"]["per_cycle"])
    assert fp32.value > 0 and fp32.source.startswith("detected:") and "FLOP/cycle" in fp32.source
    assert spec.memory_bandwidth is None and "calibrate" in d["memory_bandwidth"]
    # the catalog's local-cpu entry is this detection
    assert load_catalog(DEFAULT_FILE)["local-cpu"].peak("fp32") == fp32.value


@pytest.mark.parametrize(
    "vendor, family, model, name, flags, fp32",
    [
        ("AuthenticAMD", 25, 17, "AMD EPYC 9654", {"avx2", "fma", "avx512f"}, 32),  # Zen 4: 2x256-bit
        ("AuthenticAMD", 26, 2, "AMD EPYC 9755", {"avx2", "fma", "avx512f"}, 64),  # Zen 5: 2x512-bit
        ("AuthenticAMD", 25, 1, "AMD EPYC 7763", {"avx2", "fma"}, 32),  # Zen 3
        ("AuthenticAMD", 23, 1, "AMD EPYC 7601", {"avx2", "fma"}, 16),  # Zen 1: 2x128-bit
        ("GenuineIntel", 6, 106, "Intel(R) Xeon(R) Gold 6338", {"avx2", "fma", "avx512f"}, 64),
        ("GenuineIntel", 6, 140, "11th Gen Intel(R) Core(TM) i7-1165G7", {"avx2", "fma", "avx512f"}, 32),
        ("GenuineIntel", 6, 151, "12th Gen Intel(R) Core(TM) i9-12900K", {"avx2", "fma", "avx_vnni"}, 32),
        ("GenuineIntel", 6, 42, "Intel(R) Core(TM) i7-2600", {"avx", "sse2"}, 16),
    ],
)
def test_isa_rates(vendor, family, model, name, flags, fp32):
    rates = isa_rates(vendor, family, model, name, flags)
    assert rates["fp32"].per_cycle == fp32
    if "avx_vnni" in flags:
        assert rates["int8"].per_cycle == 4 * fp32
    assert "bf16" not in rates  # none of these has bf16 instructions


def test_cpu_info_is_consistent_with_cpuinfo_flags():
    info = cpu_info()
    if "avx512_bf16" in info.flags or "amx_bf16" in info.flags:
        assert "bf16" in info.rates
    else:
        assert "bf16" not in info.rates


# --- CLI ---------------------------------------------------------------------------------


def test_cli_list_and_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(cat.ENV_VAR, raising=False)
    runner = CliRunner()
    for args in (["list"], []):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert "h100-sxm" in result.stdout and "jetson-agx-orin-64gb" in result.stdout
        assert "detected" in result.stdout  # local-cpu's source


def test_cli_bad_file_exits_2_with_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("devices:\n  foo:\n    kind: gpu\n    peak_flops: {fp32: {value: fast}}\n")
    runner = CliRunner()
    for args in (
        ["list", "--devices-file", str(bad)],
        ["--devices-file", str(bad)],
        ["detect", "--devices-file", str(bad)],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "device 'foo'" in lines[0] and "peak_flops.fp32.value" in lines[0]
        assert "Traceback" not in result.output
    result = runner.invoke(app, ["list"], env={cat.ENV_VAR: str(tmp_path / "nope.yaml")})
    assert result.exit_code == 2 and "not found" in result.stderr


def test_cli_detect():
    result = CliRunner().invoke(app, ["detect", "--devices-file", str(DEFAULT_FILE)])
    assert result.exit_code == 0, result.output
    assert "local-cpu" in result.stdout and "per cycle per core" in result.stdout


def test_max_roof_is_the_higher_of_spec_and_calibrated():
    """A roof must be an upper bound: whichever of the detected/spec and calibrated values is higher."""
    from effbench.devices.catalog import parse_catalog

    text = """
devices:
  box:
    kind: cpu
    peak_flops: {fp32: {value: 1.0e11, source: spec}, bf16: {value: 4.0e11, source: spec}}
    memory_bandwidth: {value: 2.0e10, source: spec}
    calibrated:
      timestamp: "2026-11-28T03:00:00Z"
      method: test
      peak_flops: {fp32: {value: 1.5e11, source: measured}, bf16: {value: 3.0e11, source: measured}}
      memory_bandwidth: {value: 1.0e10, source: measured}
"""
    box = parse_catalog(text, "t.yaml")["box"]
    assert box.peak("fp32", "max") == 1.5e11 and box.peak("bf16", "max") == 4.0e11
    assert box.bandwidth("max") == 2.0e10
    assert box.peak("fp32", "best") == 1.5e11 and box.bandwidth("best") == 1.0e10
