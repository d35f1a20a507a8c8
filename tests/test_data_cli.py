"""`python -m data.prepare` as a user runs it: bad input ends in one line, exit code 2, no
traceback and no half-written files; the real Fashion-MNIST converts completely."""
import os
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest

from common.pidlock import PidLock
from data import synthetic
from data.recwriter import LOCK_NAME
from data.fashion_mnist import DEBIAN_DIR, read_idx
from helpers import assert_one_line_error

pytestmark = pytest.mark.slow   # every test here trains or starts a process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A user's environment: a chosen MXNET_ENGINE_TYPE makes MXNet log one line on stderr.
ENV = {k: v for k, v in os.environ.items() if k != 'MXNET_ENGINE_TYPE'}


def prepare(*args):
    return subprocess.run([sys.executable, '-m', 'data.prepare'] + [str(a) for a in args],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)


def leftovers(out):
    return sorted(os.listdir(out)) if os.path.isdir(out) else []


def test_missing_source(tmp_path):
    out = tmp_path / 'out'
    proc = prepare('fashion-mnist', '--source', tmp_path / 'nowhere', '--out-dir', out)
    assert_one_line_error(proc, 'not found')
    assert leftovers(out) == []


def test_source_folder_without_the_files(tmp_path):
    out = tmp_path / 'out'
    proc = prepare('svhn', '--source', tmp_path, '--out-dir', out)
    assert_one_line_error(proc, 'train_32x32.mat not found')
    assert leftovers(out) == []


def test_truncated_idx_file(tmp_path):
    synthetic.write_fashion_mnist_source(str(tmp_path / 'src'))
    path = tmp_path / 'src' / 'train-labels-idx1-ubyte.gz'
    path.write_bytes(path.read_bytes()[:30])
    out = tmp_path / 'out'
    proc = prepare('fashion-mnist', '--source', tmp_path / 'src', '--out-dir', out)
    assert_one_line_error(proc, 'truncated')
    assert leftovers(out) == []


def test_checksum_mismatch_of_a_cifar_tarball(tmp_path):
    tarball = tmp_path / 'cifar-10-python.tar.gz'
    synthetic.write_cifar_tarball(str(tarball), 'cifar10')
    out = tmp_path / 'out'
    proc = prepare('cifar10', '--source', tmp_path, '--out-dir', out)
    assert_one_line_error(proc, 'checksum mismatch', 'c58f30108f718f92721af3b95e74349a')
    assert leftovers(out) == []


@pytest.mark.parametrize('args, words', [
    (['mnist'], ['invalid choice']),
    (['cifar10', '--bogus'], ['unrecognized arguments']),
    (['cifar10', '--workers', '0'], ['--workers']),
    (['imagenet'], ['--source']),
])
def test_bad_flags(tmp_path, args, words):
    proc = prepare(*args, '--out-dir', tmp_path / 'out')
    assert_one_line_error(proc, *words)
    assert leftovers(tmp_path / 'out') == []


@pytest.mark.skipif(not os.path.isdir(DEBIAN_DIR), reason='dataset-fashion-mnist not installed')
def test_a_second_preparation_of_one_folder_is_refused(tmp_path):
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'train.rec').write_bytes(b'being written by the first one')
    with PidLock(str(out / LOCK_NAME), remove=True):   # this process prepares the folder
        proc = prepare('fashion-mnist', '--out-dir', out, '--force')
    assert_one_line_error(proc, 'another data.prepare (pid %d)' % os.getpid(), str(out))
    assert leftovers(out) == ['train.rec']   # its files untouched, the lock file gone
    assert (out / 'train.rec').read_bytes() == b'being written by the first one'


@pytest.mark.skipif(not os.path.isdir(DEBIAN_DIR), reason='dataset-fashion-mnist not installed')
def test_fashion_mnist_from_the_debian_package(tmp_path):
    out = str(tmp_path / 'fashion-mnist')
    # killed half-way: nothing that looks finished
    proc = subprocess.Popen([sys.executable, '-m', 'data.prepare', 'fashion-mnist', '--out-dir',
                             out], cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(2.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not {'dataset.json', 'train.rec', 'test.rec'} & set(leftovers(out))

    done = prepare('fashion-mnist', '--out-dir', out)   # its speed: tools/ benchmarks, not here
    assert done.returncode == 0, done.stderr
    assert '60000 train, 10000 test records' in done.stdout
    assert leftovers(out) == ['dataset.json', 'test.idx', 'test.rec', 'train.idx', 'train.rec']

    images, _ = read_idx(os.path.join(DEBIAN_DIR, 't10k-images-idx3-ubyte.gz'), 3)
    labels, _ = read_idx(os.path.join(DEBIAN_DIR, 't10k-labels-idx1-ubyte.gz'), 1)
    reader = mx.recordio.MXIndexedRecordIO(os.path.join(out, 'test.idx'),
                                           os.path.join(out, 'test.rec'), 'r')
    assert len(reader.keys) == 10000
    for key in range(0, 10000, 97):
        header, image = mx.recordio.unpack_img(reader.read_idx(key), -1)
        np.testing.assert_array_equal(image, images[key])
        assert header.label == labels[key]

    again = prepare('fashion-mnist', '--out-dir', out)
    assert again.returncode == 0 and 'already prepared' in again.stdout
