#!/usr/bin/env python
"""Lesion study of a trained resnet or cross checkpoint (see inference/lesion.py).

    python tools/lesion.py results/.../seed1/fashion-mnist/cross/cross_d26w1_exp1.txt
    python tools/lesion.py RUN_LOG --ks 2-10 --draws 5 --seed 1 --out lesion/cross_d26
    python tools/lesion.py --checkpoint results/.../weights/NAME/NAME --epoch 10 --images 1000
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common.errors import run_main  # noqa: E402
from inference.lesion import main  # noqa: E402

if __name__ == '__main__':
    run_main(main)
