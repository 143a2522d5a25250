"""Quantiser options are the backends' typed options (`--opt key=value`): typed, validated, one line
per mistake; the cache key resolves the CPU-dependent default before it is made."""

from __future__ import annotations

import pytest

from effbench.backends.onnxruntime_backend import has_vnni
from effbench.backends.registry import get_backend
from effbench.errors import UsageError


def test_strings_become_typed_options():
    ov = get_backend("openvino").parse_options({"preset": "mixed", "subset_size": "100", "fast_bias_correction": "0"})
    assert get_backend("openvino").quant_settings(ov) == {
        "preset": "mixed",
        "subset_size": 100,
        "fast_bias_correction": False,
        "model_type": None,
    }
    ort = get_backend("onnxruntime").parse_options(
        {"calibration": "entropy", "per_channel": "false", "reduce_range": "1", "percentile": "99.99"}
    )
    got = get_backend("onnxruntime").quant_settings(ort)
    assert (got["calibration"], got["per_channel"], got["reduce_range"], got["percentile"]) == (
        "entropy",
        False,
        True,
        99.99,
    )


@pytest.mark.parametrize(
    "backend,raw,needle",
    [
        ("openvino", {"presets": "mixed"}, "unknown option 'presets'"),
        ("openvino", {"preset": "fast"}, "--opt preset='fast'"),
        ("openvino", {"fast_bias_correction": "maybe"}, "--opt fast_bias_correction='maybe'"),
        ("openvino", {"subset_size": "lots"}, "--opt subset_size='lots'"),
        ("onnxruntime", {"calibration": "kl"}, "'minmax', 'entropy' or 'percentile'"),
        ("onnxruntime", {"activation_type": "int4"}, "--opt activation_type='int4'"),
        ("onnxruntime", {"percentile": "20"}, "--opt percentile='20'"),
    ],
)
def test_bad_options_are_one_line(backend, raw, needle):
    with pytest.raises(UsageError) as e:
        get_backend(backend).parse_options(raw)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_reduce_range_follows_vnni():
    ort = get_backend("onnxruntime")
    assert get_backend("onnxruntime").quant_settings(ort.parse_options({}))["reduce_range"] is (not has_vnni())
    assert get_backend("onnxruntime").quant_settings(ort.parse_options({"reduce_range": "0"}))["reduce_range"] is False
    assert has_vnni({"avx2", "avx512_vnni"}) and not has_vnni({"avx2", "fma"})
