#!/usr/bin/env python
"""Top-k classes of images or records from a trained checkpoint (see inference/predict.py).

    python tools/predict.py RUN_LOG --input shirt.png photos/ --top 3
    python tools/predict.py RUN_LOG --input data/fashion-mnist/test.rec --format csv -o out.csv
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common.errors import run_main  # noqa: E402
from inference.predict import main  # noqa: E402

if __name__ == '__main__':
    run_main(main)
