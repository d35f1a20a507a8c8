#!/usr/bin/env python
"""Launch a distributed (dist_sync) job with MXNet's own launcher, on Python 3.9+.

    python tools/launch.py -n 2 -H hosts python train_model.py --kv-store dist_sync ...
    python tools/launch.py -n 2 --launcher local python train_model.py --kv-store dist_sync ...

A thin wrapper of `python -m mxnet.tools.launch`: the stock launcher's trackers call
threading.Thread.isAlive, which Python 3.9 removed, so it crashes; this restores the alias.
Without -H/--hostfile and without --launcher it launches locally (every process on this
machine, on 127.0.0.1) instead of failing for want of a host file.
"""
import logging
import signal
import sys
import threading

if not hasattr(threading.Thread, 'isAlive'):
    threading.Thread.isAlive = threading.Thread.is_alive


def with_default_launcher(argv):
    """Insert `--launcher local` when neither a host file nor a launcher is named."""
    command_start = next((i for i, arg in enumerate(argv)
                          if arg in ('python', 'python3') or arg.endswith('.py')
                          or '/python' in arg), len(argv))
    options = argv[:command_start]
    named = any(opt in ('-H', '--hostfile', '--launcher') or opt.startswith('--launcher=')
                or opt.startswith('--hostfile=') for opt in options)
    return argv if named else ['--launcher', 'local'] + argv


def main():
    from mxnet.tools import launch
    sys.argv = [sys.argv[0]] + with_default_launcher(sys.argv[1:])
    logging.basicConfig(format='%(asctime)s %(levelname)s %(message)s', level=logging.INFO)
    signal.signal(signal.SIGINT, launch.signal_handler)
    launch.main()


if __name__ == '__main__':
    main()
