"""Fashion-MNIST: the four official IDX files (gzip) to train.rec and test.rec.

The networks see it as one grey channel at 28x28 (records are grey PNGs); augmentation type 1
pads by 4 and crops 28, as for CIFAR.

The md5s checked are those of the decompressed IDX data: Debian's package recompresses the
official .gz files (other gzip headers, the same bytes inside), so the official archives'
own md5s only apply to a download.
"""
import gzip
import os
import struct
import zlib

import numpy as np

from common.errors import UserError
from common.reading import open_regular
from data.fetch import download, md5_of
from data.recwriter import Staging, write_image_array

URL = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/'
DEBIAN_DIR = '/usr/share/datasets/fashion-mnist'
# name: (md5 of the official .gz, md5 of its decompressed IDX data)
FILES = {
    'train-images-idx3-ubyte': ('8d4fb7e6c68d591d4c3dfef9ec88bf0d',
                                'f4a8712d7a061bf5bd6d2ca38dc4d50a'),
    'train-labels-idx1-ubyte': ('25c81989df183df01b3e8a0aad5dffbe',
                                '9018921c3c673c538a1fc5bad174d6f9'),
    't10k-images-idx3-ubyte': ('bef4ecab320f06d8554ea6380940ec79',
                               '8181f5470baa50b63fa0f6fddb340f0a'),
    't10k-labels-idx1-ubyte': ('bb300cfdad3c16e7a12a480ee83cd310',
                               '15d484375f8d13e6eb1aabb0c3f46965'),
}
CONTENT_MD5 = {name: sums[1] for name, sums in FILES.items()}
CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt',
           'Sneaker', 'Bag', 'Ankle boot']
INPUT_NOTE = ('one grey channel at 28x28 (no resizing, no colour copies); augmentation type 1 '
              'pads 4 pixels with the mean grey and crops 28x28')
# IDX type code 0x08 = unsigned byte; the last byte of the magic is the number of dimensions.
_UBYTE = 0x08


# The largest IDX file the data set has: 60,000 images of 28x28 plus the header. A file
# (or its gzip stream) is never read or decompressed past what its header promises, and a
# header may promise at most this: a gzip bomb of a few MB would otherwise inflate to GBs.
MAX_IDX_BYTES = 16 + 60000 * 28 * 28


def read_idx(path, dims, max_bytes=MAX_IDX_BYTES):
    """The uint8 array of an IDX file (gzip or plain), after checking its header and length;
    what is read (decompressed) is bounded by the header and by `max_bytes`."""
    try:
        with open_regular(path) as raw:
            gzipped = raw.read(2) == b'\x1f\x8b'
            raw.seek(0)
            stream = gzip.GzipFile(fileobj=raw, mode='rb') if gzipped else raw
            data = _read_idx_stream(stream, path, dims, max_bytes)
    except OSError as err:
        raise UserError('cannot read %s (%s)' % (path, err.strerror or err)) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise UserError('%s is truncated or corrupt (%s); get the file again' % (path, err)) \
            from None
    shape = struct.unpack('>%dI' % dims, data[4:4 + 4 * dims])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape), \
        md5_of(data=data)


def _read_idx_stream(stream, path, dims, max_bytes):
    """The bytes of the IDX file `stream` reads: its header, checked, then as many bytes as
    the header promises and one more (to find a longer file), never more."""
    head = 4 + 4 * dims
    data = stream.read(head)
    if len(data) < head:
        raise UserError('%s is truncated: no IDX header' % path)
    zero, dtype, ndim = struct.unpack('>HBB', data[:4])
    if zero != 0 or dtype != _UBYTE or ndim != dims:
        raise UserError('%s is not an IDX file of %d-dimensional unsigned bytes' % (path, dims))
    shape = struct.unpack('>%dI' % dims, data[4:head])
    expected = head + int(np.prod(shape, dtype=np.int64))
    if expected > max_bytes:
        raise UserError('%s: its header promises %d bytes (shape %s), more than a '
                        'Fashion-MNIST file can hold (%d); get the official file'
                        % (path, expected, 'x'.join(map(str, shape)), max_bytes))
    data += stream.read(expected - head)
    if len(data) < expected:
        raise UserError('%s is truncated: its header promises %d bytes, it has %d; get the '
                        'file again' % (path, expected, len(data)))
    if stream.read(1):
        raise UserError('%s has more bytes than its header promises (%d); get the file '
                        'again' % (path, expected))
    return data


def find_sources(source, download_dir):
    """Paths of the four files: in `source`, else Debian's folder, else downloaded."""
    if source is None and os.path.isdir(DEBIAN_DIR):
        source = DEBIAN_DIR
    paths = {}
    for name, (gz_md5, _) in FILES.items():
        if source is None:
            paths[name] = download(URL + name + '.gz', os.path.join(download_dir, name + '.gz'),
                                   gz_md5)
            continue
        found = [p for p in (os.path.join(source, name + '.gz'), os.path.join(source, name))
                 if os.path.isfile(p)]
        if not found:
            raise UserError('%s.gz not found in %s; pass the folder with the four official '
                            'Fashion-MNIST files as --source' % (name, source))
        paths[name] = found[0]
    return paths


def load_split(paths, prefix, md5s):
    images, image_md5 = read_idx(paths[prefix + '-images-idx3-ubyte'], 3)
    labels, label_md5 = read_idx(paths[prefix + '-labels-idx1-ubyte'], 1)
    for name, actual in ((prefix + '-images-idx3-ubyte', image_md5),
                         (prefix + '-labels-idx1-ubyte', label_md5)):
        if md5s is not None and actual != md5s[name]:
            raise UserError('checksum mismatch for %s: its data has md5 %s, the official %s; '
                            'get the official file' % (paths[name], actual, md5s[name]))
    if len(images) != len(labels):
        raise UserError('%s has %d images but %d labels' % (prefix, len(images), len(labels)))
    if labels.size and labels.max() >= len(CLASSES):
        raise UserError('%s has label %d, outside 0..%d'
                        % (paths[prefix + '-labels-idx1-ubyte'], labels.max(), len(CLASSES) - 1))
    return images, labels


def convert(source, out_dir, md5s=CONTENT_MD5, workers=None):
    """Write train.rec/test.rec (+ .idx, dataset.json) to `out_dir`; returns the JSON."""
    paths = find_sources(source, os.path.join(out_dir, 'downloads'))
    train = load_split(paths, 'train', md5s)
    test = load_split(paths, 't10k', md5s)
    with Staging(out_dir) as staging:
        train_entry, mean, std = write_image_array(staging, 'train.rec', *train,
                                                   workers=workers, desc='fashion-mnist train')
        test_entry, _, _ = write_image_array(staging, 'test.rec', *test, workers=workers,
                                             desc='fashion-mnist test')
        meta = dict(dataset='fashion-mnist', num_classes=len(CLASSES), classes=CLASSES,
                    image_shape=[1, *train[0].shape[1:]], mean=mean, std=std, encoding='png',
                    counts=dict(train=train_entry['count'], test=test_entry['count']),
                    files={'train.rec': train_entry, 'test.rec': test_entry},
                    train_order='official', input=INPUT_NOTE)
        staging.commit(meta)
    return meta
