"""Images into the network exactly as training's validation feeds them, and logits out.

Record files are read by the training scripts' own validation iterator (data/iterators.py):
the same decoding, normalisation and (ImageNet) scaling and centre crop. Loose image files
are first turned into records the way the data set's preparation stores its images, then
read the same way, so that a picture and its record give the same prediction.
"""
import os

import cv2
import mxnet as mx
import numpy as np

from common.errors import UserError
from data.datasets import DATASETS
from data.encode import encode_jpeg_file, read_image
from network import mean_prediction

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.pgm',
                    '.ppm')


def record_batches(flags, rec_path, batch_size, threads=None):
    """The validation iterator of the run's data set over `rec_path`, in record order."""
    from data.iterators import get_iterators
    rec_path = os.path.abspath(rec_path)
    folder, name = os.path.split(rec_path)
    # get_iterators builds a training iterator too: pointed at the same file with batch 1,
    # it is never read (its reader starts only when iterated).
    _, val_it = get_iterators(
        dataset=flags['dataset'], data_dir=folder, batch_size=1, test_batch_size=batch_size,
        aug_type=flags['aug_type'], data_shape=flags['data_shape'], train_rec=name,
        val_rec=name, threads=threads, num_classes=flags['num_classes'])
    return val_it


def capped_batch_size(rec_path, batch_size):
    """`batch_size`, at most the number of records in `rec_path` (counted from its index):
    every batch is padded to the full size, so --batch-size 1000000 on 32 images would
    allocate a million images."""
    from data.recordfile import read_index
    return max(1, min(batch_size, len(read_index(os.path.abspath(rec_path))[0])))


def padded(data, batch_size):
    """`data` topped up with zero images to `batch_size` rows."""
    n = data.shape[0]
    if n >= batch_size:
        return data
    pad = mx.nd.zeros((batch_size - n,) + data.shape[1:], dtype=data.dtype)
    return mx.nd.concat(data, pad, dim=0)


def first_and_all(batches):
    """(first batch's data, an iterator over all the batches again, the first included)."""
    stream = iter(batches)
    first = next(stream, None)
    if first is None:
        raise UserError('no images to score')

    def again():
        yield first
        yield from stream
    return first[0], again()


def logits_of(net, batches, batch_size, ctx):
    """(logits, labels) of every image as float32 / int64 arrays, in order.

    A short last batch is padded to the full batch: the static graph keeps its shape.
    """
    all_logits, all_labels = [], []
    for data, label in batches:
        n = data.shape[0]
        data = padded(data, batch_size)
        all_logits.append(mean_prediction(net(data.as_in_context(ctx))).asnumpy()[:n])
        all_labels.append(label.asnumpy().astype(np.int64))
    return np.concatenate(all_logits), np.concatenate(all_labels)


def class_names(data_dir, num_classes):
    """The class names dataset.json gives beside the records, else the labels as text."""
    from data.meta import read_meta
    names = (read_meta(data_dir) or {}).get('classes') or []
    if len(names) != num_classes:
        return [str(label) for label in range(num_classes)]
    return [str(name) for name in names]


def list_images(paths):
    """Image files named directly, or inside the named folders (sorted), in order."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            inside = sorted(os.path.join(path, name) for name in os.listdir(path)
                            if name.lower().endswith(IMAGE_EXTENSIONS))
            if not inside:
                raise UserError('%s holds no images (%s)' % (path, ', '.join(IMAGE_EXTENSIONS)))
            found += inside
        elif os.path.exists(path):   # read_image refuses what is no regular file
            found.append(path)
        else:
            raise UserError('%s not found' % path)
    return found


def _square(image, side):
    """Shorter side to `side` (area when shrinking), then the centre square."""
    height, width = image.shape[:2]
    if (height, width) != (side, side):
        scale = side / min(height, width)
        size = (max(side, round(width * scale)), max(side, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1
                           else cv2.INTER_LINEAR)
        top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
        image = image[top:top + side, left:left + side]
    return image


def prepared_image(path, dataset):
    """The bytes the data set's preparation would store for the image file `path`."""
    if dataset == 'imagenet':  # short side 480, JPEG quality 95, as data.prepare
        result = encode_jpeg_file(path)
        if result is None:
            raise UserError('cannot read %s as an image' % path)
        return result[0]
    spec = DATASETS[dataset]
    mode = cv2.IMREAD_GRAYSCALE if spec['channels'] == 1 else cv2.IMREAD_COLOR
    try:
        image = read_image(path, mode, spec['data_shape'])
    except OSError:
        image = None
    if image is None:
        raise UserError('cannot read %s as an image' % path)
    ok, buf = cv2.imencode('.png', np.ascontiguousarray(_square(image, spec['data_shape'])))
    if not ok:
        raise UserError('cannot encode %s as PNG' % path)
    return buf.tobytes()


def write_image_records(paths, dataset, rec_path):
    """`rec_path` (+ .idx) holding the prepared images, labelled 0."""
    idx_path = os.path.splitext(rec_path)[0] + '.idx'
    writer = mx.recordio.MXIndexedRecordIO(idx_path, rec_path, 'w')
    try:
        for key, path in enumerate(paths):
            header = mx.recordio.IRHeader(0, 0.0, key, 0)
            writer.write_idx(key, mx.recordio.pack(header, prepared_image(path, dataset)))
    finally:
        writer.close()
    return rec_path
