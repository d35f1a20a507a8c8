#!/usr/bin/env python
"""Add a finished run to the model zoo (see inference/zoo_entry.py).

    python tools/add_pretrained.py results/fashion-mnist/zoo/seed1/fashion-mnist/cross/cross_d26w1_exp1.txt \
        --commit COMMIT --command "python tools/sweep.py ..."
"""
import _root  # noqa: F401  (the repository root on sys.path)

from common.errors import run_main
from inference.zoo_entry import main

if __name__ == '__main__':
    run_main(main)
