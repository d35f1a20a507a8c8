#!/usr/bin/env python
"""Train a deep-fusion network on CIFAR-10/100, SVHN or Fashion-MNIST from .rec files.

    python train_model.py --dataset=cifar10 --network=cross --depth=56 --gpus=0,1
    python train_model.py --dataset=fashion-mnist --network=cross --depth=14 --cpu
"""
import argparse

from common import args as flags
from common import runtime
from common.errors import ArgumentParser, run_main


def build_parser():
    parser = ArgumentParser(
        description='Train a deeply-fused network (CIFAR-10/100, SVHN, Fashion-MNIST).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    flags.add_network_args(parser)
    flags.add_data_args(parser)
    flags.add_device_args(parser)
    flags.add_fit_args(parser)
    flags.add_log_args(parser)
    return parser


def parse(argv=None):
    """The flags with every per-dataset default filled in, checked."""
    return flags.resolve_defaults(build_parser().parse_args(argv))


def main(argv=None):
    args = parse(argv)
    runtime.configure(args)
    from common.fit import train  # mxnet only now: its environment is set
    flags.print_summary(train(args, top5=args.dataset == 'imagenet'))
    return 0


if __name__ == '__main__':
    run_main(main)
