#!/usr/bin/env python
"""One benchmark for the whole pipeline (tools/bench/benchmark.py): training step,
training loop, evaluation, inference; also --profile and --pipeline.

    python tools/benchmark.py                          # cross d110, batch 128, 3x32x32
    python tools/benchmark.py --network resnet --depth 110 --compare --json out.json
"""
import _root  # noqa: F401  (the repository root on sys.path)

from common.errors import run_main
from tools.bench.benchmark import main

if __name__ == '__main__':
    run_main(main)
