"""The smallest real cell the device tests run: a tiny CNN on ONNX Runtime, measured for moments."""

TINY = dict(model="tiny_models:tiny_cnn", input_size=32, backend="onnxruntime", threads=1)
SHORT = dict(duration_s=0.05, warmup_s=0.0, warmup_iters=1, min_iters=3)
