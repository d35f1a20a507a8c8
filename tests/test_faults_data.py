"""Damaged record files, wrong dataset.json files and misused data.prepare: each ends in one
line that names the file and the record or field, never a crash, a traceback or silent
training on wrong data."""
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys

import numpy as np
import pytest

from common.errors import UserError
from data import prepare, synthetic
from data.fashion_mnist import DEBIAN_DIR
from data.iterators import get_iterators
from helpers import assert_one_line_error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {k: v for k, v in os.environ.items() if k != 'MXNET_ENGINE_TYPE'}
COUNT = 40
BAD = 17  # the damaged record's key: past the few records decoded when a file is opened
PNG_AT = 8 + 24  # RecordIO header, image header, then the PNG


@pytest.fixture(scope='module')
def clean_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('clean'))
    images = synthetic.smooth_images(COUNT, 32, 32, 3)
    labels = np.arange(COUNT) % 10
    synthetic.write_record_dataset(out, 'cifar10', (images, labels), (images, labels))
    return out


@pytest.fixture
def data_dir(clean_dir, tmp_path):
    out = str(tmp_path / 'data')
    shutil.copytree(clean_dir, out)
    return out


def open_records(data_dir, dataset='cifar10', **options):
    settings = dict(batch_size=8, test_batch_size=8, aug_type=0, threads=1)
    return get_iterators(dataset, data_dir, **dict(settings, **options))


def index_lines(data_dir, stem):
    with open(os.path.join(data_dir, stem + '.idx')) as f:
        return [line.split('\t') for line in f.read().split('\n') if line]


def write_index(data_dir, stem, lines):
    with open(os.path.join(data_dir, stem + '.idx'), 'w') as f:
        f.write(''.join('%s\t%s\n' % (key, offset) for key, offset in lines))


def offset_of(data_dir, stem, key=BAD):
    return int(dict(index_lines(data_dir, stem))[str(key)])


def patch(data_dir, stem, position, transform):
    """Replace the bytes at `position` of <stem>.rec by transform(old bytes)."""
    path = os.path.join(data_dir, stem + '.rec')
    with open(path, 'r+b') as f:
        f.seek(position)
        old = f.read(64)
        f.seek(position)
        f.write(transform(old))


def zero_magic(d, stem):
    patch(d, stem, offset_of(d, stem), lambda b: b'\0' * 4)


def flip_png_bytes(d, stem, key=BAD):
    patch(d, stem, offset_of(d, stem, key) + PNG_AT + 60, lambda b: bytes(x ^ 0xff for x in b))


def move_offset(shift):
    def damage(d, stem):
        write_index(d, stem, [(k, int(o) + shift * (k == str(BAD)))
                              for k, o in index_lines(d, stem)])
    return damage


def share_offset(d, stem):
    lines = index_lines(d, stem)
    lines[BAD + 1][1] = lines[BAD][1]
    write_index(d, stem, lines)


def repeat_key(d, stem):
    lines = index_lines(d, stem)
    lines[BAD + 1][0] = lines[BAD][0]
    write_index(d, stem, lines)


def change_length(delta):
    def damage(d, stem):
        def new_length(head):
            return struct.pack('<I', struct.unpack('<I', head[:4])[0] + delta)
        patch(d, stem, offset_of(d, stem) + 4, new_length)
    return damage


def huge_label_count(d, stem):
    patch(d, stem, offset_of(d, stem) + 8, lambda b: struct.pack('<I', 10 ** 6))


def truncate(keep):
    def damage(d, stem):
        path = os.path.join(d, stem + '.rec')
        with open(path, 'r+b') as f:
            f.truncate(keep(d, stem, os.path.getsize(path)))
    return damage


def append_bytes(d, stem):
    with open(os.path.join(d, stem + '.rec'), 'ab') as f:
        f.write(b'\0' * 16)


def drop_first_key(d, stem):
    write_index(d, stem, index_lines(d, stem)[1:])


def garble_index(text):
    def damage(d, stem):
        with open(os.path.join(d, stem + '.idx'), 'wb') as f:
            f.write(text)
    return damage


DAMAGES = {
    'zeroed magic': (zero_magic, 'record key %d' % BAD, 'no record starts'),
    'offset moved by 8': (move_offset(8), 'record key %d' % BAD, 'no record starts'),
    'offset moved by 3': (move_offset(3), 'record key %d' % BAD),
    'offset moved back by 4': (move_offset(-4), 'record key %d' % BAD),
    'two keys share an offset': (share_offset, 'offset', 'appears 2 times'),
    'a key twice': (repeat_key, 'key %d appears 2 times' % BAD),
    'length grown': (change_length(400), 'record key %d' % BAD, 'ends at byte'),
    'length shrunk': (change_length(-8), 'record key %d' % BAD, 'ends at byte'),
    'length beyond any record': (change_length(1 << 28), 'record key %d' % BAD, 'damaged'),
    'label count in the image header': (huge_label_count, 'record key %d' % BAD, 'damaged'),
    'cut inside the last record': (truncate(lambda d, s, size: size - 100), 'cut short'),
    'cut at a record boundary': (truncate(lambda d, s, size: offset_of(d, s, COUNT - 1)),
                                 'cut short', 'record key %d' % (COUNT - 1)),
    'bytes after the last record': (append_bytes, 'after its last indexed record'),
    'first record not indexed': (drop_first_key, 'first', 'bytes hold no indexed record'),
    'index of text': (garble_index(b'hello world\n'), 'key<TAB>offset'),
    'index of binary noise': (garble_index(bytes(range(256))), 'key<TAB>offset'),
    'index with a negative offset': (garble_index(b'0\t-8\n'), 'key<TAB>offset'),
    'empty index': (garble_index(b''), 'holds no records'),
    'first PNG unreadable': (lambda d, s: flip_png_bytes(d, s, key=0), 'record key 0',
                             'not a readable image'),
}


@pytest.mark.parametrize('stem', ['train', 'test'])
@pytest.mark.parametrize('name', sorted(DAMAGES))
def test_damaged_record_sets_are_refused_when_opened(data_dir, name, stem):
    damage, *words = DAMAGES[name]
    damage(data_dir, stem)
    with pytest.raises(UserError) as err:
        open_records(data_dir)
    message = str(err.value)
    assert '\n' not in message and stem + '.' in message, message
    for word in words:
        assert word in message, message


def test_a_png_damaged_mid_file_is_named_when_read(data_dir):
    flip_png_bytes(data_dir, 'train')
    train, _ = open_records(data_dir)  # only the first records are decoded when opened
    with pytest.raises(UserError, match=r'train.rec: record key %d .*not a readable image'
                       % BAD):
        for _ in train:
            pass


def test_a_damaged_validation_record_is_named_when_read(data_dir):
    flip_png_bytes(data_dir, 'test')
    _, val = open_records(data_dir)
    with pytest.raises(UserError, match=r'test.rec: record key %d ' % BAD):
        for _ in val:
            pass


@pytest.mark.slow
def test_a_read_failure_in_a_script_is_one_line_with_exit_code_2(data_dir):
    flip_png_bytes(data_dir, 'train')
    code = ('import sys\nfrom common.errors import run_main\n'
            'from data.iterators import get_iterators\n'
            'def main(argv):\n'
            '    train, _ = get_iterators("cifar10", argv[0], batch_size=8, threads=1)\n'
            '    for _ in train: pass\n'
            'run_main(main, sys.argv[1:])\n')
    proc = subprocess.run([sys.executable, '-c', code, data_dir], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert 'Traceback' not in proc.stderr and proc.returncode != -signal.SIGABRT
    # MXNet's own OpenCV prints libpng's complaint from its decoding thread first.
    lines = [line for line in proc.stderr.splitlines() if not line.startswith('libpng')]
    assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
    assert 'record key %d' % BAD in lines[0] and 'train.rec' in lines[0]


def test_an_image_of_another_size_inside_the_file_is_refused(tmp_path):
    images = synthetic.smooth_images(COUNT, 32, 32, 3)
    mixed = [images[i] if i != BAD else images[i, :24, :24] for i in range(COUNT)]
    labels = np.arange(COUNT) % 10
    synthetic.write_record_dataset(str(tmp_path), 'cifar10', (images, labels),
                                   (images, labels))
    synthetic.write_records(str(tmp_path), 'train.rec', mixed, labels)
    with pytest.raises(UserError, match=r'train.rec: record key %d .* is a 24x24 image with 3 '
                       r'channels, but .* expects a 32x32' % BAD):
        open_records(str(tmp_path))


def rewrite_meta(data_dir, change):
    path = os.path.join(data_dir, 'dataset.json')
    with open(path) as f:
        meta = json.load(f)
    change(meta)
    with open(path, 'w') as f:
        json.dump(meta, f)


def setter(**fields):
    return lambda meta: meta.update(fields)


BAD_FIELDS = [
    ('num_classes', setter(num_classes='10')), ('num_classes', setter(num_classes=0)),
    ('num_classes', setter(num_classes=True)), ('num_classes', setter(num_classes=10.5)),
    ('classes', setter(num_classes=10, classes=['a', 'b'])),
    ('classes', setter(classes='abc')),
    ('image_shape', setter(image_shape=[3, 32])), ('image_shape', setter(image_shape='32')),
    ('image_shape', setter(image_shape=[2, 32, 32])),
    ('image_shape', setter(image_shape=[3, 0, 32])),
    ('mean', setter(mean=[1.0, 2.0])), ('mean', setter(mean=['a', 'b', 'c'])),
    ('std', setter(std=[1.0, -1.0, 1.0])),
    ('counts', setter(counts={'train': -1})), ('counts', setter(counts=[40, 40])),
    ('files', setter(files=['train.rec'])),
    ('files["train.rec"].count', lambda m: m['files']['train.rec'].update(count='40')),
    ('dataset', setter(dataset=7)),
]


@pytest.mark.parametrize('field, change', BAD_FIELDS)
def test_wrong_dataset_json_fields_are_named(data_dir, field, change):
    rewrite_meta(data_dir, change)
    with pytest.raises(UserError, match=r'dataset.json: %s must be' % field.replace(
            '[', r'\[').replace('.', r'\.')) as err:
        open_records(data_dir)
    assert '\n' not in str(err.value)


@pytest.mark.parametrize('content', [b'{"num_classes": ', b'[1, 2]', b'\xff\xfe{}', b'NaN'])
def test_a_dataset_json_that_is_no_object_is_refused(data_dir, content):
    with open(os.path.join(data_dir, 'dataset.json'), 'wb') as f:
        f.write(content)
    with pytest.raises(UserError, match='dataset.json'):
        open_records(data_dir)


def test_a_json_image_shape_that_disagrees_with_the_records_is_refused(data_dir):
    rewrite_meta(data_dir, setter(image_shape=[3, 28, 28]))
    with pytest.raises(UserError, match=r'record key 0 .* is a 32x32 image with 3 channels, '
                       r'but its dataset.json expects a 28x28'):
        open_records(data_dir)


def test_a_json_of_other_records_is_refused(data_dir):
    rewrite_meta(data_dir, lambda meta: meta['files']['test.rec'].update(count=41))
    with pytest.raises(UserError, match=r'dataset.json describes another test.rec \(count 41'):
        open_records(data_dir)


def test_records_of_another_data_set_are_refused(data_dir):
    with pytest.raises(UserError, match='holds cifar10 records .* not fashion-mnist'):
        open_records(data_dir, 'fashion-mnist')
    os.remove(os.path.join(data_dir, 'dataset.json'))
    # 32x32 colour records given as fashion-mnist: no JSON says otherwise, the pixels do
    with pytest.raises(UserError, match=r'is a 32x32 image with 3 channels, but fashion-mnist '
                       r'\(no dataset.json says otherwise\) expects a 28x28 image'):
        open_records(data_dir, 'fashion-mnist')


def test_grey_28_pixel_records_given_as_cifar10_are_refused(tmp_path):
    images, labels = synthetic.smooth_images(COUNT, 28, 28, 1), np.arange(COUNT) % 10
    synthetic.write_record_dataset(str(tmp_path), 'fashion-mnist', (images, labels),
                                   (images, labels))
    os.remove(os.path.join(str(tmp_path), 'dataset.json'))
    with pytest.raises(UserError, match=r'is a 28x28 image, but cifar10 .* expects a 32x32 '
                       r'image with 3 channels'):
        open_records(str(tmp_path))


@pytest.mark.parametrize('stem', ['train', 'test'])
@pytest.mark.parametrize('label', [10.0, -1.0, 2.5, 1e9])
def test_a_label_outside_the_classes_is_refused_though_the_json_still_fits(data_dir, stem,
                                                                           label):
    # changed in place: the file keeps the size and count dataset.json recorded
    patch(data_dir, stem, offset_of(data_dir, stem) + 12, lambda b: struct.pack('<f', label))
    with pytest.raises(UserError, match=r'%s.rec has .*%s' % (
            stem, re.escape('(record key %d has %g)' % (BAD, label)))):
        open_records(data_dir)


def run_prepare(*args):
    return subprocess.run([sys.executable, '-m', 'data.prepare'] + [str(a) for a in args],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_prepare_refuses_an_out_holding_another_data_sets_records(data_dir, monkeypatch):
    def stamps():
        return {name: os.path.getmtime(os.path.join(data_dir, name))
                for name in os.listdir(data_dir) if name != 'dataset.json'}
    before = stamps()
    proc = run_prepare('fashion-mnist', '--out-dir', data_dir)
    assert_one_line_error(proc, data_dir, 'cifar10', '--force')
    os.remove(os.path.join(data_dir, 'dataset.json'))  # records that are not finished
    with pytest.raises(UserError, match=r'holds train\.rec, train\.idx, test\.rec, test\.idx, '
                       r'not from a finished `data.prepare fashion-mnist`; pass --force'):
        prepare.main(['fashion-mnist', '--out-dir', data_dir])
    assert stamps() == before
    calls = []
    monkeypatch.setattr(prepare, 'convert', lambda *args: calls.append(args) or dict(
        counts={'train': 1}))
    assert prepare.main(['fashion-mnist', '--out-dir', data_dir, '--force']) == 0
    assert calls and calls[0][2] == data_dir


def _default_sigint():
    """A terminal's Ctrl-C reaches a foreground process; a suite started in the background
    (`cmd &` in a script) hands its children SIGINT ignored, and Python keeps it so."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir(DEBIAN_DIR), reason='dataset-fashion-mnist not installed')
def test_ctrl_c_during_a_multi_worker_prepare_says_interrupted_and_cleans_up(tmp_path):
    out = str(tmp_path / 'out')
    proc = subprocess.Popen([sys.executable, '-m', 'data.prepare', 'fashion-mnist', '--out-dir',
                             out, '--workers', '2'], cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=_default_sigint)
    seen = b''
    while not re.search(rb'\| [1-9]\d*/60000', seen):  # workers have encoded a chunk
        chunk = os.read(proc.stderr.fileno(), 4096)
        assert chunk, seen
        seen += chunk
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    _, rest = proc.communicate(timeout=60)
    stderr = (seen + rest).decode()
    assert proc.returncode == 130, stderr
    assert stderr.splitlines()[-1] == 'interrupted'
    assert 'Traceback' not in stderr and 'KeyboardInterrupt' not in stderr, stderr
    assert os.listdir(out) == []  # the staged files went too


def test_encoding_workers_leave_ctrl_c_to_the_parent():
    """An idle worker would otherwise print its own KeyboardInterrupt traceback."""
    from data.recwriter import worker_pool
    before = signal.getsignal(signal.SIGINT)
    pool = worker_pool(2)
    try:
        started = len(pool._processes)
        answers = [pool.submit(signal.getsignal, signal.SIGINT).result() for _ in range(4)]
    finally:
        pool.shutdown()
    assert started == 2 and answers == [signal.SIG_IGN] * 4
    assert signal.getsignal(signal.SIGINT) is before   # the parent's own handler untouched


def test_a_record_split_in_parts_by_recordio_is_sound(tmp_path):
    """RecordIO splits a payload that holds its magic word into parts: not damage."""
    import mxnet as mx
    from data.encode import encode_png_chunk
    images = synthetic.smooth_images(COUNT, 32, 32, 3)
    labels = np.arange(COUNT) % 10
    synthetic.write_record_dataset(str(tmp_path), 'cifar10', (images, labels),
                                   (images, labels))
    os.remove(str(tmp_path / 'dataset.json'))  # it describes the train.rec replaced here
    writer = mx.recordio.MXIndexedRecordIO(str(tmp_path / 'train.idx'),
                                           str(tmp_path / 'train.rec'), 'w')
    for key in range(COUNT):
        (png,), _ = encode_png_chunk(images[key:key + 1])
        if key == BAD:  # bytes after a PNG's end are ignored by its decoders
            png += b'\0' * (-(24 + len(png)) % 4) + struct.pack('<I', 0xced7230a) * 2 + b'end'
        writer.write_idx(key, mx.recordio.pack(mx.recordio.IRHeader(0, labels[key], key, key),
                                               png))
    writer.close()
    with open(tmp_path / 'train.rec', 'rb') as f:
        f.seek(offset_of(str(tmp_path), 'train'))
        assert struct.unpack('<II', f.read(8))[1] >> 29 == 1  # the first of several parts
    train, _ = open_records(str(tmp_path), batch_size=COUNT)
    (data, label), = list(train)
    assert sorted(label.asnumpy().tolist()) == sorted(labels.tolist())


def test_big_records_are_checked_alike_with_parallel_reads(data_dir, monkeypatch):
    """ImageNet-sized records take the parallel, no-read-ahead path: same result."""
    from data import recordfile
    path = os.path.join(data_dir, 'train.rec')
    dense = recordfile.verify_records(path)
    monkeypatch.setattr(recordfile, '_SPARSE', 0)
    sparse = recordfile.verify_records(path)
    for a, b in zip(dense, sparse):
        np.testing.assert_array_equal(a, b)
    zero_magic(data_dir, 'train')
    with pytest.raises(UserError, match='record key %d offset' % BAD):
        recordfile.verify_records(path)
