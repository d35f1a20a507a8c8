"""Tiny data sets in the exact official formats, and small record files, for tests and benchmarks.

Writers for: Fashion-MNIST IDX .gz files, the CIFAR-10/100 Python tarballs (official member
names, Python-2-style pickles with bytes keys, protocol 2), SVHN format-2 .mat files (X of
shape (32, 32, 3, N), y of shape (N, 1), 10 for digit 0) and a class-folder image tree.
"""
import gzip
import io
import os
import pickle
import struct
import tarfile

import cv2
import numpy as np
import scipy.io

from data.recwriter import Staging, write_image_array


def smooth_images(count, height, width, channels=3, seed=0):
    """uint8 images with photo-like local correlation (coarse noise, upscaled, plus grain)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (count, height // 4, width // 4, channels), dtype=np.uint8)
    images = np.stack([cv2.resize(c, (width, height), interpolation=cv2.INTER_LINEAR)
                       .reshape(height, width, channels) for c in coarse])
    grain = rng.integers(-8, 9, images.shape)
    images = np.clip(images.astype(np.int16) + grain, 0, 255).astype(np.uint8)
    return images[..., 0] if channels == 1 else images


def write_idx_gz(path, array):
    """An IDX file of unsigned bytes, gzip-compressed, as the official MNIST-style files."""
    array = np.ascontiguousarray(array, np.uint8)
    head = struct.pack('>HBB', 0, 0x08, array.ndim) + struct.pack('>%dI' % array.ndim,
                                                                  *array.shape)
    with gzip.open(path, 'wb') as f:
        f.write(head + array.tobytes())


def write_fashion_mnist_source(folder, train_count=60, test_count=20, seed=0):
    """The four official files; returns {'train': (images, labels), 'test': (...)}."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    splits = {}
    for split, prefix, count in (('train', 'train', train_count), ('test', 't10k', test_count)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        write_idx_gz(os.path.join(folder, prefix + '-images-idx3-ubyte.gz'), images)
        write_idx_gz(os.path.join(folder, prefix + '-labels-idx1-ubyte.gz'), labels)
        splits[split] = (images, labels)
    return splits


class _Python2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it: byte strings as (SHORT_)BINSTRING, as the official
    batches hold them (Python 3 would build them through _codecs.encode instead)."""
    dispatch = dict(pickle._Pickler.dispatch)

    def _save_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack('<i', len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_str


def python2_pickle(obj):
    out = io.BytesIO()
    _Python2Pickler(out, protocol=2).dump(obj)
    return out.getvalue()


def _cifar_batch(images, labels, label_key, extra=None):
    """One batch dict as the official files hold it: rows of R, G, B planes; bytes keys."""
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)
    batch = {b'batch_label': b'synthetic batch', label_key: [int(v) for v in labels],
             b'data': rows, b'filenames': [b'img_%05d.png' % i for i in range(len(images))]}
    batch.update(extra or {})
    return python2_pickle(batch)


def _add_member(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_cifar_tarball(path, dataset, train_count=50, test_count=20, seed=0, extra=()):
    """An official-layout CIFAR tarball; `extra`: (TarInfo, bytes) members to add (attacks).

    Returns {'train': (images, labels), 'test': (...), 'classes': [...]}.
    """
    rng = np.random.default_rng(seed)
    num_classes = 10 if dataset == 'cifar10' else 100
    classes = ['class_%d' % i for i in range(num_classes)]
    train = (rng.integers(0, 256, (train_count, 32, 32, 3), dtype=np.uint8),
             rng.integers(0, num_classes, train_count))
    test = (rng.integers(0, 256, (test_count, 32, 32, 3), dtype=np.uint8),
            rng.integers(0, num_classes, test_count))
    with tarfile.open(path, 'w:gz') as tar:
        if dataset == 'cifar10':
            folder = 'cifar-10-batches-py'
            tar.addfile(_dir_info(folder))
            for i, part in enumerate(np.array_split(np.arange(train_count), 5)):
                _add_member(tar, '%s/data_batch_%d' % (folder, i + 1),
                            _cifar_batch(train[0][part], train[1][part], b'labels'))
            _add_member(tar, folder + '/test_batch', _cifar_batch(*test, b'labels'))
            _add_member(tar, folder + '/batches.meta', python2_pickle(
                {b'label_names': [c.encode() for c in classes], b'num_cases_per_batch': 10000,
                 b'num_vis': 3072}))
            _add_member(tar, folder + '/readme.html', b'<html></html>')
        else:
            folder = 'cifar-100-python'
            tar.addfile(_dir_info(folder))
            for split, (images, labels) in (('train', train), ('test', test)):
                _add_member(tar, '%s/%s' % (folder, split), _cifar_batch(
                    images, labels, b'fine_labels', {b'coarse_labels': [0] * len(labels)}))
            _add_member(tar, folder + '/meta', python2_pickle(
                {b'fine_label_names': [c.encode() for c in classes],
                 b'coarse_label_names': [b'coarse_%d' % i for i in range(20)]}))
            _add_member(tar, folder + '/file.txt~', b'')
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return dict(train=train, test=test, classes=classes)


def _dir_info(name):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info


def write_svhn_mats(folder, counts=None, seed=0):
    """train/test/extra _32x32.mat; returns {split: (images (N,32,32,3), labels 0..9)}."""
    counts = counts or dict(train=30, test=20, extra=40)
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    splits = {}
    for split, count in counts.items():
        images = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
        digits = rng.integers(0, 10, count)
        digits[:min(count, 10)] = np.arange(min(count, 10))  # every digit, 0 included
        mat_labels = np.where(digits == 0, 10, digits).astype(np.uint8).reshape(-1, 1)
        scipy.io.savemat(os.path.join(folder, '%s_32x32.mat' % split),
                         {'X': images.transpose(1, 2, 3, 0), 'y': mat_labels})
        splits[split] = (images, digits)
    return splits


def write_image_tree(root, wnids=('n01', 'n02', 'n03'), per_class=2, seed=0):
    """train/<wnid>/*.JPEG and val/<wnid>/*.JPEG of assorted sizes (one grey image)."""
    rng = np.random.default_rng(seed)
    sizes = [(500, 375), (300, 640), (480, 480), (200, 260)]
    written = []
    for split in ('train', 'val'):
        for label, wnid in enumerate(wnids):
            os.makedirs(os.path.join(root, split, wnid), exist_ok=True)
            for i in range(per_class):
                height, width = sizes[(label * per_class + i) % len(sizes)]
                image = smooth_images(1, height, width, seed=int(rng.integers(1 << 30)))[0]
                if i == 1 and label == 0:
                    image = image[:, :, 0]
                rel = '%s/%s_%d.JPEG' % (wnid, wnid, i)
                cv2.imwrite(os.path.join(root, split, rel), image,
                            [cv2.IMWRITE_JPEG_QUALITY, 98])
                written.append((split, rel, label, (height, width)))
    return written


def write_record_dataset(out_dir, name, train, test, workers=1):
    """train.rec and test.rec (+ .idx, dataset.json) of uint8 arrays, as data.prepare writes."""
    with Staging(out_dir) as staging:
        train_entry, mean, std = write_image_array(staging, 'train.rec', *train,
                                                   workers=workers)
        test_entry, _, _ = write_image_array(staging, 'test.rec', *test, workers=workers)
        images = train[0]
        shape = [images.shape[3] if images.ndim == 4 else 1] + list(images.shape[1:3])
        meta = dict(dataset=name, image_shape=shape, mean=mean, std=std,
                    counts=dict(train=train_entry['count'], test=test_entry['count']),
                    files={'train.rec': train_entry, 'test.rec': test_entry})
        staging.commit(meta)
    return meta


def write_records(out_dir, rec_name, images, labels):
    """<rec_name> and its .idx from a list of uint8 images that may differ in size (which
    data.prepare never writes), written in place over any earlier pair."""
    import mxnet as mx
    from data.encode import encode_png_chunk
    writer = mx.recordio.MXIndexedRecordIO(
        os.path.join(out_dir, os.path.splitext(rec_name)[0] + '.idx'),
        os.path.join(out_dir, rec_name), 'w')
    for key, (image, label) in enumerate(zip(images, labels)):
        (png,), _ = encode_png_chunk(image[None])
        writer.write_idx(key, mx.recordio.pack(mx.recordio.IRHeader(0, float(label), key, key),
                                               png))
    writer.close()
