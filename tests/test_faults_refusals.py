"""Refusals at a run's start (issue 24): a run refused at its start leaves nothing of itself
(class 7: engine.fit.setup undoes its claim, lock and TensorBoard files), and flag values
that cannot be right are refused, never replaced by a default (class 9)."""
import os
import shutil
import subprocess
import sys

import pytest

from engine import checkpoint, runfiles
from helpers import assert_one_line_error
from tinyrun import LOG, ROOT, run_script, snapshot, tiny_data, train


@pytest.fixture(scope='module')
def data(tmp_path_factory):
    return tiny_data(tmp_path_factory.mktemp('fashion-tiny'))


@pytest.fixture(scope='module')
def trained(data, tmp_path_factory):
    """A finished 1-epoch run with its checkpoint and a best checkpoint (copy it)."""
    log_dir = tmp_path_factory.mktemp('trained')
    train(data, log_dir, '--num-epochs', '1', '--save-best')
    return log_dir


def blocked_folder(tmp_path):
    """A TensorBoard folder that cannot be made: a file stands where its parent would."""
    blocker = tmp_path / 'blocker'
    blocker.write_text('a file\n')
    return str(blocker / 'board')


# ---------------------------------------------------------------- class 7

@pytest.mark.slow
def test_a_new_run_refused_for_its_tensorboard_folder_leaves_nothing(data, tmp_path):
    log_dir = tmp_path / 'snap'
    proc = run_script(data, log_dir, '--num-epochs', '1', '--tensorboard',
                      blocked_folder(tmp_path))
    assert_one_line_error(proc, 'cannot write TensorBoard events')
    assert snapshot(log_dir) == {}


@pytest.mark.slow
def test_a_resume_refused_for_its_tensorboard_folder_keeps_the_run_as_it_was(
        data, trained, tmp_path):
    log_dir = tmp_path / 'snap'
    shutil.copytree(trained, log_dir)
    before = snapshot(log_dir)
    proc = run_script(data, log_dir, '--num-epochs', '2', '--resume', '--save-best',
                      '--tensorboard', blocked_folder(tmp_path))
    assert_one_line_error(proc, 'cannot write TensorBoard events')
    assert snapshot(log_dir) == before   # no lock file left, no line added


@pytest.mark.slow
def test_a_resume_refused_for_a_damaged_best_checkpoint_leaves_no_lock(data, trained,
                                                                       tmp_path):
    log_dir = tmp_path / 'snap'
    shutil.copytree(trained, log_dir)
    prefix = runfiles.weights_prefix(str(log_dir / LOG))
    with open(checkpoint.state_file(prefix, 'best'), 'w') as handle:
        handle.write('{"version": 1')
    before = snapshot(log_dir)
    proc = run_script(data, log_dir, '--num-epochs', '2', '--resume', '--save-best')
    assert_one_line_error(proc, 'damaged')
    assert snapshot(log_dir) == before


def test_a_discarded_tensorboard_writer_removes_only_its_own_file(tmp_path):
    """What setup() calls when a refusal comes after the writer was made."""
    from engine.tensorboard import ScalarWriter
    board = tmp_path / 'board'
    board.mkdir()
    (board / 'events.out.tfevents.1.earlier').write_text('an earlier run\n')
    writer = ScalarWriter(str(board))
    assert len(os.listdir(str(board))) == 2
    writer.discard()
    assert os.listdir(str(board)) == ['events.out.tfevents.1.earlier']
    fresh = ScalarWriter(str(tmp_path / 'new'))
    fresh.discard()
    assert not (tmp_path / 'new').exists()


# ---------------------------------------------------------------- class 9: flags

@pytest.mark.slow
@pytest.mark.parametrize('extra,words', [
    (['--num-classes', '0'], ['--num-classes must be at least 1', 'got 0']),
    (['--num-classes', '-3'], ['--num-classes must be at least 1']),
    (['--widen-factor', '0'], ['--widen-factor must be at least 1']),
    (['--data-shape', '0'], ['--data-shape must be at least 1'])])
def test_train_model_refuses_values_that_cannot_be_right(data, tmp_path, extra, words):
    """--num-classes 0 trained silently with the data set's 10 classes."""
    proc = run_script(data, tmp_path / 'snap', '--num-epochs', '1', *extra)
    assert_one_line_error(proc, *words)
    assert not (tmp_path / 'snap').exists()


@pytest.mark.slow
def test_train_imagenet_refuses_depth_0(tmp_path):
    proc = subprocess.run([sys.executable, 'train_imagenet.py', '--depth', '0', '--cpu',
                           '--log-dir', str(tmp_path / 'snap')],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert_one_line_error(proc, '--depth must be at least 1')


@pytest.mark.slow
@pytest.mark.parametrize('argv,words', [
    (['show_model.py', '--network', 'symbol_cross', '--num-classes', '0'], ['--num-classes']),
    (['show_model.py', '--network', 'cross', '--depth', '14', '--num-classes', '0'],
     ['--num-classes']),
    (['tools/components.py', '--network', 'cross', '--depth', '14', '--num-classes', '0'],
     ['--num-classes']),
    (['tools/components.py', '--network', 'cross', '--depth', '14', '--widen-factor', '0'],
     ['--widen-factor'])])
def test_other_scripts_refuse_zero_counts(tmp_path, argv, words):
    proc = subprocess.run([sys.executable] + argv + ['--out', str(tmp_path / 'out')],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert_one_line_error(proc, *words)
    assert not (tmp_path / 'out').exists()


@pytest.mark.slow
def test_inference_refuses_a_negative_gpu(trained, tmp_path):
    proc = subprocess.run([sys.executable, 'tools/evaluate.py', str(trained / LOG), '--gpus',
                           '-1', '--png', str(tmp_path / 'c.png')],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert_one_line_error(proc, '--gpus', 'GPU ids start at 0, not -1')
    assert not (tmp_path / 'c.png').exists()
