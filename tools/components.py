#!/usr/bin/env python
"""Component accuracies and path-length distributions (see inference/components.py).

    python tools/components.py --network resnet cross half --depth 26 --out-dir view/
"""
import _root  # noqa: F401  (the repository root on sys.path)

from common.errors import run_main
from inference.components import main

if __name__ == '__main__':
    run_main(main)
