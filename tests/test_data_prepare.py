"""data.prepare's converters on tiny sources written in the exact official formats."""
import gzip
import json
import os
import tarfile

import mxnet as mx
import numpy as np
import pytest

from common.errors import UserError
from data import cifar, fashion_mnist, imagenet, svhn, synthetic
from data.fetch import md5_of
from data.recwriter import Staging, is_finished, write_image_array


def read_records(folder, stem):
    """[(header, image as OpenCV decodes it)] of one written .rec/.idx pair, by key."""
    reader = mx.recordio.MXIndexedRecordIO(os.path.join(folder, stem + '.idx'),
                                           os.path.join(folder, stem + '.rec'), 'r')
    records = [mx.recordio.unpack_img(reader.read_idx(key)) for key in reader.keys]
    reader.close()
    return records


def assert_decodes_to(folder, stem, images, labels, order=None):
    records = read_records(folder, stem)
    order = np.arange(len(images)) if order is None else order
    assert len(records) == len(images)
    for key, (header, image) in enumerate(records):
        if image.ndim == 3:
            image = image[:, :, ::-1]  # OpenCV's BGR back to RGB
        assert header.id == key and header.id2 == order[key]
        np.testing.assert_array_equal(image, images[order[key]])
        assert header.label == labels[order[key]]


def assert_nothing_written(out):
    assert not os.path.exists(out) or not [n for n in os.listdir(out) if n != 'downloads']


def meta_of(folder):
    with open(os.path.join(folder, 'dataset.json')) as f:
        return json.load(f)


def test_fashion_mnist_records_decode_to_the_idx_pixels(tmp_path):
    source = synthetic.write_fashion_mnist_source(str(tmp_path / 'src'))
    out = str(tmp_path / 'out')
    meta = fashion_mnist.convert(str(tmp_path / 'src'), out, md5s=None, workers=1)
    assert_decodes_to(out, 'train', *source['train'])
    assert_decodes_to(out, 'test', *source['test'])
    images = source['train'][0].astype(np.float64)
    assert meta['image_shape'] == [1, 28, 28]
    assert meta['counts'] == {'train': 60, 'test': 20}
    assert meta['mean'] == [round(images.mean(), 3)] and meta['std'] == [round(images.std(), 3)]
    assert meta['classes'][9] == 'Ankle boot' and 'one grey channel' in meta['input']
    assert meta == meta_of(out) and is_finished(out)


def test_fashion_mnist_checks_the_data_checksum(tmp_path):
    synthetic.write_fashion_mnist_source(str(tmp_path / 'src'))
    with pytest.raises(UserError, match='checksum mismatch'):
        fashion_mnist.convert(str(tmp_path / 'src'), str(tmp_path / 'out'), workers=1)
    assert_nothing_written(str(tmp_path / 'out'))


def _rewrite(path, transform):
    with gzip.open(path) as f:
        data = f.read()
    with gzip.open(path, 'wb') as f:
        f.write(transform(data))


@pytest.mark.parametrize('damage, message', [
    (lambda p: open(p, 'r+b').truncate(os.path.getsize(p) // 2), 'truncated or corrupt'),
    (lambda p: _rewrite(p, lambda d: d[:-100]), 'truncated: its header promises'),
    (lambda p: _rewrite(p, lambda d: b'\x00\x00\x0d\x03' + d[4:]), 'not an IDX file'),
])
def test_fashion_mnist_refuses_damaged_idx_files(tmp_path, damage, message):
    synthetic.write_fashion_mnist_source(str(tmp_path / 'src'))
    damage(str(tmp_path / 'src' / 'train-images-idx3-ubyte.gz'))
    with pytest.raises(UserError, match=message):
        fashion_mnist.convert(str(tmp_path / 'src'), str(tmp_path / 'out'), md5s=None)
    assert_nothing_written(str(tmp_path / 'out'))


def test_fashion_mnist_refuses_labels_out_of_range(tmp_path):
    synthetic.write_fashion_mnist_source(str(tmp_path / 'src'))
    labels = np.full(20, 10, np.uint8)
    synthetic.write_idx_gz(str(tmp_path / 'src' / 't10k-labels-idx1-ubyte.gz'), labels)
    with pytest.raises(UserError, match='label 10, outside 0..9'):
        fashion_mnist.convert(str(tmp_path / 'src'), str(tmp_path / 'out'), md5s=None)


def test_fashion_mnist_official_files_pass_the_content_checksums():
    """The Debian package's recompressed files hold the official bytes."""
    if not os.path.isdir(fashion_mnist.DEBIAN_DIR):
        pytest.skip('dataset-fashion-mnist is not installed')
    _, md5 = fashion_mnist.read_idx(os.path.join(
        fashion_mnist.DEBIAN_DIR, 't10k-labels-idx1-ubyte.gz'), 1)
    assert md5 == fashion_mnist.CONTENT_MD5['t10k-labels-idx1-ubyte']


@pytest.mark.parametrize('dataset', ['cifar10', 'cifar100'])
def test_cifar_records_decode_to_the_pickled_pixels(tmp_path, dataset):
    tarball = str(tmp_path / 'c.tar.gz')
    source = synthetic.write_cifar_tarball(tarball, dataset)
    out = str(tmp_path / 'out')
    meta = cifar.convert(dataset, tarball, out, md5=md5_of(tarball), workers=2)
    assert_decodes_to(out, 'train', *source['train'])
    assert_decodes_to(out, 'test', *source['test'])
    assert meta['classes'] == source['classes'] and meta['image_shape'] == [3, 32, 32]
    pixels = source['train'][0].reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(meta['mean'], pixels.mean(0), atol=5e-4)
    np.testing.assert_allclose(meta['std'], pixels.std(0), atol=5e-4)


class _Exploit:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_cifar_checks_the_md5_before_unpickling(tmp_path, monkeypatch):
    tarball = str(tmp_path / 'c.tar.gz')
    synthetic.write_cifar_tarball(tarball, 'cifar10')
    monkeypatch.setattr(cifar, 'unpickle', lambda *a: pytest.fail('unpickled before the md5'))
    with pytest.raises(UserError, match='checksum mismatch'):
        cifar.convert('cifar10', tarball, str(tmp_path / 'out'))  # the official md5
    assert_nothing_written(str(tmp_path / 'out'))


def test_cifar_unpickler_builds_no_arbitrary_objects():
    with pytest.raises(UserError, match=r'system is not allowed'):
        cifar.unpickle(synthetic.python2_pickle({b'data': _Exploit()}), 'x')


@pytest.mark.parametrize('name, kind', [
    ('../escaped', tarfile.REGTYPE),
    ('/tmp/cifar-absolute', tarfile.REGTYPE),
    ('cifar-10-batches-py/../../up', tarfile.REGTYPE),
    ('cifar-10-batches-py/link', tarfile.SYMTYPE),
    ('cifar-10-batches-py/hard', tarfile.LNKTYPE),
])
def test_cifar_refuses_path_escaping_members(tmp_path, name, kind):
    member = tarfile.TarInfo(name)
    member.type = kind
    payload = None
    if kind == tarfile.REGTYPE:
        payload = b'x'
        member.size = len(payload)
    else:
        member.linkname = '/etc/passwd'
    tarball = str(tmp_path / 'c.tar.gz')
    synthetic.write_cifar_tarball(tarball, 'cifar10', extra=[(member, payload)])
    with pytest.raises(UserError, match='could land outside the target folder'):
        cifar.convert('cifar10', tarball, str(tmp_path / 'out'), md5=md5_of(tarball))
    assert not os.path.exists(tmp_path / 'escaped') and not os.path.exists(tmp_path / 'up')
    assert not os.path.exists('/tmp/cifar-absolute')
    assert_nothing_written(str(tmp_path / 'out'))


def test_cifar_refuses_a_truncated_archive(tmp_path):
    tarball = str(tmp_path / 'c.tar.gz')
    synthetic.write_cifar_tarball(tarball, 'cifar10', train_count=500)
    with open(tarball, 'r+b') as f:
        f.truncate(os.path.getsize(tarball) * 2 // 3)
    with pytest.raises(UserError, match='cut short|not a complete tar archive'):
        cifar.convert('cifar10', tarball, str(tmp_path / 'out'), md5=md5_of(tarball))
    assert_nothing_written(str(tmp_path / 'out'))


def test_svhn_records_hold_train_and_extra_shuffled_with_digit_zero_as_zero(tmp_path):
    source = synthetic.write_svhn_mats(str(tmp_path / 'src'))
    out = str(tmp_path / 'out')
    meta = svhn.convert(str(tmp_path / 'src'), out, md5s=None, workers=1)
    images = np.concatenate([source['train'][0], source['extra'][0]])
    labels = np.concatenate([source['train'][1], source['extra'][1]])
    order = np.random.default_rng(svhn.SHUFFLE_SEED).permutation(len(labels))
    assert_decodes_to(out, 'train', images, labels, order)
    assert_decodes_to(out, 'test', *source['test'])
    assert 0 in labels and meta['counts'] == {'train': 70, 'test': 20}
    assert sorted(int(h.id2) for h, _ in read_records(out, 'train')) == list(range(70))


def test_svhn_refuses_a_truncated_mat_file(tmp_path):
    synthetic.write_svhn_mats(str(tmp_path / 'src'))
    path = str(tmp_path / 'src' / 'test_32x32.mat')
    with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 2)
    with pytest.raises(UserError, match='truncated or not an SVHN'):
        svhn.convert(str(tmp_path / 'src'), str(tmp_path / 'out'), md5s=None)
    with pytest.raises(UserError, match='checksum mismatch'):
        svhn.convert(str(tmp_path / 'src'), str(tmp_path / 'out'))
    assert_nothing_written(str(tmp_path / 'out'))


def test_imagenet_tree_becomes_480_pixel_records_and_im2rec_lists(tmp_path):
    written = synthetic.write_image_tree(str(tmp_path / 'src'))
    with open(tmp_path / 'src' / 'val' / 'n02' / 'broken.JPEG', 'wb') as f:
        f.write(b'not a jpeg')
    out = str(tmp_path / 'out')
    meta = imagenet.convert(str(tmp_path / 'src'), out, workers=2)
    assert meta['classes'] == ['n01', 'n02', 'n03']
    assert meta['counts'] == {'train': 6, 'val': 6}
    assert meta['skipped'] == [os.path.join('val', 'n02/broken.JPEG')]
    for split, stem in imagenet.SPLITS:
        sizes = {rel: size for s, rel, _, size in written if s == split}
        with open(os.path.join(out, stem + '.lst')) as f:
            lines = [line.rstrip('\n').split('\t') for line in f]
        records = read_records(out, stem)
        assert [int(key) for key, _, _ in lines] == list(range(len(records)))
        for (key, label, rel), (header, image) in zip(lines, records):
            assert float(label) == header.label == ['n01', 'n02', 'n03'].index(rel[:3])
            height, width = sizes[rel]
            assert min(image.shape[:2]) == 480 and image.shape[2] == 3
            # the aspect ratio is kept (im2rec's integer arithmetic)
            assert max(image.shape[:2]) == max(height, width) * 480 // min(height, width)
    with open(os.path.join(out, 'imagenet_val.lst')) as f:
        assert f.readline() == '0\t0.000000\tn01/n01_0.JPEG\n'


def test_imagenet_val_class_missing_from_train_is_refused(tmp_path):
    synthetic.write_image_tree(str(tmp_path / 'src'))
    os.makedirs(tmp_path / 'src' / 'val' / 'n99')
    with pytest.raises(UserError, match='n99 that train/ lacks'):
        imagenet.convert(str(tmp_path / 'src'), str(tmp_path / 'out'), workers=1)


def test_a_failed_run_leaves_no_files_that_look_finished(tmp_path, monkeypatch):
    source = synthetic.write_fashion_mnist_source(str(tmp_path / 'src'))
    out = str(tmp_path / 'out')
    fashion_mnist.convert(str(tmp_path / 'src'), out, md5s=None, workers=1)
    assert is_finished(out)
    calls = []

    def fail_on_the_test_split(staging, rec_name, *args, **kwargs):
        calls.append(rec_name)
        if rec_name == 'test.rec':
            raise KeyboardInterrupt
        return write_image_array(staging, rec_name, *args, **kwargs)

    monkeypatch.setattr(fashion_mnist, 'write_image_array', fail_on_the_test_split)
    with pytest.raises(KeyboardInterrupt):
        fashion_mnist.convert(str(tmp_path / 'src'), out, md5s=None, workers=1)
    assert calls == ['train.rec', 'test.rec']
    # the earlier finished files are untouched and nothing partial is left
    assert sorted(os.listdir(out)) == ['dataset.json', 'test.idx', 'test.rec', 'train.idx',
                                       'train.rec']
    assert is_finished(out)
    assert_decodes_to(out, 'train', *source['train'])


def test_is_finished_wants_every_listed_file_at_its_size(tmp_path):
    source = synthetic.write_fashion_mnist_source(str(tmp_path / 'src'))
    out = str(tmp_path / 'out')
    with Staging(out) as staging:
        entry, _, _ = write_image_array(staging, 'train.rec', *source['train'], workers=1)
        staging.commit(dict(files={'train.rec': entry}))
    assert is_finished(out)
    with open(os.path.join(out, 'train.rec'), 'ab') as f:
        f.write(b'\0')
    assert not is_finished(out)
    os.remove(os.path.join(out, 'dataset.json'))
    assert not is_finished(out)


def test_download_keeps_only_a_verified_copy(tmp_path):
    from data.fetch import download
    source = tmp_path / 'served.bin'
    source.write_bytes(b'official bytes')
    url = 'file://' + str(source)
    target = str(tmp_path / 'downloads' / 'file.bin')
    with pytest.raises(UserError, match='checksum mismatch'):
        download(url, target, '0' * 32)
    assert not os.path.exists(tmp_path / 'downloads')  # nor a .part, nor the folder
    assert download(url, target, md5_of(str(source))) == target
    assert open(target, 'rb').read() == b'official bytes'
    with pytest.raises(UserError, match='cannot download'):
        download('file://' + str(tmp_path / 'missing'), str(tmp_path / 'x'), None)
