#!/usr/bin/env python
"""Component accuracies and path-length distributions (see inference/components.py).

    python tools/components.py --network resnet cross half --depth 26 --out-dir view/
"""
import _root  # noqa: F401  (the repository root on sys.path)

from common import environment
environment.exit_if_bad()   # before anything loads MXNet, which aborts on a bad value
from common.errors import run_main  # noqa: E402
from inference.components import main  # noqa: E402

if __name__ == '__main__':
    run_main(main)
