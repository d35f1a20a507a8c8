#!/usr/bin/env python
"""Export a trained checkpoint as MXNet symbol + params and ONNX (see inference/export.py).

    python tools/export.py snapshot/fashion-mnist/cross/cross_d26w1_exp1.txt
    python tools/export.py --checkpoint PREFIX --epoch 2 --out-dir shipped/
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common.errors import run_main  # noqa: E402
from inference.export import main  # noqa: E402

if __name__ == '__main__':
    run_main(main)
