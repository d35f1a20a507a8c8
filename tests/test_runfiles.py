"""Where a run's files go, atomic claims and writes (engine/runfiles.py, common/atomic.py)."""
import multiprocessing
import os

import pytest

from common.atomic import atomic_write
from common.errors import UserError
from engine import runfiles


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
        atomic_write(str(target), broken)
    assert target.read_text() == 'good'
    assert os.listdir(tmp_path) == ['a.params']


def test_weights_layout_follows_the_log(tmp_path):
    folder = runfiles.config_dir(str(tmp_path), 'svhn', 0, 'cross')
    assert folder.endswith(os.path.join('svhn_noaug', 'cross'))
    log = runfiles.claim_log_path(folder, runfiles.config_stem('cross', 56, 1, None))
    prefix = runfiles.weights_prefix(log)
    assert prefix == os.path.join(folder, 'weights', 'cross_d56w1_exp1', 'cross_d56w1_exp1')
    assert runfiles.log_of_prefix(prefix) == log


@pytest.mark.parametrize('stem, run', [('cross_d56w1_exp', 3), ('cross_d56w1_seed7', 1)])
def test_run_number_split_undoes_the_log_name(stem, run):
    name = runfiles.run_log_name(stem, run)
    assert runfiles.split_run_number(name, stem) == run
    assert runfiles.split_run_number(name, 'half_d56w1_exp') is None
