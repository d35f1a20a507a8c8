#!/usr/bin/env python
"""Export a trained checkpoint as MXNet symbol + params and ONNX (see inference/export.py).

    python tools/export.py snapshot/fashion-mnist/cross/cross_d26w1_exp1.txt
    python tools/export.py --checkpoint PREFIX --epoch 2 --out-dir shipped/
"""
import _root  # noqa: F401  (the repository root on sys.path)

from common.errors import run_main
from inference.export import main

if __name__ == '__main__':
    run_main(main)
