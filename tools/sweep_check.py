#!/usr/bin/env python
"""Check a sweep's runs as train_model.py checks them, before any run starts.

tools/sweep.py runs this in a child process, so that the sweep, which forks its runs for
hours, never loads MXNet itself. Every run's flags go through train_model.py's own parser
and checks, and every distinct network through train_model.build_net, the first thing a run
does; nothing is written. Input on stdin: JSON, a list of [run key, train_model.py flags].
Output: nothing and exit 0, or one line `error: <run key>: <why>` and exit 2.
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from common.errors import UserError, run_main  # noqa: E402
from engine import runtime  # noqa: E402
import train_model  # noqa: E402


def check(key, argv, built):
    """Raise UserError naming `key` if train_model.py would refuse `argv`."""
    try:
        args = train_model.parse(argv)
        config = (args.network, args.depth, args.widen_factor, args.num_classes)
        if config not in built:
            runtime.configure(args)          # MXNet's environment before it is imported
            train_model.build_net(args)
            built.add(config)
        canonical = network_name(args.network)
        if canonical != args.network:   # the run's files would carry the canonical name
            raise UserError('give the network as %r, not %r: the sweep finds each run\'s '
                            'files by that name' % (canonical, args.network))
    except UserError as err:
        raise UserError('%s: %s' % (key, err))


def network_name(name):
    """The canonical name of a network name or alias (after build_net: MXNet is loaded)."""
    import network
    return network.resolve_name(name)


def main(argv=None):
    built = set()
    for key, run_argv in json.load(sys.stdin):
        check(key, run_argv, built)
    return 0


if __name__ == '__main__':
    run_main(main)
