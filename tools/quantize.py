#!/usr/bin/env python
"""Quantize a trained checkpoint to INT8 for the CPU (see inference/quantize.py and docs/int8.md).

    python tools/quantize.py snapshot/fashion-mnist/cross/cross_d26w1_exp1.txt
    python tools/quantize.py RUN_LOG --calib-mode entropy --calib-batches 20 --out-dir shipped/
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common.errors import run_main  # noqa: E402
from inference.quantize import main  # noqa: E402

if __name__ == '__main__':
    run_main(main)
