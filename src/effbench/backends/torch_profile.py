"""torch eager's per-layer view: aten ops carry no ONNX node names, so only an op-type comparison is
possible."""

from __future__ import annotations

# aten op -> the ONNX op type the exporter emits for it (eager torch has no ONNX node names)
_TORCH_OPS: dict[str, str] = {
    **dict.fromkeys(
        [
            "convolution",
            "_convolution",
            "conv1d",
            "conv2d",
            "conv3d",
            "mkldnn_convolution",
            "cudnn_convolution",
            "_slow_conv2d_forward",
            "thnn_conv2d",
            "_conv_depthwise2d",
            "_nnpack_spatial_convolution",
            "slow_conv_dilated2d",
            "convolution_overrideable",
            "_mkldnn_convolution",
        ],
        "Conv",
    ),
    **dict.fromkeys(["conv_transpose2d", "convolution_backward", "slow_conv_transpose2d"], "ConvTranspose"),
    **dict.fromkeys(["addmm", "linear", "_addmm_activation", "mkldnn_linear"], "Gemm"),
    **dict.fromkeys(
        [
            "mm",
            "bmm",
            "matmul",
            "baddbmm",
            "einsum",
            "_scaled_dot_product_flash_attention_for_cpu",
            "scaled_dot_product_attention",
            "_scaled_dot_product_flash_attention",
            "_scaled_dot_product_efficient_attention",
        ],
        "MatMul",
    ),
    **dict.fromkeys(
        [
            "batch_norm",
            "_batch_norm_impl_index",
            "native_batch_norm",
            "cudnn_batch_norm",
            "_native_batch_norm_legit_no_training",
            "_native_batch_norm_legit",
        ],
        "BatchNormalization",
    ),
    **dict.fromkeys(["layer_norm", "native_layer_norm"], "LayerNormalization"),
    **dict.fromkeys(["group_norm", "native_group_norm"], "GroupNormalization"),
    **dict.fromkeys(["relu", "relu_", "threshold", "threshold_", "clamp_min", "clamp_min_"], "Relu"),
    **dict.fromkeys(["hardswish", "hardswish_"], "HardSwish"),
    **dict.fromkeys(["hardsigmoid", "hardsigmoid_"], "HardSigmoid"),
    **dict.fromkeys(["sigmoid", "sigmoid_", "silu", "silu_"], "Sigmoid"),
    **dict.fromkeys(["gelu", "gelu_"], "Gelu"),
    **dict.fromkeys(["tanh", "tanh_"], "Tanh"),
    **dict.fromkeys(["hardtanh", "hardtanh_", "clamp", "clamp_", "clamp_max", "clamp_max_"], "Clip"),
    **dict.fromkeys(["add", "add_"], "Add"),
    **dict.fromkeys(["sub", "sub_", "rsub"], "Sub"),
    **dict.fromkeys(["mul", "mul_"], "Mul"),
    **dict.fromkeys(["div", "div_"], "Div"),
    **dict.fromkeys(["softmax", "_softmax", "log_softmax", "_log_softmax"], "Softmax"),
    **dict.fromkeys(["adaptive_avg_pool2d", "_adaptive_avg_pool2d", "mean"], "GlobalAveragePool"),
    **dict.fromkeys(["avg_pool2d"], "AveragePool"),
    **dict.fromkeys(["max_pool2d", "max_pool2d_with_indices", "adaptive_max_pool2d"], "MaxPool"),
    **dict.fromkeys(["cat", "_cat", "stack"], "Concat"),
    **dict.fromkeys(
        [
            "view",
            "reshape",
            "_reshape_alias",
            "_unsafe_view",
            "flatten",
            "unflatten",
            "squeeze",
            "unsqueeze",
            "expand",
            "as_strided",
        ],
        "Reshape",
    ),
    **dict.fromkeys(["permute", "transpose", "t", "contiguous", "clone"], "Transpose"),
    **dict.fromkeys(["slice", "select", "narrow", "split", "split_with_sizes", "chunk", "unbind"], "Slice"),
    **dict.fromkeys(["index", "index_select", "gather", "embedding"], "Gather"),
    **dict.fromkeys(["pad", "constant_pad_nd", "reflection_pad2d", "replication_pad2d"], "Pad"),
    **dict.fromkeys(
        ["upsample_nearest2d", "upsample_bilinear2d", "upsample_bicubic2d", "_upsample_bilinear2d_aa"], "Resize"
    ),
    **dict.fromkeys(["sum"], "ReduceSum"),
    **dict.fromkeys(["amax", "max"], "ReduceMax"),
    **dict.fromkeys(["sqrt", "rsqrt"], "Sqrt"),
    **dict.fromkeys(["pow"], "Pow"),
    **dict.fromkeys(["exp"], "Exp"),
    **dict.fromkeys(["erf"], "Erf"),
}


def torch_op_type(aten_name: str) -> str | None:
    """ONNX op type of an aten op ('aten::conv2d' -> 'Conv'), None for runtime overhead."""
    return _TORCH_OPS.get(aten_name.split("::")[-1])
