#!/usr/bin/env python
"""Run a grid of train_model.py runs, a few at a time, resumably (tools/sweeper/sweep.py).

    python tools/sweep.py --networks resnet,cross,half,plain --depths 26 --seeds 1,2,3 \\
        --jobs 2 --log-dir snapshot/study -- --dataset fashion-mnist --num-epochs 10 --cpu
    python tools/sweep.py --status --log-dir snapshot/study
"""
import _root  # noqa: F401  (the repository root on sys.path)

from common.errors import run_main
from tools.sweeper.sweep import main

if __name__ == '__main__':
    run_main(main)
