#!/usr/bin/env python
"""Inference images/s of one exported network in three runtimes (tools/bench/inference.py).

    python tools/bench_inference.py --network cross --depth 26 --batch-size 64
    python tools/bench_inference.py snapshot/fashion-mnist/cross/cross_d26w1_exp1.txt
"""
import _root  # noqa: F401  (the repository root on sys.path)

from common.errors import run_main
from tools.bench.inference import main

if __name__ == '__main__':
    run_main(main)
