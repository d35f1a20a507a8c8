#!/usr/bin/env python
"""Score a trained checkpoint on a record set (see inference/evaluate.py).

    python tools/evaluate.py snapshot/fashion-mnist/cross/cross_d26w1_exp1.txt
    python tools/evaluate.py --checkpoint snapshot/.../weights/NAME/NAME --epoch 2
    python tools/evaluate.py RUN_LOG --original-subset          # also the 2016 code's subset
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common.errors import run_main  # noqa: E402
from inference.evaluate import main  # noqa: E402

if __name__ == '__main__':
    run_main(main)
