"""get_results.py on hostile folders: diverged runs, odd file names and file types, failed
writes, unreadable files. Each must give a report (or one error line), never a traceback,
a hang or a stray file."""
import errno
import json
import os
import subprocess
import sys

import pytest

import get_results
from engine import runfiles
from helpers import assert_one_line_error
from logwriters import write_2016_log, write_port_log

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'get_results.py')


def run_script(*args):
    return subprocess.run([sys.executable, SCRIPT] + list(args), capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def two_good_runs(root):
    cross = os.path.join(root, 'cifar10', 'cross')
    write_port_log(cross, 'cross_d56w1_exp1.txt', 0.90, 0.95)
    write_port_log(cross, 'cross_d56w1_exp2.txt', 0.92, 0.97)
    return cross


def temporary_files(root):
    return [name for _, _, files in os.walk(root) for name in files if '.tmp' in name]


# ---------------------------------------------------------------- diverged runs

@pytest.mark.slow
def test_nan_and_inf_runs_are_reported_as_diverged(tmp_path):
    cross = two_good_runs(str(tmp_path))
    write_port_log(cross, 'cross_d56w1_exp3.txt', float('nan'), 0.9)       # NaN in the metrics
    write_port_log(cross, 'cross_d56w1_exp4.txt', 0.99, float('inf'))      # inf training
    resnet = str(tmp_path / 'cifar10' / 'resnet')
    write_2016_log(resnet, 'resnet_d56w1_exp1.txt', 0.93, 98.0)
    path = write_2016_log(resnet, 'resnet_d56w1_exp2.txt', 0.95, 98.0)
    with open(path) as stream:   # a 2016 run whose loss went NaN in its first epoch
        text = stream.read().replace('loss: 0.5000(0.9000)', 'loss: nan(nan)', 1)
    with open(path, 'w') as stream:
        stream.write(text)
    result = run_script(str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert 'Traceback' not in result.stderr
    out = result.stdout
    assert ('cifar10/cross/cross_d56w1_exp3.txt: diverged (test accuracy nan at epoch 4), '
            'left out of the statistics') in out
    assert 'cross_d56w1_exp4.txt: diverged (training accuracy inf at epoch 4)' in out
    assert 'resnet_d56w1_exp2.txt: diverged (training loss nan at epoch 1)' in out
    groups = {g.config: g for g in get_results.collect(str(tmp_path)).configurations}
    cross_group = groups['cross_d56w1_exp']
    assert [os.path.basename(r.path) for r in cross_group.counted] == [
        'cross_d56w1_exp1.txt', 'cross_d56w1_exp2.txt']
    assert len(cross_group.diverged) == 2 and cross_group.test_acc.best == pytest.approx(92.0)
    with open(tmp_path / 'results.csv') as stream:
        rows = list(stream.read().splitlines())
    assert rows[1].startswith('cifar10,cross,cross_d56w1_exp,56,1,2,0,2,4,90.000,91.000,')
    assert rows[2].startswith('cifar10,resnet,resnet_d56w1_exp,56,1,1,0,1,4,93.000,')


def test_only_diverged_runs_give_no_statistics(tmp_path):
    cross = str(tmp_path / 'cifar10' / 'cross')
    write_port_log(cross, 'cross_d56w1_exp1.txt', float('nan'), float('nan'))
    assert get_results.main([str(tmp_path)]) == 0
    group = get_results.collect(str(tmp_path)).configurations[0]
    assert group.median_run is None and group.test_acc is None
    assert not os.path.exists(os.path.join(cross, 'cross_d56w1_exp_results.txt'))


@pytest.mark.slow
def test_foreign_metrics_lines_are_skipped(tmp_path):
    cross = two_good_runs(str(tmp_path))
    metrics = runfiles.metrics_path(os.path.join(cross, 'cross_d56w1_exp2.txt'))
    with open(metrics, 'a') as stream:   # edited by hand or by another program
        for line in ({'epoch': 'x', 'val_acc': 0.5}, {'epoch': 4, 'val_acc': 'high'},
                     {'epoch': 5, 'val_acc': 0.5, 'train_acc': [1]}, [1, 2], 'text'):
            stream.write(json.dumps(line) + '\n')
    result = run_script(str(tmp_path))
    assert result.returncode == 0 and 'Traceback' not in result.stderr, result.stderr
    group = get_results.collect(str(tmp_path)).configurations[0]
    assert len(group.counted) == 2 and group.test_acc.best == pytest.approx(92.0)


# ---------------------------------------------------------------- odd names and file types

@pytest.mark.slow
def test_file_name_that_is_not_utf8(tmp_path):
    cross = two_good_runs(str(tmp_path))
    write_port_log(cross, os.fsdecode(b'cross_d56w1_\xe9t\xe91.txt'), 0.91, 0.96)
    result = run_script(str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert 'cross_d56w1_\\xe9t\\xe9' in result.stdout   # its bytes shown, escaped
    with open(tmp_path / 'results.csv', encoding='utf-8') as stream:   # valid UTF-8
        assert 'cross_d56w1_\\xe9t\\xe9' in stream.read()
    assert os.path.exists(os.path.join(cross, os.fsdecode(b'cross_d56w1_\xe9t\xe9_results.txt')))


@pytest.mark.slow
def test_fifos_and_links_are_not_read(tmp_path):
    cross = two_good_runs(str(tmp_path))
    os.mkfifo(os.path.join(cross, 'x.txt'))
    # a log whose metrics file is a FIFO: read from its lines instead of waiting forever
    write_2016_log(cross, 'cross_d56w1_exp3.txt', 0.91, 96.0)
    os.mkfifo(runfiles.metrics_path(os.path.join(cross, 'cross_d56w1_exp3.txt')))
    os.symlink(os.path.join(cross, 'gone.txt'), os.path.join(cross, 'dangling.txt'))
    result = run_script(str(tmp_path))   # a hang would end in the timeout
    assert result.returncode == 0, result.stderr
    assert 'skipped cifar10/cross/x.txt: not a regular file' in result.stdout
    assert 'skipped cifar10/cross/dangling.txt: not a regular file' in result.stdout
    group = get_results.collect(str(tmp_path)).configurations[0]
    assert len(group.counted) == 3


def test_unreadable_log_and_folder_are_noted(tmp_path, monkeypatch):
    # root reads any file whatever its mode: simulate the refusals the way the OS gives them
    cross = two_good_runs(str(tmp_path))
    write_port_log(str(tmp_path / 'svhn' / 'cross'), 'cross_d56w1_exp1.txt', 0.9, 0.9)
    import builtins
    from engine import logs
    locked = os.path.join(cross, 'cross_d56w1_exp2.txt')
    real_open, real_scandir = builtins.open, os.scandir

    def refusing_open(path, *args, **kwargs):
        if str(path) == locked:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, *args, **kwargs)

    def refusing_scandir(path='.'):
        if str(path).endswith('svhn'):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_scandir(path)
    monkeypatch.setattr(logs, 'open', refusing_open, raising=False)
    monkeypatch.setattr(os, 'scandir', refusing_scandir)
    report = get_results.collect(str(tmp_path))
    assert 'skipped cifar10/cross/cross_d56w1_exp2.txt: cannot read it (Permission denied)' \
        in report.notes
    assert 'skipped svhn: cannot list it (Permission denied)' in report.notes
    assert [len(g.counted) for g in report.configurations] == [1]


# ---------------------------------------------------------------- failed writes

@pytest.mark.slow
def test_failed_write_is_one_line_and_leaves_no_temporary_file(tmp_path):
    two_good_runs(str(tmp_path))
    os.mkdir(tmp_path / 'results.csv')   # the rename onto it fails for real
    result = run_script(str(tmp_path))
    assert_one_line_error(result, 'cannot write', 'results.csv')
    assert temporary_files(str(tmp_path)) == []


def test_full_disk_keeps_the_previous_outputs(tmp_path, monkeypatch):
    two_good_runs(str(tmp_path))
    assert get_results.main([str(tmp_path)]) == 0
    with open(tmp_path / 'results.csv') as stream:
        before = stream.read()

    def full(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, 'fsync', full)   # the data never reaches the disk
    with pytest.raises(get_results.UserError, match='No space left on device'):
        get_results.main([str(tmp_path), '--force'])
    with open(tmp_path / 'results.csv') as stream:
        assert stream.read() == before
    assert temporary_files(str(tmp_path)) == []
