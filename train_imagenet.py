#!/usr/bin/env python
"""Train the ImageNet deep-fusion networks (symbol_cross = DFN-MR-50, symbol_resnet).

    python train_imagenet.py --network=symbol_cross --gpus=0,1,2,3 --data-dir=data/imagenet
"""
import argparse

from common import args as flags
from common import runtime
from common.errors import ArgumentParser, UserError, run_main

IMAGENET_DEPTHS = {'symbol_cross': 50, 'symbol_resnet': 98}


def build_parser():
    parser = ArgumentParser(
        description='Train an ImageNet deeply-fused network from .rec files.',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    flags.add_network_args(parser, default_network='symbol_cross', default_depth=None)
    flags.add_data_args(parser)
    flags.add_device_args(parser)
    flags.add_fit_args(parser)
    flags.add_log_args(parser)
    parser.set_defaults(dataset='imagenet', batch_size=256, num_epochs=120,
                        lr_steps='30,60,90', log_iters=10, checkpoint_epochs=5,
                        train_dataset='imagenet_train.rec', val_dataset='imagenet_val.rec',
                        test_batch_size=256)
    return parser


def parse(argv=None):
    """The flags with every default filled in, checked."""
    args = build_parser().parse_args(argv)
    if args.network not in IMAGENET_DEPTHS:
        raise UserError('--network=%s is not an ImageNet network; choose one of %s (CIFAR '
                        'networks train with train_model.py)'
                        % (args.network, ', '.join(sorted(IMAGENET_DEPTHS))))
    # The log name carries the paper's depth of the network (DFN-MR-50, ResNet-98).
    args.depth = args.depth or IMAGENET_DEPTHS[args.network]
    return flags.resolve_defaults(args)


def main(argv=None):
    args = parse(argv)
    runtime.configure(args)
    from common.fit import train  # mxnet only now: its environment is set
    flags.print_summary(train(args, top5=True))
    return 0


if __name__ == '__main__':
    run_main(main)
