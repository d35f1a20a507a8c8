"""Links planted where the project writes (issue 24, class 2): every file it creates or
replaces refuses to follow a link at its final path component (common/atomic.py: a fresh
O_EXCL name then a rename; O_NOFOLLOW for the files it appends to and for lock files),
and a refusal is one line. Nothing outside the folder is ever written.
"""
import logging
import os
import subprocess
import sys

import pytest

from common import atomic
from common.errors import UserError
from common.pidlock import PidLock
from engine import logs, runfiles
from engine.checkpoint import WriteFailed
from engine.lock import RunLock
from helpers import assert_one_line_error
from logwriters import write_port_log

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from tools.sweeper import state as sweep_state  # noqa: E402


@pytest.fixture
def outside(tmp_path):
    """A file outside the folders the tools write to; it must never change."""
    path = tmp_path / 'outside.txt'
    path.write_text('precious\n')
    return path


def assert_untouched(outside):
    assert outside.read_text() == 'precious\n'


def test_a_link_planted_at_the_scratch_name_is_never_written_through(tmp_path, outside,
                                                                      monkeypatch):
    """The scratch name is drawn at random; planted under the very name drawn, the link
    is skipped (O_EXCL) and another name drawn."""
    folder = tmp_path / 'out'
    folder.mkdir()
    target = folder / 'results.csv'
    tokens = iter(['aaaa', 'aaaa', 'bbbb'])
    monkeypatch.setattr(atomic.secrets, 'token_hex', lambda n: next(tokens))
    planted = folder / ('.results.csv.tmp%d.aaaa' % os.getpid())
    planted.symlink_to(outside)
    atomic.write_whole_text(str(target), 'new\n')
    assert target.read_text() == 'new\n' and not target.is_symlink()
    assert_untouched(outside)
    assert planted.is_symlink()   # not ours: left as it was


def test_a_link_at_the_final_name_is_replaced_not_written_through(tmp_path, outside):
    target = tmp_path / 'plan.json'
    target.symlink_to(outside)
    atomic.write_whole_text(str(target), '{}\n')
    assert not target.is_symlink() and target.read_text() == '{}\n'
    assert_untouched(outside)


@pytest.mark.slow
def test_get_results_replaces_planted_links_in_its_outputs(tmp_path, outside):
    root = tmp_path / 'snap'
    write_port_log(str(root / 'cifar10' / 'cross'), 'cross_d56w1_exp1.txt', 0.9, 0.95)
    for name in ('results.csv', 'results.md'):
        (root / name).symlink_to(outside)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'get_results.py'), str(root)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert_untouched(outside)
    assert not (root / 'results.csv').is_symlink()
    assert (root / 'results.csv').read_text().startswith('dataset,')


def test_a_link_at_a_runs_lock_is_refused_with_one_line(tmp_path, outside):
    log = str(tmp_path / 'cross_d14w1_exp1.txt')
    os.symlink(str(outside), runfiles.lock_path(log))
    with pytest.raises(WriteFailed, match='symbolic link'):
        RunLock(log).acquire()
    assert_untouched(outside)


@pytest.mark.parametrize('kind', ['link to a file', 'dangling link'])
def test_pid_locks_never_follow_a_link(tmp_path, outside, kind):
    """The sweep's lock, a data folder's lock, a run's lock: all are PidLocks."""
    path = tmp_path / 'sweep.lock'
    path.symlink_to(outside if kind == 'link to a file' else tmp_path / 'nowhere')
    with pytest.raises(OSError, match='symbolic link'):
        PidLock(str(path)).acquire()
    assert_untouched(outside)
    assert not (tmp_path / 'nowhere').exists()
    with pytest.raises(UserError, match='cannot write the sweep lock'):
        sweep_state.SweepLock(str(tmp_path)).acquire()


def test_a_fifo_as_lock_file_is_refused_not_blocking(tmp_path):
    path = tmp_path / 'x.lock'
    os.mkfifo(str(path))
    with pytest.raises(OSError, match='not a regular file'):
        PidLock(str(path)).acquire()
    assert PidLock.holder(str(path)) is None   # a look that does not block either


def test_a_link_in_place_of_the_metrics_file_is_refused(tmp_path, outside):
    metrics = tmp_path / 'cross_d14w1_exp1.metrics.jsonl'
    metrics.symlink_to(outside)
    with pytest.raises(WriteFailed, match='symbolic link'):
        logs.append_metrics(str(metrics), dict(epoch=0, val_acc=0.5))
    assert_untouched(outside)


def test_a_link_in_place_of_the_log_is_refused(tmp_path, outside):
    log = tmp_path / 'cross_d14w1_exp1.txt'
    log.symlink_to(outside)
    with pytest.raises(WriteFailed, match='symbolic link'):
        logs.setup_logger(str(log), 0, 1)
    logging.getLogger(logs.LOGGER_NAME).handlers.clear()
    assert_untouched(outside)


def test_a_new_run_never_claims_a_number_whose_log_name_is_a_link(tmp_path, outside):
    (tmp_path / 'cross_d14w1_exp1.txt').symlink_to(outside)
    (tmp_path / 'cross_d14w1_exp2.txt').symlink_to(tmp_path / 'dangling')
    claimed = runfiles.claim_log_path(str(tmp_path), 'cross_d14w1_exp')
    assert claimed.endswith('cross_d14w1_exp3.txt')
    assert not (tmp_path / 'dangling').exists()
    assert_untouched(outside)


@pytest.mark.slow
def test_a_link_at_a_sweep_runs_output_is_one_line(tmp_path, outside):
    output = tmp_path / 'sweep-output' / 'cross_d14w1_seed1.out'
    output.parent.mkdir()
    output.symlink_to(outside)
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools', 'sweep.py'), '--log-dir', str(tmp_path),
         '--networks', 'cross', '--depths', '14', '--seeds', '1', '--interval', '0.05',
         '--train-command', 'true', '--', '--dataset', 'fashion-mnist'],
        capture_output=True, text=True, timeout=60)
    assert_one_line_error(proc, 'cannot start cross_d14w1_seed1', 'symbolic link')
    assert_untouched(outside)
