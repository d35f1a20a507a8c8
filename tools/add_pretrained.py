#!/usr/bin/env python
"""Add a finished run to the model zoo (see inference/zoo_entry.py).

    python tools/add_pretrained.py results/fashion-mnist/zoo/seed1/fashion-mnist/cross/cross_d26w1_exp1.txt \
        --commit COMMIT --command "python tools/sweep.py ..."
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common.errors import run_main  # noqa: E402
from inference.zoo_entry import main  # noqa: E402

if __name__ == '__main__':
    run_main(main)
