"""CIFAR-10 and CIFAR-100: the official Python-version tarballs to train.rec and test.rec.

The tarball's md5 is checked before anything in it is unpickled, members are read in memory
(never extracted) after every member name was checked, and the unpickler only builds the
plain containers and numpy arrays the official batches hold.
"""
import io
import os
import pickle

import numpy as np

from common.errors import UserError
from data.fetch import OFFICIAL, SafeTar, check_md5, download
from data.recwriter import Staging, write_image_array

URL = 'https://www.cs.toronto.edu/~kriz/'
ARCHIVES = {
    'cifar10': dict(file='cifar-10-python.tar.gz', md5='c58f30108f718f92721af3b95e74349a',
                    folder='cifar-10-batches-py',
                    train=['data_batch_%d' % i for i in range(1, 6)], test=['test_batch'],
                    meta='batches.meta', label_key=b'labels', names_key=b'label_names'),
    'cifar100': dict(file='cifar-100-python.tar.gz', md5='eb9058c3a382ffc7106e4002c42a8d85',
                     folder='cifar-100-python', train=['train'], test=['test'], meta='meta',
                     label_key=b'fine_labels', names_key=b'fine_label_names'),
}
_NUMPY_GLOBALS = {('numpy.core.multiarray', '_reconstruct'), ('numpy', 'ndarray'),
                  ('numpy', 'dtype'), ('numpy.core.multiarray', 'scalar'),
                  ('numpy.core.numeric', '_frombuffer')}


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays; refuses any other class."""

    def find_class(self, module, name):
        if (module, name) in _NUMPY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError('%s.%s is not allowed in a CIFAR batch' % (module, name))


def unpickle(data, where):
    try:
        # The official batches were pickled by Python 2: their str keys come back as bytes.
        return _ArrayUnpickler(io.BytesIO(data), encoding='bytes').load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError) as err:
        raise UserError('%s is not an official CIFAR batch (%s)' % (where, err)) from None


def find_archive(dataset, source, download_dir):
    spec = ARCHIVES[dataset]
    if source is None:
        return download(URL + spec['file'], os.path.join(download_dir, spec['file']),
                        spec['md5'])
    path = os.path.join(source, spec['file']) if os.path.isdir(source) else source
    if not os.path.isfile(path):
        raise UserError('%s not found in %s; pass the official tarball or its folder as '
                        '--source' % (spec['file'], source))
    return path


def read_split(tar, dataset, members):
    """uint8 RGB images (N, 32, 32, 3) and int64 labels of the named batches, in order."""
    spec = ARCHIVES[dataset]
    images, labels = [], []
    for member in members:
        name = '%s/%s' % (spec['folder'], member)
        batch = unpickle(tar.read(name), '%s:%s' % (tar.path, name))
        try:
            data = np.asarray(batch[b'data'], np.uint8)
            batch_labels = np.asarray(batch[spec['label_key']], np.int64)
        except (KeyError, TypeError, ValueError):
            raise UserError('%s:%s lacks the official data and %s entries'
                            % (tar.path, name, spec['label_key'].decode())) from None
        if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(batch_labels):
            raise UserError('%s:%s holds data of shape %s for %d labels, not N x 3072'
                            % (tar.path, name, data.shape, len(batch_labels)))
        # Each row is the red plane, then green, then blue, each 32x32 row-major.
        images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(batch_labels)
    return np.concatenate(images), np.concatenate(labels)


def class_names(tar, dataset):
    spec = ARCHIVES[dataset]
    name = '%s/%s' % (spec['folder'], spec['meta'])
    meta = unpickle(tar.read(name), '%s:%s' % (tar.path, name))
    try:
        return [n.decode() if isinstance(n, bytes) else str(n) for n in meta[spec['names_key']]]
    except (KeyError, TypeError):
        raise UserError('%s:%s has no %s' % (tar.path, name, spec['names_key'].decode())) \
            from None


def convert(dataset, source, out_dir, md5=OFFICIAL, workers=None):
    """Write train.rec/test.rec (+ .idx, dataset.json) to `out_dir`; returns the JSON.

    `md5`: the tarball's expected md5 (default: the official one of `dataset`; None skips).
    """
    spec = ARCHIVES[dataset]
    md5 = spec['md5'] if md5 == OFFICIAL else md5
    path = find_archive(dataset, source, os.path.join(out_dir, 'downloads'))
    check_md5(path, md5, spec['file'])  # before anything in it is unpickled
    with SafeTar(path) as tar:
        classes = class_names(tar, dataset)
        train = read_split(tar, dataset, spec['train'])
        test = read_split(tar, dataset, spec['test'])
    for split, (_, labels) in (('train', train), ('test', test)):
        if labels.min() < 0 or labels.max() >= len(classes):
            raise UserError('%s: a %s label is outside 0..%d' % (path, split, len(classes) - 1))
    with Staging(out_dir) as staging:
        train_entry, mean, std = write_image_array(staging, 'train.rec', *train,
                                                   workers=workers, desc=dataset + ' train')
        test_entry, _, _ = write_image_array(staging, 'test.rec', *test, workers=workers,
                                             desc=dataset + ' test')
        meta = dict(dataset=dataset, num_classes=len(classes), classes=classes,
                    image_shape=[3, 32, 32], mean=mean, std=std, encoding='png',
                    counts=dict(train=train_entry['count'], test=test_entry['count']),
                    files={'train.rec': train_entry, 'test.rec': test_entry},
                    train_order='official')
        staging.commit(meta)
    return meta
