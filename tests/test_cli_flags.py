"""A mistyped flag, in any script, is bad input like any other: one line, exit code 2."""
import os
import subprocess
import sys

import pytest

from helpers import assert_one_line_error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('argv, words', [
    (['train_model.py', '--depth', 'abc'], ["invalid int value: 'abc'", 'train_model.py --help']),
    (['train_imagenet.py', '--bogus'], ['unrecognized arguments: --bogus']),
    (['show_model.py', '--format', 'gif'], ["invalid choice: 'gif'"]),
    (['get_results.py', '--nope'], ['unrecognized arguments: --nope']),
    (['-m', 'data.prepare', 'nothing'], ["invalid choice: 'nothing'", 'data.prepare --help']),
])
def test_bad_flags_give_one_line(argv, words):
    proc = subprocess.run([sys.executable] + argv, cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert_one_line_error(proc, *words)
