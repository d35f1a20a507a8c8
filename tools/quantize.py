#!/usr/bin/env python
"""Quantize a trained checkpoint to INT8 for the CPU (see inference/quantize.py and docs/int8.md).

    python tools/quantize.py snapshot/fashion-mnist/cross/cross_d26w1_exp1.txt
    python tools/quantize.py RUN_LOG --calib-mode entropy --calib-batches 20 --out-dir shipped/
"""
import _root  # noqa: F401  (the repository root on sys.path)

from common.errors import run_main
from inference.quantize import main

if __name__ == '__main__':
    run_main(main)
