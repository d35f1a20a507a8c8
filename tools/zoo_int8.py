#!/usr/bin/env python
"""fp32 against INT8 for the model zoo's entries: top-1 and agreement on every test record
(see inference/zoo_int8.py and docs/int8.md).

    python tools/zoo_int8.py                          # every entry, a Markdown table
    python tools/zoo_int8.py fashion-mnist/cross_d26 --record
"""
import _root  # noqa: F401  (the repository root on sys.path)

from common.errors import run_main
from inference.zoo_int8 import main

if __name__ == '__main__':
    run_main(main)
