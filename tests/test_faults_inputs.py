"""What a user hands the tools (issue 24): memory bombs (class 3: sizes checked from the
header before decoding, decompression bounded by what the header promises, batches capped
at the data), special files (class 4: common/reading.py opens regular files only, without
blocking) and files read back after an edit (class 5: each checked against what the
project writes). Every case ends in one `error: ...` line or in correct output, fast.
"""
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys

import cv2
import numpy as np
import pytest

from common.errors import UserError
from data import encode, fashion_mnist, imagenet
from engine import checkpoint, ndfile
from helpers import assert_one_line_error
from inference_helpers import run_tool, tiny_run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from tools.sweeper import state as sweep_state  # noqa: E402

TIMEOUT = 120   # a tool that blocks on a FIFO would hang here, not pass


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory)


@pytest.fixture
def run_copy(run, tmp_path):
    """A copy of the trained run's folder and records: (log, weights prefix, data)."""
    folder = os.path.dirname(run['log'])
    shutil.copytree(folder, str(tmp_path / 'cross'))
    log = str(tmp_path / 'cross' / os.path.basename(run['log']))
    prefix = os.path.join(str(tmp_path / 'cross'), 'weights', os.path.basename(
        run['prefix']), os.path.basename(run['prefix']))
    return log, prefix, run['data']


def tool(name, *argv):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', name + '.py')]
                          + [str(a) for a in argv], capture_output=True, text=True, cwd=ROOT,
                          timeout=TIMEOUT)
    return proc


def thin_jpeg(path, width=20000):
    cv2.imwrite(str(path), np.full((1, width, 3), 128, np.uint8))
    return str(path)


# ---------------------------------------------------------------- class 3: memory bombs

def test_a_1x20000_jpeg_is_refused_from_its_header(tmp_path):
    path = thin_jpeg(tmp_path / 'thin.jpg')
    with pytest.raises(UserError, match=r'thin\.jpg is 20000x1 pixels: scaled to a shorter '
                                        r'side of 480 .* more than the limit of 67108864'):
        encode.encode_jpeg_file(path)


def test_an_image_too_large_to_decode_is_refused_before_decoding(tmp_path, monkeypatch):
    """A 10000x10000 PNG of one colour is small on disk; its header tells its size."""
    path = str(tmp_path / 'huge.png')
    cv2.imwrite(path, np.zeros((10000, 10000), np.uint8))
    monkeypatch.setattr(encode.cv2, 'imdecode', lambda *a: pytest.fail('decoded'))
    with pytest.raises(UserError, match=r'huge\.png is 10000x10000 pixels: more than the '
                                        r'limit of 67108864'):
        encode.read_image(path, cv2.IMREAD_GRAYSCALE)


def test_imagenet_preparation_refuses_a_thin_jpeg_among_its_classes(tmp_path):
    for split in ('train', 'val'):
        folder = tmp_path / 'src' / split / 'n01'
        folder.mkdir(parents=True)
        cv2.imwrite(str(folder / 'ok.JPEG'), np.full((40, 50, 3), 90, np.uint8))
    thin_jpeg(tmp_path / 'src' / 'train' / 'n01' / 'thin.JPEG')
    with pytest.raises(UserError, match='thin.JPEG is 20000x1 pixels'):
        imagenet.convert(str(tmp_path / 'src'), str(tmp_path / 'rec'), workers=1)
    assert not (tmp_path / 'rec' / 'dataset.json').exists()


@pytest.mark.slow
def test_predict_takes_a_thin_picture_it_can_scale_and_refuses_a_thinner_one(run, tmp_path):
    """Fashion-MNIST scales the shorter side to 28: 1x20000 becomes 28x560000 (15.7M
    pixels), which fits; 1x300000 would become 235M pixels."""
    proc = tool('predict', run['log'], '--input', thin_jpeg(tmp_path / 'thin.jpg'))
    assert proc.returncode == 0 and proc.stdout.startswith(str(tmp_path / 'thin.jpg')), \
        proc.stderr
    thinner = str(tmp_path / 'thinner.png')
    cv2.imwrite(thinner, np.full((1, 300000), 128, np.uint8))
    proc = tool('predict', run['log'], '--input', thinner)
    assert_one_line_error(proc, 'thinner.png is 300000x1 pixels: scaled to a shorter side '
                                'of 28 it would have 235200000 pixels')


def _idx_gz(path, shape, payload_bytes):
    """A gzip'd IDX file whose header says `shape` and which holds `payload_bytes` zeros
    after it (streamed: a bomb of 200 MB is about 200 KB on disk)."""
    with gzip.open(str(path), 'wb', compresslevel=9) as out:
        out.write(struct.pack('>HBB', 0, 8, len(shape)) + struct.pack('>%dI' % len(shape),
                                                                     *shape))
        block = bytes(1 << 20)
        for _ in range(payload_bytes >> 20):
            out.write(block)
    return str(path)


def test_a_gzip_bomb_is_read_no_further_than_its_header_promises(tmp_path):
    bomb = _idx_gz(tmp_path / 'train-images-idx3-ubyte.gz', (10, 28, 28), 200 << 20)
    assert os.path.getsize(bomb) < 1 << 20
    with pytest.raises(UserError, match='more bytes than its header promises'):
        fashion_mnist.read_idx(bomb, 3)


def test_an_idx_header_promising_too_much_is_refused_unread(tmp_path):
    bomb = _idx_gz(tmp_path / 'train-images-idx3-ubyte.gz', (4000000, 28, 28), 0)
    with pytest.raises(UserError, match=r'promises 3136000016 bytes \(shape 4000000x28x28\), '
                                        r'more than a Fashion-MNIST file can hold'):
        fashion_mnist.read_idx(bomb, 3)


@pytest.mark.slow
def test_data_prepare_refuses_a_gzip_bomb_in_one_line(tmp_path):
    from data import synthetic
    source = tmp_path / 'src'
    synthetic.write_fashion_mnist_source(str(source))
    _idx_gz(source / 'train-images-idx3-ubyte.gz', (20, 28, 28), 64 << 20)
    proc = subprocess.run([sys.executable, '-m', 'data.prepare', 'fashion-mnist', '--source',
                           str(source), '--out', str(tmp_path / 'out')], cwd=ROOT,
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert_one_line_error(proc, 'more bytes than its header promises')


@pytest.mark.slow
def test_evaluate_caps_a_huge_batch_at_the_data(run, tmp_path):
    """--batch-size 1000000 on 200 test images padded to a million images."""
    proc = run_tool('evaluate', run['log'], '--batch-size', 1000000, '--path', 'plain',
                    '--png', tmp_path / 'c.png', '--json', tmp_path / 'f.json')
    assert proc.returncode == 0, proc.stderr
    with open(str(tmp_path / 'f.json')) as handle:
        figures = json.load(handle)
    reference = run_tool('evaluate', run['log'], '--path', 'plain', '--png',
                         tmp_path / 'd.png', '--json', tmp_path / 'g.json')
    with open(str(tmp_path / 'g.json')) as handle:
        assert figures['top1'] == json.load(handle)['top1']


@pytest.mark.parametrize('name', ['sweep.json', 'dataset.json'])
def test_a_json_file_of_absurd_size_is_refused_unread(tmp_path, name):
    path = tmp_path / name
    with open(str(path), 'wb') as handle:
        handle.truncate(1 << 34)   # 16 GiB, sparse
    with pytest.raises(UserError, match='more than such a file can be'):
        if name == 'sweep.json':
            sweep_state.read_plan(str(tmp_path))
        else:
            from data.meta import read_meta
            read_meta(str(tmp_path))


# ---------------------------------------------------------------- class 4: special files

@pytest.mark.slow
def test_a_fifo_among_the_pictures_is_one_line_not_a_hang(run, tmp_path):
    folder = tmp_path / 'pictures'
    folder.mkdir()
    cv2.imwrite(str(folder / 'a.png'), np.full((28, 28), 200, np.uint8))
    os.mkfifo(str(folder / 'b.png'))
    proc = tool('predict', run['log'], '--input', str(folder))
    assert_one_line_error(proc, 'b.png is not a regular file (a FIFO)')
    proc = tool('predict', run['log'], '--input', str(folder / 'b.png'))   # named alone
    assert_one_line_error(proc, 'b.png is not a regular file (a FIFO)')


@pytest.mark.slow
def test_a_fifo_in_an_imagenet_class_folder_is_one_line(tmp_path):
    for split in ('train', 'val'):
        folder = tmp_path / 'src' / split / 'n01'
        folder.mkdir(parents=True)
        cv2.imwrite(str(folder / 'ok.JPEG'), np.full((40, 50, 3), 90, np.uint8))
    os.mkfifo(str(tmp_path / 'src' / 'train' / 'n01' / 'pipe.JPEG'))
    proc = subprocess.run([sys.executable, '-m', 'data.prepare', 'imagenet', '--source',
                           str(tmp_path / 'src'), '--out', str(tmp_path / 'rec'),
                           '--workers', '1'], cwd=ROOT, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith('error: ')
    assert 'pipe.JPEG is not a regular file (a FIFO)' in proc.stderr
    assert 'Traceback' not in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize('name', ['train.idx', 'dataset.json', 'train.rec'])
def test_a_fifo_among_the_records_is_one_line(run, tmp_path, name):
    data = tmp_path / 'data'
    shutil.copytree(run['data'], str(data))
    os.remove(str(data / name))
    os.mkfifo(str(data / name))
    proc = subprocess.run([sys.executable, 'train_model.py', '--dataset', 'fashion-mnist',
                           '--data-dir', str(data), '--log-dir', str(tmp_path / 'snap'),
                           '--depth', '14', '--cpu', '--num-epochs', '1', '--num-examples',
                           '512'], cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT)
    assert_one_line_error(proc, name, 'not a regular file')
    assert not (tmp_path / 'snap').exists()


@pytest.mark.slow
@pytest.mark.parametrize('which', ['log', 'params', 'state'])
def test_a_fifo_in_a_run_is_one_line_for_inference(run_copy, tmp_path, which):
    log, prefix, _ = run_copy
    path = {'log': log, 'params': checkpoint.params_file(prefix, 2),
            'state': checkpoint.state_file(prefix, 2)}[which]
    os.remove(path)
    os.mkfifo(path)
    if which == 'state':   # the checkpoint a resume reads
        with pytest.raises(UserError, match='not a regular file'):
            checkpoint.read_state(prefix, 2)
    proc = tool('evaluate', log, '--png', tmp_path / 'c.png')
    if which == 'log':   # inference reads the flags from the .state, never the log: no hang
        assert proc.returncode == 0, proc.stderr
        return
    assert_one_line_error(proc, 'not a regular file (a FIFO)')


@pytest.mark.slow
def test_a_fifo_as_sweep_plan_is_one_line(tmp_path):
    os.mkfifo(str(tmp_path / 'sweep.json'))
    proc = subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'sweep.py'), '--status',
                           '--log-dir', str(tmp_path)], capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert_one_line_error(proc, 'sweep.json is not a regular file')


# ---------------------------------------------------------------- class 5: files read back

def _edit_flags(prefix, change):
    """Edit the run's flags where inference reads them: every checkpoint's .state."""
    for epoch in checkpoint.checkpoint_epochs(prefix):
        path = checkpoint.state_file(prefix, epoch)
        with open(path) as handle:
            state = json.load(handle)
        change(state['args'])
        with open(path, 'w') as handle:
            json.dump(state, handle)


@pytest.mark.slow
@pytest.mark.parametrize('change,words', [
    (lambda flags: flags.pop('dataset'), ['no dataset']),
    (lambda flags: flags.update(depth='x'), ["depth='x'", 'whole number']),
    (lambda flags: flags.update(dataset='mnist'), ["dataset='mnist'"]),
    (lambda flags: flags.update(num_classes=0), ['num_classes=0'])])
def test_edited_run_flags_are_one_line_for_inference(run_copy, tmp_path, change, words):
    log, prefix, _ = run_copy
    _edit_flags(prefix, change)
    proc = tool('evaluate', log, '--png', tmp_path / 'c.png')
    assert_one_line_error(proc, *words)


def _plan(tmp_path, plan):
    with open(str(tmp_path / 'sweep.json'), 'w') as handle:
        json.dump(plan, handle)
    return subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'sweep.py'), '--status',
                           '--log-dir', str(tmp_path)], capture_output=True, text=True,
                          timeout=TIMEOUT)


GOOD_RUN = dict(point=dict(network='cross', depth=14, widen_factor=1, seed=1),
                key='cross_d14w1_seed1', status='stopped', epochs_done=0, num_epochs=2,
                current_epoch=None, checkpoint=None, log=None)
GOOD_PLAN = dict(version=1, state='stopped', exp_name='exp', train_args=[], jobs=1,
                 threads=1, updated='now', seconds_per_epoch=None, runs=[GOOD_RUN])


@pytest.mark.slow
@pytest.mark.parametrize('plan,words', [
    ({'runs': []}, ["field 'exp_name' is missing"]),
    ([], ['not a JSON object']),
    (dict(GOOD_PLAN, jobs='2'), ["field 'jobs' is wrong"]),
    (dict(GOOD_PLAN, runs=[dict(GOOD_RUN, point=dict(network='cross'))]),
     ["run 1: field 'point' is wrong"]),
    (dict(GOOD_PLAN, runs=[{k: v for k, v in GOOD_RUN.items() if k != 'status'}]),
     ["run 1: field 'status' is missing"])])
def test_an_edited_sweep_plan_is_one_line(tmp_path, plan, words):
    assert_one_line_error(_plan(tmp_path, plan), 'sweep plan', *words)


@pytest.mark.slow
def test_the_plan_a_sweep_writes_passes_the_check(tmp_path):
    proc = _plan(tmp_path, GOOD_PLAN)
    assert proc.returncode == 0, proc.stderr
    assert 'cross_d14w1_seed1' in proc.stdout


def _rewrite_params(path, change):
    import mxnet as mx
    arrays = mx.nd.load(path)
    ndfile.save_nd_dict(path, change(arrays))


@pytest.mark.slow
@pytest.mark.parametrize('change,words', [
    (lambda a: {k: v.astype('float16') for k, v in a.items()}, ['float16 in the file',
                                                                 'float32 in the network']),
    (lambda a: {k: v.astype('int32') for k, v in a.items()}, ['int32 in the file']),
    (lambda a: {('x' + k if i == 0 else k): v for i, (k, v) in enumerate(a.items())},
     ['lack parameter'])])
def test_weights_of_another_dtype_or_name_are_one_line(run_copy, tmp_path, change, words):
    log, prefix, _ = run_copy
    _rewrite_params(checkpoint.params_file(prefix, 2), change)
    proc = tool('evaluate', log, '--png', tmp_path / 'c.png')
    assert_one_line_error(proc, *words)


@pytest.mark.slow
def test_a_zero_byte_params_to_components_says_why(run, tmp_path):
    empty = tmp_path / 'empty.params'
    empty.write_bytes(b'')
    proc = tool('components', '--params', empty, '--log', run['log'], '--out',
                tmp_path / 'view')
    assert_one_line_error(proc, 'does not hold the weights of cross_d14w1',
                          'an empty file (0 bytes)')
    assert not (tmp_path / 'view').exists()
