"""Which files belong to a run (issue 24, class 1): the sweep, --resume, get_results and a
new run's claim all ask engine/runfiles.py's one rule (the config folder, the exact name
with its run number, the head's configuration), and count epochs, never lines.

The runs here are written by tests/logwriters.py (no training): the bookkeeping is the
subject, not the weights.
"""
import json
import os
import subprocess
import sys

import pytest

import get_results
from common.errors import UserError
from engine import checkpoint, logs, runfiles
from logwriters import write_port_log

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from tools.sweeper import state as sweep_state  # noqa: E402

POINT = sweep_state.Point('cross', 14, 1, 1)


def fake_checkpoint(log, epoch):
    """The two files that make a checkpoint count (checkpoint_epochs)."""
    prefix = runfiles.weights_prefix(log)
    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    for path in (checkpoint.params_file(prefix, epoch), checkpoint.state_file(prefix, epoch)):
        with open(path, 'w') as handle:
            handle.write('{}')


def finished_run(folder, name='cross_d14w1_exp1.txt', epochs=4, exp_name=None):
    log = write_port_log(folder, name, 0.9, 0.95, epochs_done=epochs, num_epochs=epochs,
                         exp_name=exp_name)
    fake_checkpoint(log, epochs)
    return log


def repeat_metrics(log, last):
    """Append the last `last` metrics lines again, as a resumed run writes them."""
    with open(runfiles.metrics_path(log)) as handle:
        lines = handle.readlines()
    with open(runfiles.metrics_path(log), 'a') as handle:
        handle.writelines(lines[-last:])


# ---------------------------------------------------------------- the sweep

def test_sweep_does_not_take_a_noaug_run_for_the_augmented_one(tmp_path):
    seed = str(tmp_path / 'seed1')
    finished_run(os.path.join(seed, 'fashion-mnist_noaug', 'cross'))
    augmented = sweep_state.read_run(seed, POINT, 'exp', ['--dataset', 'fashion-mnist'])
    assert augmented.log is None and not augmented.finished
    plain = sweep_state.read_run(seed, POINT, 'exp',
                                 ['--dataset', 'fashion-mnist', '--aug-type', '0'])
    assert plain.finished and plain.log.endswith('cross_d14w1_exp1.txt')


@pytest.mark.slow
def test_sweep_dry_run_plans_the_augmented_run_anew(tmp_path):
    finished_run(str(tmp_path / 'seed1' / 'fashion-mnist_noaug' / 'cross'))
    finished_run(str(tmp_path / 'seed1' / 'cifar10' / 'cross'))   # another data set
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'tools', 'sweep.py'), '--dry-run', '--log-dir',
         str(tmp_path), '--networks', 'cross', '--depths', '14', '--seeds', '1',
         '--train-command', 'true', '--', '--dataset', 'fashion-mnist'],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert 'cross_d14w1_seed1: new run' in proc.stdout, proc.stdout


def test_a_run_stopped_twice_in_its_last_epoch_is_not_finished(tmp_path):
    """Checkpoint after epoch 2 of 4; stopped in epoch 4 twice: epoch 3 is logged twice
    (each resume re-runs it), epoch 4 never: 4 lines, 3 epochs."""
    folder = str(tmp_path / 'seed1' / 'fashion-mnist' / 'cross')
    log = write_port_log(folder, 'cross_d14w1_exp1.txt', 0.9, 0.95, epochs_done=3,
                         num_epochs=4)
    repeat_metrics(log, last=1)
    fake_checkpoint(log, 2)
    state = sweep_state.read_run(str(tmp_path / 'seed1'), POINT, 'exp',
                                 ['--dataset', 'fashion-mnist'])
    assert state.epochs_done == 3 and not state.finished and state.resumable
    run = logs.parse_log(log)
    assert run.epochs_done == 3 and not run.complete


def test_epochs_beyond_the_run_length_are_not_counted(tmp_path):
    """A metrics line of epoch 9 in a 4-epoch run (another run's, or edited): no epoch of
    this run; 3 real epochs + it are not 4 done."""
    folder = str(tmp_path / 'seed1' / 'fashion-mnist' / 'cross')
    log = write_port_log(folder, 'cross_d14w1_exp1.txt', 0.9, 0.95, epochs_done=3,
                         num_epochs=4)
    logs.append_metrics(runfiles.metrics_path(log), dict(epoch=9, val_acc=0.5, time_cost=1.0))
    state = sweep_state.read_run(str(tmp_path / 'seed1'), POINT, 'exp',
                                 ['--dataset', 'fashion-mnist'])
    assert state.epochs_done == 3 and not state.finished
    assert not logs.parse_log(log).complete


# ---------------------------------------------------------------- --resume

def test_resume_of_exp_a_does_not_continue_exp_a1(tmp_path):
    """`a1` run 1 is named `..._a11`, which also reads as `a` run 11."""
    folder = str(tmp_path)
    finished_run(folder, 'cross_d14w1_a11.txt', exp_name='a1')
    with pytest.raises(UserError, match='no checkpoint of cross_d14w1_a<run>'):
        runfiles.RunFiles(folder, 'cross_d14w1_a', 0, resume=True)
    assert runfiles.run_logs(folder, 'cross_d14w1_a') == []
    assert runfiles.run_logs(folder, 'cross_d14w1_a1') == [
        os.path.join(folder, 'cross_d14w1_a11.txt')]


def test_resume_and_load_epoch_pick_the_experiments_own_latest_run(tmp_path):
    folder = str(tmp_path)
    own = finished_run(folder, 'cross_d14w1_a2.txt', exp_name='a')
    finished_run(folder, 'cross_d14w1_a11.txt', exp_name='a1')   # a higher "run number"
    assert runfiles.run_logs(folder, 'cross_d14w1_a') == [own]
    files = runfiles.RunFiles.__new__(runfiles.RunFiles)   # the finding alone, no state read
    files.folder, files.stem, files.rank, files.source_prefix = folder, 'cross_d14w1_a', 0, None
    files._find_prefix(4)
    assert files.source_prefix == runfiles.weights_prefix(own)


def test_a_new_run_claims_past_a_number_with_a_trained_run_under_the_same_name(tmp_path):
    """exp `a` claims run 1 although `a1`'s run 1 sits at `..._a11`? Its name is `_a1`:
    free. But a log named `_a1` of exp `a1` with no run number is no run at all."""
    folder = str(tmp_path)
    finished_run(folder, 'cross_d14w1_a11.txt', exp_name='a1')
    assert runfiles.claim_log_path(folder, 'cross_d14w1_a').endswith('cross_d14w1_a1.txt')


# ---------------------------------------------------------------- a new run's claim

def test_a_new_run_does_not_adopt_a_deleted_runs_metrics(tmp_path):
    folder = str(tmp_path / 'fashion-mnist' / 'cross')
    old = write_port_log(folder, 'cross_d14w1_exp1.txt', 0.9, 0.95)
    os.remove(old)   # the log deleted, its metrics left behind
    claimed = runfiles.claim_log_path(folder, 'cross_d14w1_exp')
    assert claimed.endswith('cross_d14w1_exp2.txt')
    with open(runfiles.metrics_path(old)) as handle:
        assert len(handle.readlines()) == 4   # the old figures, untouched


@pytest.mark.parametrize('left', ['lock', 'weights'])
def test_any_file_of_a_run_keeps_its_number_taken(tmp_path, left):
    folder = str(tmp_path)
    first = os.path.join(folder, 'cross_d14w1_exp1.txt')
    if left == 'lock':
        with open(runfiles.lock_path(first), 'w') as handle:
            handle.write('123\n')
    else:
        os.makedirs(os.path.dirname(runfiles.weights_prefix(first)))
    assert runfiles.claim_log_path(folder, 'cross_d14w1_exp').endswith('exp2.txt')


def test_get_results_reads_no_epochs_of_a_deleted_run(tmp_path):
    """The deleted run's metrics stay where they were; the new run (claimed as run 2) has
    its own, and get_results counts it incomplete with its one epoch."""
    root = str(tmp_path)
    folder = os.path.join(root, 'fashion-mnist', 'cross')
    old = write_port_log(folder, 'cross_d14w1_exp1.txt', 0.9, 0.95)
    os.remove(old)
    claimed = runfiles.claim_log_path(folder, 'cross_d14w1_exp')
    os.remove(claimed)
    write_port_log(folder, os.path.basename(claimed), 0.9, 0.95, epochs_done=1)
    report = get_results.collect(root)
    (group,) = report.configurations
    assert [run.epochs_done for run in group.runs] == [1]
    assert any('incomplete (1 of 4 epochs)' in note for note in report.notes)


def test_get_results_keeps_exp_a_and_exp_a1_apart(tmp_path):
    root = str(tmp_path)
    folder = os.path.join(root, 'fashion-mnist', 'cross')
    finished_run(folder, 'cross_d14w1_a1.txt', exp_name='a')
    finished_run(folder, 'cross_d14w1_a11.txt', exp_name='a1')
    report = get_results.collect(root)
    assert sorted(group.config for group in report.configurations) == [
        'cross_d14w1_a', 'cross_d14w1_a1']


@pytest.mark.slow
def test_sweep_status_counts_epochs_by_number(tmp_path):
    """--status through the plan's own train flags: the same rule as the sweep."""
    folder = str(tmp_path / 'seed1' / 'fashion-mnist' / 'cross')
    log = write_port_log(folder, 'cross_d14w1_exp1.txt', 0.9, 0.95, epochs_done=2,
                         num_epochs=4)
    repeat_metrics(log, last=2)   # two epochs, four lines
    plan = dict(version=1, state='stopped', pid=1, exp_name='exp', jobs=1, cores=1, threads=1,
                train_args=['--dataset', 'fashion-mnist'], command=['true'], updated='now',
                seconds_per_epoch=None,
                runs=[sweep_state.plan_run(POINT, 'stopped', sweep_state.RunState())])
    with open(str(tmp_path / 'sweep.json'), 'w') as handle:
        json.dump(plan, handle)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'sweep.py'), '--status',
                           '--log-dir', str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert '2/4 epochs' in proc.stdout, proc.stdout
