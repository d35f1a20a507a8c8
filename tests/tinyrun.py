"""A tiny real training run for the fault tests of issue 24: cross d14 on 128 Fashion-MNIST
images, as tests/test_faults.py trains it, and the snapshot of a folder's files."""
import os
import subprocess
import sys

import train_model
from helpers import write_fashion_slice

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOG = os.path.join('fashion-mnist', 'cross', 'cross_d14w1_exp1.txt')


def tiny_data(folder):
    return write_fashion_slice(str(folder), 128, 50)


def flags(data_dir, log_dir, *extra):
    return ['--dataset', 'fashion-mnist', '--data-dir', str(data_dir), '--log-dir',
            str(log_dir), '--network', 'cross', '--depth', '14', '--cpu', '--batch-size',
            '32', '--test-batch-size', '50', '--log-iters', '4', '--rand-seed', '7',
            '--no-progress', '--lr-steps', '1', '--checkpoint-epochs', '1'] + list(extra)


def train(data_dir, log_dir, *extra):
    """In this process (mxnet is loaded already)."""
    return train_model.run(train_model.parse(flags(data_dir, log_dir, *extra)))


def run_script(data_dir, log_dir, *extra, script='train_model.py'):
    return subprocess.run([sys.executable, script] + flags(data_dir, log_dir, *extra),
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def snapshot(folder):
    """Every file under `folder` with its bytes: to show that nothing changed."""
    found = {}
    for top, _, names in os.walk(str(folder)):
        for name in names:
            path = os.path.join(top, name)
            with open(path, 'rb') as handle:
                found[os.path.relpath(path, str(folder))] = handle.read()
    return found
