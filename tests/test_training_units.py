"""Pieces of the training machinery that need no data: schedule, devices, run files."""
import argparse
import multiprocessing
import os

import mxnet as mx
import pytest

from common import args as flags
from common import runfiles
from common.devices import contexts_from_args, parse_gpu_list
from common.errors import UserError
from common.fit import lr_at, lr_step_updates


def parse(*argv):
    parser = argparse.ArgumentParser()
    for add in (flags.add_network_args, flags.add_data_args, flags.add_device_args,
                flags.add_fit_args, flags.add_log_args):
        add(parser)
    return flags.resolve_defaults(parser.parse_args(list(argv)))


def test_lr_drops_after_exactly_the_step_batches():
    steps = lr_step_updates([2, 3], epoch_size=10)
    assert steps == [20, 30]
    lrs = [lr_at(n, 0.1, 0.1, steps) for n in range(35)]
    # batches 0..19 (epochs 0 and 1) at 0.1, 20..29 at 0.01, 30.. at 0.001
    assert lrs[:20] == [0.1] * 20
    assert all(abs(lr - 0.01) < 1e-12 for lr in lrs[20:30])
    assert all(abs(lr - 0.001) < 1e-12 for lr in lrs[30:])


def test_default_lr_steps_are_half_three_quarters_seven_eighths():
    assert parse('--num-epochs', '400').lr_step_epochs == [200, 300, 350]
    assert parse('--lr-steps', '100,150').lr_step_epochs == [100, 150]
    with pytest.raises(UserError, match='comma-separated'):
        parse('--lr-steps', 'ten')


@pytest.mark.parametrize('dataset, epochs, aug, test_batch, classes, shape', [
    ('cifar10', 400, 1, 400, 10, 32),
    ('cifar100', 400, 1, 400, 100, 32),
    ('svhn', 40, 0, 280, 10, 32),
    ('fashion-mnist', 40, 1, 400, 10, 28),
])
def test_per_dataset_defaults(dataset, epochs, aug, test_batch, classes, shape):
    args = parse('--dataset', dataset)
    assert (args.num_epochs, args.aug_type, args.test_batch_size, args.num_classes,
            args.data_shape) == (epochs, aug, test_batch, classes, shape)
    assert args.data_dir == os.path.join('data', dataset)
    assert args.checkpoint_epochs == epochs // 8
    # anything given on the command line wins
    args = parse('--dataset', dataset, '--num-epochs', '3', '--aug-type', '2',
                 '--num-classes', '7')
    assert (args.num_epochs, args.aug_type, args.num_classes, args.checkpoint_epochs) == (
        3, 2, 7, 1)


def test_gpu_list_errors_are_user_errors():
    assert parse_gpu_list('0,1') == [0, 1]
    assert parse_gpu_list('') == []
    for bad in ('a,b', '0,0', '-1'):
        with pytest.raises(UserError):
            parse_gpu_list(bad)


def test_devices_without_gpus():
    assert mx.context.num_gpus() == 0  # the CI machine; this test documents CPU behaviour
    notices = []
    assert contexts_from_args(parse(), log=notices.append) == [mx.cpu(0)]
    assert 'no GPU' in notices[0]
    assert contexts_from_args(parse('--cpu', '--cpu-contexts', '2')) == [mx.cpu(0), mx.cpu(1)]
    assert contexts_from_args(parse('--gpus', '')) == [mx.cpu(0)]
    with pytest.raises(UserError, match='sees none.*--cpu.*mxnet-cu117'):
        contexts_from_args(parse('--gpus', '0,1'))


def _claim(folder):
    return runfiles.claim_log_path(folder, 'cross_d14w1_exp')


def test_concurrent_runs_get_distinct_run_numbers(tmp_path):
    with multiprocessing.get_context('fork').Pool(4) as pool:
        paths = pool.map(_claim, [str(tmp_path)] * 12)
    assert len(set(paths)) == 12
    assert sorted(os.path.basename(p) for p in paths) == sorted(
        'cross_d14w1_exp%d.txt' % i for i in range(1, 13))


def test_existing_logs_are_never_reused(tmp_path):
    (tmp_path / 'cross_d14w1_exp1.txt').write_text('old run\n')
    (tmp_path / 'cross_d14w1_exp3.txt').write_text('old run\n')
    assert _claim(str(tmp_path)).endswith('exp2.txt')
    assert _claim(str(tmp_path)).endswith('exp4.txt')
    assert (tmp_path / 'cross_d14w1_exp1.txt').read_text() == 'old run\n'


def test_unwritable_log_dir_is_a_user_error(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('')
    with pytest.raises(UserError, match='writable --log-dir'):
        runfiles.claim_log_path(str(blocker / 'sub'), 'x_d1w1_exp')


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / 'a.params'
    target.write_text('good')

    def broken(path):
        with open(path, 'w') as handle:
            handle.write('half')
        raise IOError('disk full')
    with pytest.raises(IOError):
        runfiles.atomic_write(str(target), broken)
    assert target.read_text() == 'good'
    assert os.listdir(tmp_path) == ['a.params']


def test_weights_layout_follows_the_log(tmp_path):
    folder = runfiles.config_dir(str(tmp_path), 'svhn', 0, 'cross')
    assert folder.endswith(os.path.join('svhn_noaug', 'cross'))
    log = runfiles.claim_log_path(folder, runfiles.config_stem('cross', 56, 1, None))
    prefix = runfiles.weights_prefix(log)
    assert prefix == os.path.join(folder, 'weights', 'cross_d56w1_exp1', 'cross_d56w1_exp1')
    assert runfiles.log_of_prefix(prefix) == log
