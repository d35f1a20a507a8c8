#!/usr/bin/env python
"""Launch a distributed (dist_sync) job of MXNet's parameter server (tools/dist/launch.py).

    python tools/launch.py -n 2 -s 1 python train_model.py --kv-store dist_sync ...
    python tools/launch.py -n 2 -H hosts python train_model.py --kv-store dist_sync ...
"""
import _root  # noqa: F401  (the repository root on sys.path)

from common.errors import run_main
from tools.dist.launch import main

if __name__ == '__main__':
    run_main(main)
