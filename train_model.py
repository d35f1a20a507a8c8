#!/usr/bin/env python
"""Train a deep-fusion network on CIFAR-10/100, SVHN or Fashion-MNIST from .rec files.

    python train_model.py --dataset=cifar10 --network=cross --depth=56 --gpus=0,1
    python train_model.py --dataset=fashion-mnist --network=cross --depth=14 --cpu

As MXNet's image-classification examples: this script reads the flags, builds the network
and says how to make the iterators; the engine (engine/fit.py) trains.
"""
import argparse
import os

from common.errors import ArgumentParser, UserError, run_main
from data.datasets import DATASETS, dataset_names
from engine import flags, recipe_flags, runtime
from engine.flags import TOP5_MIN_CLASSES
from engine.summary import print_summary


def build_parser():
    parser = ArgumentParser(
        description='Train a deeply-fused network (CIFAR-10/100, SVHN, Fashion-MNIST).',
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_all_args(parser)
    return parser


def add_all_args(parser, **network_defaults):
    flags.add_network_args(parser, dataset_names(), **network_defaults)
    flags.add_data_args(parser)
    flags.add_device_args(parser)
    flags.add_fit_args(parser)
    recipe_flags.add_recipe_args(parser)
    flags.add_log_args(parser)


# The data sets of the original, whose --num-examples presets the port keeps.
ORIGINAL_DATASETS = ('cifar10', 'cifar100', 'svhn', 'imagenet')


def parse(argv=None):
    """The flags with every per-dataset default filled in, checked."""
    args = build_parser().parse_args(argv)
    return resolve_num_examples(flags.resolve_defaults(args, DATASETS[args.dataset]))


def resolve_num_examples(args):
    """--num-examples: as given, else the original's preset, else (Fashion-MNIST, which the
    original did not have) the number of training records. Missing records stay unknown
    here: the data loader says what is missing."""
    if args.num_examples is None:
        if args.dataset in ORIGINAL_DATASETS:
            args.num_examples = DATASETS[args.dataset]['num_examples']
        else:
            path = os.path.join(args.data_dir, args.train_dataset)
            if os.path.isfile(path):
                from data.recordfile import read_offsets
                args.num_examples = len(read_offsets(path))
    return args


def build_net(args):
    """(canonical name, network) of the network the flags name: the one place a run's
    --network is resolved (mxnet is imported here: after runtime.configure). A
    --bn-momentum left out becomes the network's own, so that the log and the checkpoint
    say which momentum trained."""
    import network
    try:
        name = network.resolve_name(args.network)
        if args.bn_momentum is None:
            args.bn_momentum = network.SPECS[name].bn_momentum
        return name, network.get_net(name, num_classes=args.num_classes, depth=args.depth,
                                     widen_factor=args.widen_factor,
                                     bn_momentum=args.bn_momentum)
    except ValueError as err:
        raise UserError(str(err))


def load_data(args, seed, num_parts, part_index):
    """The training and test iterators of this worker's part (the engine calls this)."""
    from data.iterators import get_iterators  # imports the record reader only to train
    return get_iterators(
        dataset=args.dataset, data_dir=args.data_dir, batch_size=args.batch_size,
        test_batch_size=args.test_batch_size, aug_type=args.aug_type,
        data_shape=args.data_shape, train_rec=args.train_dataset, val_rec=args.val_dataset,
        num_parts=num_parts, part_index=part_index, seed=seed,
        threads=args.data_threads, num_classes=args.num_classes)


def input_shape(args):
    """(channels, height, width) of the images the network sees."""
    return (DATASETS[args.dataset]['channels'], args.data_shape, args.data_shape)


def logs_top5(args):
    """Whether the log carries top-5 accuracy: on ImageNet, as the original's log did,
    where there are five classes to rank (fewer would make MXNet's topk fail)."""
    return args.dataset == 'imagenet' and args.num_classes >= TOP5_MIN_CLASSES


def run(args):
    """Build the network (first: a bad name or depth fails before any file is made) and
    train it; the result of engine.fit.train."""
    runtime.configure(args)
    name, net = build_net(args)
    from engine import fit  # mxnet only now: its environment is set
    return fit.train(args, name, net, load_data, input_shape(args), logs_top5(args))


def main(argv=None):
    print_summary(run(parse(argv)))
    return 0


if __name__ == '__main__':
    run_main(main)
