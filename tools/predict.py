#!/usr/bin/env python
"""Top-k classes of images or records from a trained checkpoint (see inference/predict.py).

    python tools/predict.py RUN_LOG --input shirt.png photos/ --top 3
    python tools/predict.py RUN_LOG --input data/fashion-mnist/test.rec --format csv --out out.csv
"""
import _root  # noqa: F401  (the repository root on sys.path)

from common.errors import run_main
from inference.predict import main

if __name__ == '__main__':
    run_main(main)
