"""Calibration and evaluation data (ImageFolder), preprocessing, top-1/top-5 with intervals, the fp32
reference and the paired comparison. See docs/accuracy.md."""
