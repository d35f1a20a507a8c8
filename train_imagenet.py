#!/usr/bin/env python
"""Train the ImageNet deep-fusion networks (symbol_cross = DFN-MR-50, symbol_resnet).

    python train_imagenet.py --network=symbol_cross --gpus=0,1,2,3 --data-dir=data/imagenet
"""
import argparse

from common import environment
environment.exit_if_bad()   # before anything loads MXNet, which aborts on a bad value
import train_model  # noqa: E402
from common.errors import ArgumentParser, UserError, run_main  # noqa: E402
from data.datasets import DATASETS  # noqa: E402
from engine import flags, runtime  # noqa: E402
from engine.summary import print_summary  # noqa: E402


def imagenet_nets():
    """Network name -> spec of the networks with a fixed ImageNet input."""
    import network
    return {name: spec for name, spec in network.SPECS.items() if spec.input_shape}


def build_parser():
    parser = ArgumentParser(
        description='Train an ImageNet deeply-fused network from .rec files.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train_model.add_all_args(parser, default_network='symbol_cross', default_depth=None)
    parser.set_defaults(dataset='imagenet')   # its recipe: data/datasets.py's ImageNet entry
    return parser


def parse(argv=None):
    """The flags with every default filled in, checked."""
    args = build_parser().parse_args(argv)
    runtime.configure(args)  # before the network package imports mxnet
    nets = imagenet_nets()
    if args.network not in nets:
        raise UserError('--network=%s is not an ImageNet network; choose one of %s (CIFAR '
                        'networks train with train_model.py)'
                        % (args.network, ', '.join(sorted(nets))))
    # The log name carries the paper's depth of the network (DFN-MR-50, ResNet-98).
    args.depth = flags.given(args.depth, nets[args.network].paper_depth)
    if args.depth < 1:
        raise UserError('--depth must be at least 1 (got %d)' % args.depth)
    return train_model.resolve_num_examples(
        flags.resolve_defaults(args, DATASETS[args.dataset]))


def main(argv=None):
    print_summary(train_model.run(parse(argv)))
    return 0


if __name__ == '__main__':
    run_main(main)
