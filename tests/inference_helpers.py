"""A tiny trained run for the tests of the inference tools (evaluate, predict, export).

One run per network and test session, trained by train_model.py itself on a slice of the
real Fashion-MNIST: 2 epochs, a checkpoint after each.
"""
import json
import os
import subprocess
import sys

from data.fashion_mnist import CLASSES, read_idx
from data.synthetic import write_record_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FASHION = '/usr/share/datasets/fashion-mnist'
TRAIN, TEST = 512, 200
TRAIN_BATCH, TEST_BATCH = 32, 64
_made = {}


def fashion_slice(prefix, count):
    images, _ = read_idx(os.path.join(FASHION, prefix + '-images-idx3-ubyte.gz'), 3)
    labels, _ = read_idx(os.path.join(FASHION, prefix + '-labels-idx1-ubyte.gz'), 1)
    return images[:count], labels[:count]


def run_tool(name, *argv):
    """tools/<name>.py as a user runs it."""
    return subprocess.run([sys.executable, os.path.join(ROOT, 'tools', name + '.py')]
                          + [str(a) for a in argv], capture_output=True, text=True, cwd=ROOT)


def tiny_run(tmp_path_factory, network='cross', depth=14, lr=0.1):
    """{'data': record folder (with the class names), 'log': the run's log, 'prefix': its
    weights prefix}."""
    if network in _made:
        return _made[network]
    assert os.path.exists(os.path.join(FASHION, 't10k-images-idx3-ubyte.gz')), (
        'Fashion-MNIST is missing: run `make setup` (installs dataset-fashion-mnist)')
    root = tmp_path_factory.mktemp('inference-run')
    data = str(root / 'data')
    write_record_dataset(data, 'fashion-mnist', fashion_slice('train', TRAIN),
                         fashion_slice('t10k', TEST))
    meta_path = os.path.join(data, 'dataset.json')
    with open(meta_path) as handle:
        meta = json.load(handle)
    with open(meta_path, 'w') as handle:
        json.dump(dict(meta, classes=CLASSES, num_classes=10), handle)
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'train_model.py'), '--dataset', 'fashion-mnist',
         '--data-dir', data, '--log-dir', str(root / 'snapshot'), '--network', network,
         '--depth', str(depth), '--cpu', '--batch-size', str(TRAIN_BATCH), '--test-batch-size',
         str(TEST_BATCH), '--num-epochs', '2', '--checkpoint-epochs', '1', '--lr-steps', '1',
         '--rand-seed', '5', '--lr', str(lr), '--no-progress'],
        capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    name = '%s_d%dw1_exp1' % (network, depth)
    folder = root / 'snapshot' / 'fashion-mnist' / network
    _made[network] = dict(data=data, log=str(folder / (name + '.txt')),
                          prefix=str(folder / 'weights' / name / name))
    return _made[network]


def log_validation_lines(log, epoch):
    """The log's `Validation-...=value` messages of one epoch, without the time stamp."""
    mark = 'Epoch[%d] Validation-' % epoch
    with open(log) as handle:
        return [line.split('Epoch[%d] ' % epoch, 1)[1].strip() for line in handle
                if mark in line]
