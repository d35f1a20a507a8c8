#!/usr/bin/env python
"""Score a trained checkpoint on a record set (see inference/evaluate.py).

    python tools/evaluate.py snapshot/fashion-mnist/cross/cross_d26w1_exp1.txt
    python tools/evaluate.py --checkpoint snapshot/.../weights/NAME/NAME --epoch 2
    python tools/evaluate.py RUN_LOG --original-subset          # also the 2016 code's subset
"""
import _root  # noqa: F401  (the repository root on sys.path)

from common.errors import run_main
from inference.evaluate import main

if __name__ == '__main__':
    run_main(main)
