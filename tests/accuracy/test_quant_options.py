"""Quantiser options from `--opt key=value` strings: typed, validated, one line per mistake; the cache key
resolves the CPU-dependent default before it is made."""

from __future__ import annotations

import pytest

from effbench.errors import UsageError
from effbench.export.quantize import OrtQuantOptions, has_vnni, quant_options


def test_strings_become_typed_options():
    ov = quant_options("nncf", {"preset": "mixed", "subset_size": "100", "fast_bias_correction": "0",
                                "max_drop": "1%"})
    assert (ov.preset, ov.subset_size, ov.fast_bias_correction, ov.max_drop) == ("mixed", 100, False, 1.0)
    ort = quant_options("onnxruntime", {"calibrate_method": "entropy", "per_channel": "false",
                                        "reduce_range": "1", "percentile": "99.99"})
    assert (ort.calibrate_method, ort.per_channel, ort.reduce_range, ort.percentile) == ("entropy", False, True,
                                                                                         99.99)


@pytest.mark.parametrize("method,raw,needle", [
    ("nncf", {"presets": "mixed"}, "unknown int8 option(s) presets"),
    ("nncf", {"preset": "fast"}, "preset 'fast'"),
    ("nncf", {"fast_bias_correction": "maybe"}, "write 1 or 0"),
    ("nncf", {"subset_size": "lots"}, "is not a number"),
    ("nncf", {"max_drop": "150"}, "--max-drop 150"),
    ("onnxruntime", {"calibrate_method": "kl"}, "minmax, entropy, percentile"),
    ("onnxruntime", {"activation_type": "int4"}, "activation_type 'int4'"),
])
def test_bad_options_are_one_line(method, raw, needle):
    with pytest.raises(UsageError) as e:
        quant_options(method, raw)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_reduce_range_follows_vnni():
    assert OrtQuantOptions().resolved().reduce_range is (not has_vnni())
    assert OrtQuantOptions(reduce_range=False).resolved().reduce_range is False
    assert has_vnni({"avx2", "avx512_vnni"}) and not has_vnni({"avx2", "fma"})
