#!/usr/bin/env python
"""Lesion study of a trained resnet or cross checkpoint (see inference/lesion.py).

    python tools/lesion.py results/.../seed1/fashion-mnist/cross/cross_d26w1_exp1.txt
    python tools/lesion.py RUN_LOG --ks 2-10 --draws 5 --seed 1 --out-dir lesion/cross_d26
    python tools/lesion.py --checkpoint results/.../weights/NAME/NAME --epoch 10 --images 1000
"""
import _root  # noqa: F401  (the repository root on sys.path)

from common.errors import run_main
from inference.lesion import main

if __name__ == '__main__':
    run_main(main)
