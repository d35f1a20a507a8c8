"""Flags argparse accepts but no run can use: every class refused with one line, exit code
2, before anything is built or written; the paper's configurations still pass."""
import os
import subprocess
import sys

import pytest

import show_model
import train_imagenet
import train_model
from common.errors import UserError
from engine.flags import LAUNCHER_VARIABLES
from helpers import assert_one_line_error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LIMIT = 'the limit is 32 GB'
EXP_NAME = 'no path separators'


@pytest.mark.parametrize('argv, words', [
    # seeds: numpy's range
    (['--rand-seed', '-1'], ['--rand-seed must be between 0 and 4294967295 (got -1)']),
    (['--rand-seed', '4294967296'], ['--rand-seed must be between 0 and 4294967295']),
    # learning-rate steps: increasing, each once, from epoch 1
    (['--num-epochs', '10', '--lr-steps', '0,5'], ['epoch 0 is before the first step']),
    (['--lr-steps', '-3'], ['epoch -3 is before the first step']),
    (['--lr-steps', '100,100,150'], ['increasing epochs, each once']),
    (['--lr-steps', '150,100'], ['increasing epochs, each once']),
    # the optimizer's numbers
    (['--lr-factor', '-1'], ['--lr-factor must be in (0, 1]', '(got -1)']),
    (['--lr-factor', '0'], ['--lr-factor must be in (0, 1]']),
    (['--lr-factor', '1.5'], ['--lr-factor must be in (0, 1]']),
    (['--momentum', '1'], ['--momentum must be in [0, 1) (got 1)']),
    (['--momentum', '-0.1'], ['--momentum must be in [0, 1)']),
    (['--wd', '-0.0001'], ['--wd must be at least 0']),
    (['--bn-momentum', '1'], ['--bn-momentum must be in [0, 1)', '(got 1)']),
    (['--bn-momentum', '-0.5'], ['--bn-momentum must be in [0, 1)']),
    (['--lr', '0'], ['--lr must be positive']),
    # NaN and infinity
    (['--lr', 'nan'], ['--lr must be a finite number (got nan)']),
    (['--lr', 'inf'], ['--lr must be a finite number (got inf)']),
    (['--lr-factor', 'nan'], ['--lr-factor must be a finite number']),
    (['--momentum=-inf'], ['--momentum must be a finite number']),
    (['--wd', 'nan'], ['--wd must be a finite number']),
    (['--bn-momentum', 'nan'], ['--bn-momentum must be a finite number']),
    # networks too big to train: the estimate, the limit and what to lower
    (['--depth', '10000'], ['--depth 10000', LIMIT, 'lower --depth']),
    (['--widen-factor', '1000'], ['--widen-factor 1000', LIMIT]),
    (['--batch-size', '200000'], ['200000 images of 32x32', LIMIT]),
    (['--data-shape', '4096'], ['4096x4096', LIMIT]),
    (['--num-classes', '1000000000'], ['64001M parameters', LIMIT]),
    (['--test-batch-size', '1000000000000'], ['--test-batch-size 1000000000000', LIMIT]),
    (['--widen-factor', '0'], ['--widen-factor must be at least 1 (got 0)']),
    (['--depth', '-3'], ['--depth must be at least 1 (got -3)']),
    # devices and kvstores
    (['--cpu-contexts', '64'], ['--cpu-contexts must be at most 8', '(got 64)']),
    (['--cpu-contexts', '3'], ['divide --batch-size 64 (got 3)']),
    (['--kv-store', 'dist_async'], ['dist_async is not supported', '--kv-store=dist_sync',
                                    'tools/launch.py']),
    (['--kv-store', 'bogus'], ['--kv-store=bogus is not one of device, local, dist_sync']),
    # log names: a file-name part, never a path
    (['--exp-name', 'a/../../x'], [EXP_NAME, "'a/../../x'"]),
    (['--exp-name', '..'], [EXP_NAME]),
    (['--exp-name', 'a..b'], [EXP_NAME]),
    (['--exp-name', 'a\\b'], [EXP_NAME]),
    (['--exp-name', 'tab\there'], [EXP_NAME]),
    (['--exp-name', ''], [EXP_NAME]),
    (['--exp-name', 'x' * 101], [EXP_NAME]),
    # bookkeeping intervals
    (['--log-iters', '0'], ['--log-iters must be at least 1 (got 0)']),
    (['--checkpoint-epochs', '-5'], ['--checkpoint-epochs must be at least 1 (got -5)']),
    (['--data-threads', '0'], ['--data-threads must be at least 1 (got 0)']),
])
def test_unusable_values_are_refused(argv, words):
    with pytest.raises(UserError) as caught:
        train_model.parse(argv)
    message = str(caught.value)
    assert '\n' not in message
    for word in words:
        assert word in message


def test_dist_kvstore_without_a_launcher_says_how_to_start(monkeypatch):
    for name in LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(UserError, match=r'needs the environment of a launcher \(DMLC_ROLE, '
                                        r'.*tools/launch.py -n <workers>'):
        train_model.parse(['--kv-store', 'dist_sync'])
    for name in LAUNCHER_VARIABLES:   # as tools/launch.py sets them for a worker
        monkeypatch.setenv(name, '1')
    assert train_model.parse(['--kv-store', 'dist_sync']).kv_store == 'dist_sync'


@pytest.mark.parametrize('argv', [
    ['--network', 'cross', '--depth', '110'],                          # DFN-MR1
    ['--network', 'cross', '--depth', '62', '--widen-factor', '4'],    # DFN-MR2
    ['--network', 'cross', '--depth', '98', '--widen-factor', '4'],    # DFN-MR3
    ['--network', 'resnet', '--depth', '110'],
    ['--network', 'resnet', '--depth', '1202'],                        # He et al.'s deepest
    ['--dataset', 'cifar100', '--network', 'cross', '--depth', '98', '--widen-factor', '4'],
    ['--num-epochs', '400', '--lr-steps', '200,300,350'],
    ['--num-epochs', '2', '--lr-steps', '1'],
    ['--momentum', '0', '--wd', '0', '--lr-factor', '1'],
    ['--rand-seed', '0'], ['--rand-seed', '4294967295'],
    ['--cpu', '--cpu-contexts', '2'],
    ['--exp-name', 'seed7'], ['--exp-name', 'lr0.05-wd_5e-4'],
])
def test_the_papers_configurations_pass(argv):
    train_model.parse(argv)


def test_steps_after_the_run_are_kept_and_said(capsys):
    # a run trained in parts keeps its flags: its later steps act once it is continued
    assert train_model.parse(['--num-epochs', '1', '--lr-steps', '1,2,3']).lr_step_epochs \
        == [1, 2, 3]
    assert capsys.readouterr().err == (
        'notice: --lr-steps 2,3 lie after --num-epochs 1: they act only when the run is '
        'continued with --resume and a larger --num-epochs\n')
    train_model.parse(['--num-epochs', '10', '--lr-steps', '5,10'])   # 10: inside the run
    assert capsys.readouterr().err == ''


def test_default_steps_of_short_runs_are_not_refused():
    # 1/2, 3/4, 7/8 of 3 epochs repeat an epoch; they are the port's choice, not the user's
    assert train_model.parse(['--num-epochs', '3']).lr_step_epochs == [1, 2, 2]


def test_imagenet_checks_its_own_defaults(capsys):
    assert train_imagenet.parse([]).lr_step_epochs == [30, 60, 90]
    # its default steps follow --num-epochs (every 30 epochs, as the original): none after it
    assert train_imagenet.parse(['--num-epochs', '50']).lr_step_epochs == [30]
    assert capsys.readouterr().err == ''
    with pytest.raises(UserError, match='--rand-seed must be between'):
        train_imagenet.parse(['--rand-seed', '-1'])


def test_show_model_refuses_what_cannot_be_trained():
    with pytest.raises(UserError, match=LIMIT):
        show_model.make_net(show_model.parse_args(['--depth', '10000']))
    net, shape, stem = show_model.make_net(show_model.parse_args(['--depth', '110']))
    assert stem == 'cross_d110'


def run(script, *argv):
    return subprocess.run([sys.executable, os.path.join(ROOT, script)] + list(argv),
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize('script, argv, words', [
    ('train_model.py', ['--depth', '10000'], [LIMIT]),
    ('train_model.py', ['--kv-store', 'dist_async'], ['not supported']),
    ('train_model.py', ['--exp-name', 'a/../../x'], [EXP_NAME]),
    ('train_imagenet.py', ['--lr', 'inf'], ['--lr must be a finite number']),
    ('show_model.py', ['--widen-factor', '1000'], [LIMIT]),
    ('tools/sweep.py', ['--exp-name', 'a/../x', '--seeds', '1'], [EXP_NAME]),
])
def test_scripts_refuse_with_one_line_and_write_nothing(script, argv, words, tmp_path):
    where = ['--out-dir', str(tmp_path / 'out')] if script == 'show_model.py' else \
        ['--log-dir', str(tmp_path / 'logs')]
    proc = run(script, *(where + argv))
    assert_one_line_error(proc, *words)
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.slow
@pytest.mark.parametrize('script, argv', [
    ('tools/components.py', ['--network', 'cross', '--depth', '10000']),
    ('tools/bench_inference.py', ['--network', 'cross', '--widen-factor', '1000']),
])
def test_tools_that_build_networks_refuse_the_same(script, argv, tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, script)] + argv,
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=120)
    assert_one_line_error(proc, LIMIT)
    assert os.listdir(str(tmp_path)) == []
