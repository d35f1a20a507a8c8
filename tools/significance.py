#!/usr/bin/env python
"""Compare two groups of runs over seeds and image by image (see inference/significance.py).

    python tools/significance.py --a results/.../seed*/fashion-mnist/cross/cross_d110w1_exp1.txt \
        --b results/.../seed*/fashion-mnist/resnet/resnet_d110w1_exp1.txt \
        --predictions results/fashion-mnist/pair/predictions.csv
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common.errors import run_main  # noqa: E402
from inference.significance import main  # noqa: E402

if __name__ == '__main__':
    run_main(main)
