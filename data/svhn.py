"""SVHN: the official format-2 files (train, extra, test _32x32.mat) to train.rec and test.rec.

As the original, training uses train + extra (604,388 images). The two are shuffled together
once, with a fixed seed, so that every part of a sharded run sees both (extra is easier than
train); each record's header keeps its index in train-then-extra as id2. Label 10 is digit 0.
"""
import os

import numpy as np
import scipy.io

from common.errors import UserError
from data.fetch import OFFICIAL, check_md5, download
from data.recwriter import Staging, write_image_array

URL = 'http://ufldl.stanford.edu/housenumbers/'
FILES = {'train': ('train_32x32.mat', 'e26dedcc434d2e4c54c9b2d4a06d8373'),
         'test': ('test_32x32.mat', 'eb5a983be6a315427106f1b164d9cef3'),
         'extra': ('extra_32x32.mat', 'a93ce644f1a588dc4d68dda5feec44a7')}
CLASSES = [str(digit) for digit in range(10)]
SHUFFLE_SEED = 0


def find_sources(source, download_dir):
    paths = {}
    for split, (name, md5) in FILES.items():
        if source is None:
            paths[split] = download(URL + name, os.path.join(download_dir, name), md5)
            continue
        paths[split] = os.path.join(source, name)
        if not os.path.isfile(paths[split]):
            raise UserError('%s not found in %s; pass the folder with the three official '
                            'SVHN format-2 files as --source' % (name, source))
    return paths


def load_mat(path):
    """uint8 images as a (N, 32, 32, 3) view and labels 0..9 (10 -> 0) of one .mat file."""
    try:
        mat = scipy.io.loadmat(path, variable_names=['X', 'y'])
    except (OSError, ValueError, TypeError, KeyError, EOFError, NotImplementedError,
            scipy.io.matlab.MatReadError) as err:
        raise UserError('%s is truncated or not an SVHN format-2 file (%s); get it again'
                        % (path, err)) from None
    images, labels = mat.get('X'), mat.get('y')
    if images is None or labels is None or images.ndim != 4 or images.shape[:3] != (32, 32, 3):
        raise UserError('%s lacks X of shape (32, 32, 3, N) and y' % path)
    labels = np.asarray(labels).reshape(-1)
    if len(labels) != images.shape[3]:
        raise UserError('%s has %d images but %d labels' % (path, images.shape[3], len(labels)))
    if labels.size and (labels.min() < 1 or labels.max() > 10):
        raise UserError('%s has labels outside 1..10 (10 stands for digit 0)' % path)
    return images.transpose(3, 0, 1, 2).astype(np.uint8, copy=False), \
        (labels % 10).astype(np.int64)


class Concatenated:
    """Several image arrays read as one, without copying them into one."""

    def __init__(self, arrays):
        self.arrays = arrays
        self.starts = np.cumsum([0] + [len(a) for a in arrays])
        self.shape = (int(self.starts[-1]),) + arrays[0].shape[1:]
        self.ndim = arrays[0].ndim

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, ids):
        ids = np.asarray(ids)
        out = np.empty((len(ids),) + self.shape[1:], np.uint8)
        which = np.searchsorted(self.starts, ids, side='right') - 1
        for k, array in enumerate(self.arrays):
            mask = which == k
            out[mask] = array[ids[mask] - self.starts[k]]
        return out


def convert(source, out_dir, md5s=OFFICIAL, workers=None):
    """Write train.rec (train + extra, shuffled) and test.rec to `out_dir`; returns the JSON.

    `md5s`: {'train': md5, 'test': ..., 'extra': ...} (default: the official ones; None skips).
    """
    md5s = {split: md5 for split, (_, md5) in FILES.items()} if md5s == OFFICIAL else md5s
    paths = find_sources(source, os.path.join(out_dir, 'downloads'))
    for split, path in paths.items():
        check_md5(path, None if md5s is None else md5s[split], FILES[split][0])
    train_images, train_labels = load_mat(paths['train'])
    extra_images, extra_labels = load_mat(paths['extra'])
    test = load_mat(paths['test'])
    images = Concatenated([train_images, extra_images])
    labels = np.concatenate([train_labels, extra_labels])
    order = np.random.default_rng(SHUFFLE_SEED).permutation(len(labels))
    with Staging(out_dir) as staging:
        train_entry, mean, std = write_image_array(staging, 'train.rec', images, labels,
                                                   order=order, workers=workers,
                                                   desc='svhn train+extra')
        test_entry, _, _ = write_image_array(staging, 'test.rec', *test, workers=workers,
                                             desc='svhn test')
        meta = dict(dataset='svhn', num_classes=10, classes=CLASSES, image_shape=[3, 32, 32],
                    mean=mean, std=std, encoding='png',
                    counts=dict(train=train_entry['count'], test=test_entry['count']),
                    files={'train.rec': train_entry, 'test.rec': test_entry},
                    train_order='train then extra, shuffled with numpy default_rng(%d); '
                                'id2 = index in train then extra' % SHUFFLE_SEED)
        staging.commit(meta)
    return meta
