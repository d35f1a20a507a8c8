#!/usr/bin/env python
"""Compare two groups of runs over seeds and image by image (see inference/significance.py).

    python tools/significance.py --a results/.../seed*/fashion-mnist/cross/cross_d110w1_exp1.txt \
        --b results/.../seed*/fashion-mnist/resnet/resnet_d110w1_exp1.txt \
        --predictions results/fashion-mnist/pair/predictions.csv
"""
import _root  # noqa: F401  (the repository root on sys.path)

from common.errors import run_main
from inference.significance import main

if __name__ == '__main__':
    run_main(main)
