#!/usr/bin/env python
"""Training throughput: the whole train_model.py against the bare training step.

    python tools/bench_train.py [--network cross --depth 26 --batch-size 64]

Kept for its old command line: it runs tools/benchmark.py --only step,loop at the data
set's input shape (Fashion-MNIST by default) on synthetic records of the official format;
see that tool for the other parts, --json and --compare.
"""
import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, 'tools'))

from common.errors import UserError, run_main  # noqa: E402

SHAPES = {'fashion-mnist': '1,28,28', 'cifar10': '3,32,32', 'cifar100': '3,32,32',
          'svhn': '3,32,32'}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--network', default='cross')
    parser.add_argument('--depth', type=int, default=26)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--dataset', default='fashion-mnist')
    args, rest = parser.parse_known_args(argv)
    if args.dataset not in SHAPES:
        raise UserError('--dataset must be one of %s' % ', '.join(sorted(SHAPES)))
    import benchmark
    return benchmark.main(['--network', args.network, '--depth', str(args.depth),
                           '--batch-size', str(args.batch_size), '--shape', SHAPES[args.dataset],
                           '--only', 'step,loop'] + rest)


if __name__ == '__main__':
    run_main(main)
