"""Check a sweep's runs as train_model.py checks them, before any run starts.

tools/sweep.py runs this in a child process (`tools/sweep.py --check-runs`), so that the
sweep, which forks its runs for hours, never loads MXNet itself. Every run's flags go
through train_model.py's own parser and checks, every distinct network through
train_model.build_net, and every distinct data set through train_model.load_data (the
records opened and checked, as a run opens them); nothing is written. Input on stdin:
JSON, a list of [run key, train_model.py flags].
Output: nothing and exit 0, or one line `error: <run key>: <why>` and exit 2.
"""
import json
import os
import sys

import train_model
from common.errors import UserError
from engine import runtime


def check(key, argv, done):
    """Raise UserError naming `key` if train_model.py would refuse `argv`: its flags, its
    network, and the records it would read (opened and checked as a run opens them).
    `done`: the networks (with their canonical names) and data already checked, each
    checked once."""
    try:
        args = train_model.parse(argv)
        net = (args.network, args.depth, args.widen_factor, args.num_classes)
        if net not in done:
            runtime.configure(args)          # MXNet's environment before it is imported
            done[net], _ = train_model.build_net(args)
        canonical = done[net]
        if canonical != args.network:   # the run's files would carry the canonical name
            raise UserError('give the network as %r, not %r: the sweep finds each run\'s '
                            'files by that name' % (canonical, args.network))
        data = ('data', args.dataset, os.path.abspath(args.data_dir), args.train_dataset,
                args.val_dataset, args.num_classes, args.batch_size, args.test_batch_size,
                args.data_shape, args.aug_type)
        if data not in done:
            train_model.load_data(args, seed=0, num_parts=1, part_index=0)
            done[data] = True
    except UserError as err:
        raise UserError('%s: %s' % (key, err))


def main(argv=None):
    done = {}
    for key, run_argv in json.load(sys.stdin):
        check(key, run_argv, done)
    return 0

