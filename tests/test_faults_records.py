"""Records that are not what their set claims (issue 24, class 9): every record's image
format is checked from the headers the record-set check reads anyway (one comparison for
the whole file), not only the first three records decoded."""
import os
import subprocess
import sys

import cv2
import mxnet as mx
import numpy as np
import pytest

from common.errors import UserError
from data import synthetic
from data.encode import encode_png_chunk
from data.iterators import get_iterators
from helpers import assert_one_line_error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COUNT = 40


def rewrite(folder, stem, images, labels, odd):
    """`stem`.rec/.idx again, record `key` encoded by odd[key](image) when given."""
    writer = mx.recordio.MXIndexedRecordIO(os.path.join(folder, stem + '.idx'),
                                           os.path.join(folder, stem + '.rec'), 'w')
    for key in range(len(images)):
        if key in odd:
            payload = odd[key](images[key])
        else:
            (payload,), _ = encode_png_chunk(images[key:key + 1])
        writer.write_idx(key, mx.recordio.pack(
            mx.recordio.IRHeader(0, float(labels[key]), key, 0), payload))
    writer.close()


def jpeg(image):
    return cv2.imencode('.jpg', image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()


def bmp(image):
    return cv2.imencode('.bmp', image)[1].tobytes()


@pytest.fixture
def cifar_like(tmp_path):
    images = synthetic.smooth_images(COUNT, 32, 32, 3)
    labels = np.arange(COUNT) % 10
    synthetic.write_record_dataset(str(tmp_path), 'cifar10', (images, labels),
                                   (images, labels))
    return str(tmp_path), images, labels


@pytest.mark.parametrize('encode,what', [(jpeg, 'a JPEG image'), (bmp, 'no PNG or JPEG image')])
def test_one_odd_record_among_pngs_is_refused(cifar_like, encode, what):
    """A JPEG record at key 25 of a PNG set: the first three decode fine, so it trained."""
    folder, images, labels = cifar_like
    os.remove(os.path.join(folder, 'dataset.json'))   # it describes the file replaced here
    rewrite(folder, 'train', images, labels, {25: encode})
    with pytest.raises(UserError, match=r'train.rec: record key 25 \(offset \d+\) holds %s, '
                                        r'but .* its images are PNG' % what):
        get_iterators('cifar10', folder, batch_size=8, test_batch_size=8)


def test_the_sets_own_json_names_the_encoding(cifar_like):
    """dataset.json says PNG; the test records are all JPEG: the first record is named."""
    folder, images, labels = cifar_like
    rewrite(folder, 'test', images, labels, {key: jpeg for key in range(COUNT)})
    with pytest.raises(UserError, match=r'test.rec: record key 0 .* holds a JPEG image'):
        get_iterators('cifar10', folder, batch_size=8, test_batch_size=8)


@pytest.mark.slow
def test_train_model_refuses_a_mixed_set_in_one_line(cifar_like, tmp_path):
    folder, images, labels = cifar_like
    os.remove(os.path.join(folder, 'dataset.json'))
    rewrite(folder, 'train', images, labels, {COUNT - 1: jpeg})
    proc = subprocess.run([sys.executable, 'train_model.py', '--dataset', 'cifar10',
                           '--data-dir', folder, '--log-dir', str(tmp_path / 'snap'),
                           '--depth', '8', '--network', 'resnet', '--cpu', '--num-epochs', '1',
                           '--batch-size', '8', '--test-batch-size', '8'],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert_one_line_error(proc, 'record key %d' % (COUNT - 1), 'JPEG')
    assert not (tmp_path / 'snap').exists()


def test_a_set_of_pngs_passes(cifar_like):
    folder, _, _ = cifar_like
    train, val = get_iterators('cifar10', folder, batch_size=8, test_batch_size=8)
    assert train.num_examples == COUNT
