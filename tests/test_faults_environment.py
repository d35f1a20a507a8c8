"""The environment MXNet reads as it loads (issue 24, class 6): checked before MXNet is
imported (common/environment.py, through run_main and the scripts that load MXNet on
import), so that a bad value is one line, exit code 2, and nothing is written.
"""
import os
import subprocess
import sys

import pytest

from common import environment
from helpers import assert_one_line_error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BAD = [('OMP_NUM_THREADS', 'abc'), ('OMP_NUM_THREADS', '1,2'), ('OMP_NUM_THREADS', '0'),
       ('OMP_NUM_THREADS', '-1'), ('OMP_NUM_THREADS', ''), ('OMP_NUM_THREADS', ' 2'),
       ('OMP_NUM_THREADS', '99999999999'), ('MXNET_CPU_WORKER_NTHREADS', 'x'),
       ('MXNET_ENGINE_TYPE', 'Foo'), ('MXNET_ENGINE_TYPE', ''),
       ('MXNET_DISABLE_MKLDNN_FUSE_CONV_SUM', 'yes'), ('MXNET_MKLDNN_ENABLED', '2')]


@pytest.mark.parametrize('name,value', BAD)
def test_a_bad_value_is_named(name, value):
    found = environment.problem({name: value})
    assert found and found.startswith('%s=%r' % (name, value))


@pytest.mark.parametrize('environ', [{}, {'OMP_NUM_THREADS': '2'},
                                     {'MXNET_ENGINE_TYPE': 'NaiveEngine'},
                                     {'MXNET_ENGINE_TYPE': 'ThreadedEnginePerDevice',
                                      'MXNET_CPU_WORKER_NTHREADS': '4'},
                                     {'MXNET_DISABLE_MKLDNN_FUSE_CONV_SUM': '1'}])
def test_good_values_pass(environ):
    assert environment.problem(environ) is None


def run(args, tmp_path, **variables):
    env = dict(os.environ, **variables)
    return subprocess.run([sys.executable] + args, cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize('name,value', [('OMP_NUM_THREADS', 'abc'),
                                        ('MXNET_ENGINE_TYPE', 'Foo'),
                                        ('MXNET_CPU_WORKER_NTHREADS', 'x')])
def test_training_refuses_a_bad_environment_before_writing(tmp_path, name, value):
    """OMP_NUM_THREADS=abc killed training with SIGABRT and printed nothing."""
    proc = run([os.path.join(ROOT, 'train_model.py'), '--dataset', 'fashion-mnist', '--cpu',
                '--depth', '14', '--log-dir', 'snap'], tmp_path, **{name: value})
    assert_one_line_error(proc, name)
    assert os.listdir(str(tmp_path)) == []


@pytest.mark.slow
@pytest.mark.parametrize('script', [['train_imagenet.py'], ['tools/components.py'],
                                    ['show_model.py'], ['tools/predict.py'],
                                    ['tools/evaluate.py'], ['tools/export.py'],
                                    ['-m', 'data.prepare', 'fashion-mnist']])
def test_every_script_that_loads_mxnet_refuses_it(tmp_path, script):
    """Some load MXNet as they are imported, before run_main: checked before that."""
    if script[0] != '-m':
        script = [os.path.join(ROOT, script[0])] + script[1:]
    proc = run(script, tmp_path, OMP_NUM_THREADS='abc', PYTHONPATH=ROOT)
    assert_one_line_error(proc, 'OMP_NUM_THREADS')
    assert os.listdir(str(tmp_path)) == []
