#!/usr/bin/env python
"""Images per second of the CIFAR training readers (see tools/bench/iterator.py).

    python tools/bench_iterator.py [--rec data/cifar10/train.rec] [--batch-size 64]
    python tools/benchmark.py --pipeline cifar        # the same, from the one benchmark
"""
import sys

import _root  # noqa: F401  (the repository root on sys.path)

from tools.bench.iterator import main

if __name__ == '__main__':
    sys.exit(main())
