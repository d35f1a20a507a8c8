"""What a harsh user breaks: run bookkeeping, damaged checkpoints, a full disk (issue 8).

One tiny run (cross d14, 128 Fashion-MNIST images, 2 epochs, a checkpoint after each) is
trained once; every test works on its own copy of it.
"""
import json
import os
import pickle
import shutil
import subprocess
import sys

import mxnet as mx
import pytest

import network
import train_model
from common.errors import UserError
from engine import checkpoint, logs, ndfile, runfiles
from engine.lock import RunLock, lock_path
from helpers import (assert_error_after_progress, assert_one_line_error, fill,
                     write_fashion_slice)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = ('--lr-steps', '1', '--checkpoint-epochs', '1')
LOG = os.path.join('fashion-mnist', 'cross', 'cross_d14w1_exp1.txt')


@pytest.fixture(scope='module')
def tiny_data(tmp_path_factory):
    return write_fashion_slice(str(tmp_path_factory.mktemp('fashion-tiny')), 128, 50)


def flags(data_dir, log_dir, *extra):
    return ['--dataset', 'fashion-mnist', '--data-dir', data_dir, '--log-dir', str(log_dir),
            '--network', 'cross', '--depth', '14', '--cpu', '--batch-size', '32',
            '--test-batch-size', '50', '--log-iters', '4', '--rand-seed', '7',
            '--no-progress'] + list(extra)


def train(data_dir, log_dir, *extra):
    return train_model.run(train_model.parse(flags(data_dir, log_dir, *extra)))


def run_script(data_dir, log_dir, *extra):
    return subprocess.run([sys.executable, 'train_model.py'] + flags(data_dir, log_dir, *extra),
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope='module')
def trained(tiny_data, tmp_path_factory):
    """A finished 2-epoch run with checkpoints 1 and 2 (do not change: copy it)."""
    log_dir = tmp_path_factory.mktemp('trained')
    train(tiny_data, log_dir, '--num-epochs', '2', *STEPS)
    return log_dir


@pytest.fixture
def run_copy(trained, tmp_path):
    """A copy of the trained run's snapshot folder: (log dir, log path, weights prefix)."""
    log_dir = tmp_path / 'snap'
    shutil.copytree(trained, log_dir)
    log = str(log_dir / LOG)
    return log_dir, log, runfiles.weights_prefix(log)


def snapshot(folder):
    """Every file under `folder` with its bytes: to show that nothing changed."""
    found = {}
    for top, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(top, name)
            with open(path, 'rb') as handle:
                found[os.path.relpath(path, folder)] = handle.read()
    return found


def resume(data_dir, log_dir, *extra):
    return train(data_dir, log_dir, '--num-epochs', '3', '--resume', *STEPS, *extra)


# ---------------------------------------------------------------- 1. run bookkeeping

def foreign_weights(path, depth):
    """The weights of another network (cross of another depth), as a checkpoint holds them."""
    net = network.get_net('cross', num_classes=10, depth=depth, widen_factor=1)
    net.initialize(network.original_initializer())
    net(mx.nd.zeros((1, 1, 28, 28)))
    net.save_parameters(path)


@pytest.mark.slow
def test_a_failed_load_epoch_leaves_nothing_that_reads_as_a_run(tiny_data, run_copy):
    log_dir, log, prefix = run_copy
    before = snapshot(log_dir)
    for depth in ('20', '14'):   # another depth; the same depth with another net's weights
        if depth == '14':
            foreign_weights(checkpoint.params_file(prefix, 1), 20)
            before = snapshot(log_dir)
        with pytest.raises(UserError, match='lack parameter|shape mismatch|network lacks'):
            train(tiny_data, log_dir, '--depth', depth, '--num-epochs', '2',
                  '--load-epoch', '1', '--model-prefix', prefix)
        assert snapshot(log_dir) == before   # no log, no metrics, no weights folder, no lock


@pytest.mark.slow
def test_a_run_number_whose_weights_remain_is_not_taken(tiny_data, run_copy):
    log_dir, log, prefix = run_copy
    os.remove(log)
    os.remove(runfiles.metrics_path(log))
    weights = snapshot(os.path.dirname(prefix))
    result = train(tiny_data, log_dir, '--num-epochs', '1', *STEPS)
    assert result['log_path'].endswith('cross_d14w1_exp2.txt')
    assert snapshot(os.path.dirname(prefix)) == weights


@pytest.mark.slow
def test_resume_continues_only_the_latest_run(tiny_data, run_copy):
    log_dir, log, _ = run_copy
    latest = log.replace('exp1.txt', 'exp2.txt')   # stopped before its first checkpoint
    with open(latest, 'w') as handle:
        handle.write('%s\n' % latest)
    before = snapshot(log_dir)
    with pytest.raises(UserError, match='the latest run .*exp2.txt has no checkpoint'):
        resume(tiny_data, log_dir)
    assert snapshot(log_dir) == before


@pytest.mark.slow
@pytest.mark.parametrize('how', [('--load-epoch', '2'), ('--resume',)])
def test_starting_at_the_final_epoch_is_refused(tiny_data, run_copy, how):
    log_dir = run_copy[0]
    before = snapshot(log_dir)
    with pytest.raises(UserError, match='nothing to train: .* after epoch 2 and --num-epochs '
                                        'is 2'):
        train(tiny_data, log_dir, '--num-epochs', '2', *how, *STEPS)
    assert snapshot(log_dir) == before


@pytest.mark.slow
def test_a_second_process_on_a_live_run_gets_one_line(tiny_data, run_copy):
    log_dir, log, _ = run_copy
    before = snapshot(log_dir)
    with RunLock(log):   # this process trains the run
        proc = run_script(tiny_data, log_dir, '--num-epochs', '3', '--resume', *STEPS)
        assert_one_line_error(proc, 'in use by another process (pid %d' % os.getpid())
        with pytest.raises(UserError, match='in use'):   # also within one process
            RunLock(log).acquire()
    assert snapshot(log_dir) == before   # released: the lock file is gone


@pytest.fixture(scope='module')
def resumed(tiny_data, trained, tmp_path_factory):
    """The trained run resumed for a 3rd epoch under another thread count, after a process
    that held it died (its lock file is left with its pid)."""
    log_dir = tmp_path_factory.mktemp('resumed')
    shutil.copytree(trained, log_dir, dirs_exist_ok=True)
    log = str(log_dir / LOG)
    dead = subprocess.Popen(['true'])
    dead.wait()
    with open(lock_path(log), 'w') as handle:
        handle.write('%d\n' % dead.pid)
    threads = os.environ['OMP_NUM_THREADS']
    os.environ['OMP_NUM_THREADS'] = str(int(threads) + 1)
    try:
        resume(tiny_data, log_dir, '--log-iters', '8')   # reporting flags may change
    finally:
        os.environ['OMP_NUM_THREADS'] = threads
    return log, dead.pid, threads


@pytest.mark.slow
def test_a_stale_lock_of_a_dead_process_is_taken_over(resumed):
    log, pid, _ = resumed
    assert not os.path.exists(lock_path(log))
    with open(log) as handle:
        text = handle.read()
    assert 'took over the lock of process %d, which is no longer running' % pid in text
    assert [r.epoch for r in logs.parse_log(log).records] == [0, 1, 2]


@pytest.mark.slow
def test_a_resume_under_another_thread_count_says_so_in_the_log(resumed):
    log, _, threads = resumed
    with open(log) as handle:
        text = handle.read()
    assert 'OMP_NUM_THREADS is %d, the checkpoint was written with %s' % (
        int(threads) + 1, threads) in text
    state = checkpoint.read_state(runfiles.weights_prefix(log), 3)
    assert state['omp_num_threads'] == str(int(threads) + 1)


@pytest.mark.slow
@pytest.mark.parametrize('changed, named', [
    (('--batch-size', '64'), ['--batch-size 32 -> 64']),
    (('--lr', '0.5', '--momentum', '0.8'), ['--lr 0.1 -> 0.5', '--momentum 0.9 -> 0.8']),
    (('--lr-steps', '2'), ['--lr-steps 1 -> 2']),
    (('--wd', '0.001', '--rand-seed', '8'), ['--wd 0.0001 -> 0.001', '--rand-seed 7 -> 8']),
    (('--bn-momentum', '0.99'), ['--bn-momentum 0.9 -> 0.99']),
    (('--data-shape', '32', '--test-batch-size', '20'),
     ['--data-shape 28 -> 32', '--test-batch-size 50 -> 20']),
])
def test_resume_with_other_training_flags_is_refused(tiny_data, run_copy, changed, named):
    log_dir = run_copy[0]
    before = snapshot(log_dir)
    argv = flags(tiny_data, log_dir, '--num-epochs', '3', '--resume', *STEPS)
    argv += list(changed)   # later flags win
    with pytest.raises(UserError, match='trained with other flags') as err:
        train_model.run(train_model.parse(argv))
    for words in named:
        assert words in str(err.value)
    assert snapshot(log_dir) == before


# ---------------------------------------------------------------- 2. checkpoints

def test_checkpoint_weights_are_byte_for_byte_what_mxnet_writes(tmp_path):
    net = network.get_net('cross', num_classes=10, depth=14, widen_factor=1)
    net.initialize(network.original_initializer(), ctx=[mx.cpu(0), mx.cpu(1)])
    net(mx.nd.zeros((1, 1, 28, 28)))
    net.save_parameters(str(tmp_path / 'mxnet.params'))
    ndfile.save_nd_dict(str(tmp_path / 'ours.params'), checkpoint.weights_of(net))
    assert (tmp_path / 'ours.params').read_bytes() == (tmp_path / 'mxnet.params').read_bytes()


@pytest.mark.slow
def test_checkpoint_state_is_json_and_an_old_pickle_is_never_unpickled(tiny_data, run_copy,
                                                                       tmp_path):
    log_dir, _, prefix = run_copy
    with open(checkpoint.state_file(prefix, 2)) as handle:
        state = json.load(handle)
    assert state['epoch'] == 2 and state['args']['batch_size'] == 32
    assert sorted(mx.nd.load(checkpoint.optimizer_file(prefix, 2))) == \
        sorted(state['optimizer_update_counts']['per_index'])
    marker = tmp_path / 'unpickled'
    with open(checkpoint.state_file(prefix, 2), 'wb') as handle:
        pickle.dump(_Exploit(str(marker)), handle, protocol=4)
    with pytest.raises(UserError, match='old pickle format'):
        resume(tiny_data, log_dir)
    assert not marker.exists()


class _Exploit:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def _edit_state(prefix, change):
    path = checkpoint.state_file(prefix, 2)
    with open(path) as handle:
        state = json.load(handle)
    change(state)
    with open(path, 'w') as handle:
        json.dump(state, handle)


@pytest.mark.slow
@pytest.mark.parametrize('change, message', [
    (lambda s: s.update(num_update='12'), "field 'num_update' must be an integer >= 0"),
    (lambda s: s.pop('rand_seed'), "field 'rand_seed' is missing"),
    (lambda s: s.update(epoch=5), 'it says epoch 5'),
    (lambda s: s.update(args=[1]), "field 'args' must be an object"),
    (lambda s: s['optimizer_update_counts'].update(per_index={'x': 1}),
     "field 'optimizer_update_counts'"),
])
def test_a_damaged_state_field_is_one_line(tiny_data, run_copy, change, message):
    log_dir, _, prefix = run_copy
    _edit_state(prefix, change)
    with pytest.raises(UserError, match='is damaged') as err:
        resume(tiny_data, log_dir)
    assert message in str(err.value)


def _cut(path, fraction):
    with open(path, 'rb') as handle:
        data = handle.read()
    with open(path, 'wb') as handle:
        handle.write(data[:int(len(data) * fraction)])


def _random(path):
    with open(path, 'wb') as handle:
        handle.write(os.urandom(4096))


def _edit_params(path, edit):
    arrays = mx.nd.load(path)
    edit(arrays)
    mx.nd.save(path, arrays)


def _first_conv(arrays):
    return sorted(k for k in arrays if k.endswith('weight'))[0]


@pytest.mark.slow
@pytest.mark.parametrize('damage, message', [
    (lambda p: _cut(p, 0), 'is an empty file (0 bytes)'),
    (lambda p: _cut(p, 0.5), 'is truncated'),
    (_random, 'is not an MXNet parameter file'),
    (lambda p: _edit_params(p, lambda a: a.pop(_first_conv(a))), 'lack parameter'),
    (lambda p: _edit_params(p, lambda a: a.update({_first_conv(a): mx.nd.zeros((3, 3))})),
     'shape mismatch for '),
    (lambda p: foreign_weights(p, 20), 'network lacks'),
])
def test_damaged_weights_are_one_line_saying_what_is_wrong(tiny_data, run_copy, damage,
                                                           message):
    log_dir, _, prefix = run_copy
    damage(checkpoint.params_file(prefix, 2))
    before = snapshot(log_dir)
    with pytest.raises(UserError, match='the weights %s' % checkpoint.params_file(prefix, 2)) \
            as err:
        resume(tiny_data, log_dir)
    assert message in str(err.value) and '\n' not in str(err.value)
    assert snapshot(log_dir) == before


@pytest.mark.slow
def test_damaged_optimizer_states_are_one_line(tiny_data, run_copy):
    log_dir, _, prefix = run_copy
    _cut(checkpoint.optimizer_file(prefix, 2), 0.9)
    with pytest.raises(UserError, match='the optimizer states .* is truncated'):
        resume(tiny_data, log_dir)


# ---------------------------------------------------------------- 4. a full disk

@pytest.mark.slow
def test_a_full_disk_from_the_start_is_one_line(tiny_data, small_disk):
    fill(small_disk)
    proc = run_script(tiny_data, small_disk, '--num-epochs', '1')
    run = os.path.splitext(str(small_disk / LOG))[0]   # its lock or log, whichever first
    assert_one_line_error(proc, 'cannot write %s.' % run, 'No space left on device',
                          'no checkpoint was saved yet')
    assert 'Logging error' not in proc.stderr
    assert sorted(snapshot(small_disk)) == ['filler']   # nothing that reads as a run


def copy_first_epoch(trained, disk):
    """The trained run as it was after its first epoch's checkpoint, onto `disk`."""
    shutil.copytree(trained, disk, dirs_exist_ok=True)
    prefix = runfiles.weights_prefix(str(disk / LOG))
    for path in (checkpoint.params_file(prefix, 2), checkpoint.optimizer_file(prefix, 2),
                 checkpoint.state_file(prefix, 2)):
        os.remove(path)
    return prefix


@pytest.mark.slow
def test_a_failed_checkpoint_write_stops_and_keeps_the_earlier_ones(tiny_data, trained,
                                                                    small_disk):
    prefix = copy_first_epoch(trained, small_disk)
    kept = snapshot(small_disk)
    fill(small_disk, leave=64 * 1024)   # room for the log lines, none for the weights
    with pytest.raises(UserError) as err:
        train(tiny_data, small_disk, '--num-epochs', '2', '--resume', *STEPS)
    assert str(err.value) == (
        'cannot write %s (No space left on device); stopped, the last good checkpoint is %s'
        % (checkpoint.params_file(prefix, 2), checkpoint.params_file(prefix, 1)))
    now = snapshot(small_disk)
    for name, data in kept.items():   # earlier checkpoints intact, the log only grew
        assert now[name].startswith(data), name
    assert sorted(now) == sorted(kept) + ['filler']   # no half-written or scratch files
    assert checkpoint.checkpoint_epochs(prefix) == [1]
    with open(str(small_disk / LOG)) as handle:
        assert 'Epoch[1] Validation-accuracy=' in handle.read().split('resuming from')[-1]


@pytest.mark.slow
def test_resume_on_a_full_disk_is_one_line(tiny_data, trained, small_disk):
    copy_first_epoch(trained, small_disk)
    fill(small_disk)
    kept = snapshot(small_disk)
    proc = run_script(tiny_data, small_disk, '--num-epochs', '2', '--resume', *STEPS)
    assert_one_line_error(proc, 'No space left on device', 'the last good checkpoint is')
    assert 'Logging error' not in proc.stderr
    assert snapshot(small_disk) == kept


def prepare(*argv):
    return subprocess.run([sys.executable, '-m', 'data.prepare', 'fashion-mnist'] + list(argv),
                          capture_output=True, text=True, cwd=ROOT)


@pytest.mark.slow
def test_data_prepare_on_a_full_disk_is_one_line_and_leaves_nothing(small_disk):
    out = small_disk / 'fashion-mnist'
    proc = prepare('--out-dir', str(out))
    assert_error_after_progress(proc, 'cannot write the records in', 'No space left on device')
    assert os.listdir(str(out)) == []          # no partial folder, no record file


@pytest.mark.slow
def test_data_prepare_force_on_a_full_disk_keeps_the_records_there(small_disk):
    out = small_disk / 'fashion-mnist'
    write_fashion_slice(str(out), 64, 16)      # a finished (small) preparation
    kept = snapshot(small_disk)
    proc = prepare('--out-dir', str(out), '--force')
    assert_error_after_progress(proc, 'No space left on device', 'prepared there before are kept')
    assert snapshot(small_disk) == kept
