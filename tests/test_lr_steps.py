"""Where the learning rate steps in real runs: at batch E * floor(N / B) of the run, as the
original's scheduler put it in an uninterrupted run; resumed and --load-epoch runs step on
the same batches (issue 14).

100 training images at batch 32: the iterator gives ceil = 4 batches per epoch, the schedule
counts floor = 3, so a step "at epoch E" falls at batch 3E (counted from 0), inside epoch
E - 1: the tests check exactly which batch.
"""
import json
import re

import mxnet as mx
import numpy as np
import pytest

import train_model
from engine import checkpoint, runfiles
from helpers import write_fashion_slice

TRAIN, BATCH = 100, 32
EPOCH_SIZE = TRAIN // BATCH          # 3: the schedule's epoch
ITERATOR_BATCHES = -(-TRAIN // BATCH)  # 4: the iterator's epoch


@pytest.fixture(scope='module')
def records(tmp_path_factory):
    return write_fashion_slice(str(tmp_path_factory.mktemp('fashion-100')), TRAIN, 40)


def train(data_dir, log_dir, *extra):
    argv = ['--dataset', 'fashion-mnist', '--data-dir', data_dir, '--log-dir', str(log_dir),
            '--network', 'plain', '--depth', '5', '--cpu', '--batch-size', str(BATCH),
            '--test-batch-size', '40', '--lr-steps', '1,2', '--lr', '0.05',
            '--checkpoint-epochs', '1', '--rand-seed', '3', '--no-progress'] + list(extra)
    return train_model.run(train_model.parse(argv))


def drops(log_path):
    """The batch (counted from 0 over the run) of every logged change of rate."""
    with open(log_path) as handle:
        return [int(m.group(1)) for m in re.finditer(r'learning rate \S+ from batch (\d+)',
                                                     handle.read())]


def weights(result, epoch):
    path = checkpoint.params_file(result['weights_prefix'], epoch)
    return {k: v.asnumpy() for k, v in mx.nd.load(path).items()}


def check_fresh_run(result):
    assert drops(result['log_path']) == [1 * EPOCH_SIZE, 2 * EPOCH_SIZE]   # [3, 6]
    with open(result['log_path']) as handle:
        text = handle.read()
    # batch 3 is the last batch of epoch 0; batch 6 the third of epoch 1
    assert 'Epoch[0] learning rate 0.005 from batch 3 (batch 3 of the epoch)' in text
    assert 'Epoch[1] learning rate 0.0005 from batch 6 (batch 2 of the epoch)' in text
    assert 'num_examples=%d' % TRAIN in text   # Fashion-MNIST: the record count
    with open(runfiles.metrics_path(result['log_path'])) as handle:
        lrs = [json.loads(line)['lr'] for line in handle]
    assert lrs == pytest.approx([0.005, 0.0005, 0.0005])  # each epoch's last batch


def test_the_example_has_floor_and_ceil_apart():
    assert (EPOCH_SIZE, ITERATOR_BATCHES) == (3, 4)


@pytest.mark.slow
def test_num_examples_sets_the_epoch_of_the_schedule(records, tmp_path):
    result = train(records, tmp_path, '--num-epochs', '2', '--num-examples', '64')
    assert drops(result['log_path']) == [2, 4]   # floor(64 / 32) = 2 batches per epoch


@pytest.mark.slow
def test_fresh_resumed_and_load_epoch_runs_step_at_epoch_times_floor(records, tmp_path):
    whole = train(records, tmp_path / 'whole', '--num-epochs', '3')
    check_fresh_run(whole)
    # stopped after 1 epoch, then --resume: the same log, the same batches, the same weights
    train(records, tmp_path / 'parts', '--num-epochs', '1')
    resumed = train(records, tmp_path / 'parts', '--num-epochs', '3', '--resume')
    assert drops(resumed['log_path']) == drops(whole['log_path']) == [3, 6]
    with open(resumed['log_path']) as handle:
        assert 'at epoch 1 (batch 4), learning rate 0.005' in handle.read()
    for name, value in weights(whole, 3).items():
        assert np.array_equal(value, weights(resumed, 3)[name]), name
    # --load-epoch 1 of the whole run: a new log, epoch 0's lines copied, the next drop at 6
    loaded = train(records, tmp_path / 'whole', '--num-epochs', '3', '--load-epoch', '1')
    assert loaded['log_path'] != whole['log_path']
    assert drops(loaded['log_path']) == [3, 6]
    for name, value in weights(whole, 3).items():
        assert np.array_equal(value, weights(loaded, 3)[name]), name
    with open(runfiles.metrics_path(loaded['log_path'])) as handle:
        assert [json.loads(line)['epoch'] for line in handle] == [0, 1, 2]
