"""The training and validation iterators over record files, shared by both training scripts.

    train_it, val_it = get_iterators(dataset='cifar10', data_dir='data/cifar10', ...)
    for data, label in train_it: ...   # float32 NDArrays on the CPU, (N, C, H, W) and (N,)

MXNet's ImageRecordIter decodes and normalises ((pixel - mean) / std per channel). For the
small data sets the augmentation (pad, crop, mirror) runs here on the normalised batch so the
padding can carry each channel's mean colour, which stock MXNet cannot. ImageNet's scale,
aspect-ratio and HSL jitter are ImageRecordIter's own options.

Training: shuffled, full batches (the last one topped up from the start of the same shuffle,
as the original's round_batch), order and augmentation a function of (seed, epoch, part)
only. Validation: in order, every record of the part once, the last batch short.
"""
import math
import os
import re

import mxnet as mx
import numpy as np

from common.errors import UserError
from data.augment import CropMirror, centre_crop, nearest_grey, padding_fill
from data.datasets import DATASETS
from data.meta import META_NAME, check_describes, read_meta
from data.recordset import RecordFile

# The original's aug type 1 pads every side by 4 pixels.
PAD = 4

# The original's ImageNet options (its train_imagenet.py; docs/training.md): a 480-pixel short
# side scaled by 0.533 becomes 255.84, which min_img_size lifts to a 256-pixel canvas. Its
# warp fills borders with the rounded mean 123/113/99; 1.9.1 has one fill value for all
# channels, so the nearest grey (112) stands in, not 1.9.1's default white. inter_method 9
# picks area for shrinking, which OpenCV's warpAffine (both then and now) does as bilinear.
IMAGENET_COMMON = dict(min_random_scale=0.533, min_img_size=256, inter_method=9,
                       fill_value=nearest_grey(DATASETS['imagenet']['mean'],
                                               DATASETS['imagenet']['std']))
# Training: short side 256..480, aspect jitter, random 224 crop, mirror, HSL jitter.
IMAGENET_TRAIN_AUGMENT = dict(IMAGENET_COMMON, rand_crop=True, rand_mirror=True,
                              max_random_scale=1.0, max_aspect_ratio=0.25,
                              random_h=36, random_s=50, random_l=50)
# Aug type 0 drops only the jitter: the original still cropped at random and mirrored.
IMAGENET_TRAIN_NO_JITTER = dict(IMAGENET_COMMON, rand_crop=True, rand_mirror=True,
                                max_random_scale=0.533)
# Validation: short side 256, centre crop.
IMAGENET_VAL_AUGMENT = dict(IMAGENET_COMMON, max_random_scale=0.533)


def _record_iter_options():
    """The option names ImageRecordIter documents: the only ones it really reads."""
    doc = mx.io.ImageRecordIter.__doc__
    doc = doc.decode() if isinstance(doc, bytes) else doc
    return frozenset(re.findall(r'^(\w+) : ', doc, re.MULTILINE))


RECORD_ITER_OPTIONS = _record_iter_options()


def record_iter(**options):
    """mx.io.ImageRecordIter, but an option it does not know is an error, not a silent no-op."""
    unknown = sorted(set(options) - RECORD_ITER_OPTIONS)
    if unknown:
        raise TypeError('ImageRecordIter has no option %s' % ', '.join(unknown))
    return mx.io.ImageRecordIter(**options)


def default_threads(dataset):
    """Decoding threads: small images need one or two; ImageNet JPEGs want every spare core."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    if dataset == 'imagenet':
        return max(1, min(cores - 1, 16))
    return max(1, min(2, cores // 2))


def run_seed(seed, num_parts, part_index, epoch=None):
    """A seed drawn from the run's seed and part (and epoch): independent streams for each."""
    key = [seed, num_parts, part_index] + ([] if epoch is None else [epoch])
    return int(np.random.SeedSequence(key).generate_state(1)[0] % 2 ** 31)


class _Batches:
    """What both iterators share: one reader over the part, kept for the object's life.

    A reader is made once and `reset()` between passes: each new ImageRecordIter keeps about
    prefetch_buffer batches of memory when it goes (several hundred MB a time for ImageNet).
    """

    def __init__(self, record, reader_options, batch_size, num_parts, part_index):
        self.record = record
        self.batch_size = batch_size
        self.num_parts, self.part_index = num_parts, part_index
        self.num_examples = record.part_size(num_parts, part_index)
        self._reader_options = dict(reader_options, path_imgrec=record.rec_path,
                                    path_imgidx=record.idx_path, batch_size=batch_size,
                                    num_parts=num_parts, part_index=part_index,
                                    round_batch=False)
        self._reader = None
        self._pass = 0          # which pass (shuffle) the reader stands at
        self._fresh = False     # and whether none of it was read yet
        self._generation = 0    # a newer `for` loop stops an older one still open

    def _reading(self, step, *args, **kwargs):
        """step(...), with a record MXNet cannot read named in one line, not a traceback."""
        try:
            return step(*args, **kwargs)
        except mx.base.MXNetError as err:
            raise self.record.read_error(err, self.num_parts, self.part_index) from None

    def _new_reader(self, **options):
        self._reader = self._reading(record_iter, **dict(self._reader_options, **options))
        self._pass, self._fresh = 0, True

    def _advance_to(self, index):
        """Stand the reader at the start of pass `index` (it must not be behind it)."""
        while self._pass < index or not self._fresh:
            self._reading(self._reader.reset)
            self._pass, self._fresh = self._pass + 1, True

    def _reader_batches(self):
        while True:
            try:
                yield self._reading(next, self._reader)
            except StopIteration:
                return

    def _records(self):
        """The records of the reader's current pass, in batches copied off MXNet's buffers,
        without the stale records a short last batch carries (reported as pad 0)."""
        self._generation += 1
        generation, self._fresh = self._generation, False
        left = self.num_examples
        for batch in self._reader_batches():
            if generation != self._generation:
                raise RuntimeError('a newer pass over %s started; finish or drop a `for` '
                                   'loop before starting the next' % self.record.rec_path)
            if left == 0:
                raise RuntimeError('%s: MXNet read more records for part %d/%d than its '
                                   'index gives it' % (self.record.rec_path, self.part_index,
                                                       self.num_parts))
            take = min(left, self.batch_size)
            left -= take
            yield (batch.data[0][:take].as_in_context(mx.cpu()),
                   batch.label[0][:take].as_in_context(mx.cpu()))
        if left:
            raise RuntimeError('%s: MXNet read %d records fewer than the index gives part %d/%d'
                               % (self.record.rec_path, left, self.part_index, self.num_parts))


class TrainIterator(_Batches):
    """Shuffled, augmented, full batches; `len()` batches per pass, the same on every part.

    Epoch e reads the part in the e-th shuffle of a reader seeded by (seed, part), then tops
    up the last batch with the first records of the same shuffle, as round_batch did. The
    augmentation draws from a generator seeded by (seed, epoch, part). So a run resumed at
    epoch k with set_epoch(k) sees exactly what an uninterrupted run sees. (ImageNet's jitter
    runs inside MXNet, seeded when the reader is made: exact for a given start epoch.)
    """

    def __init__(self, record, reader_options, batch_size, num_parts, part_index, seed,
                 augment=None, reader_augment=None):
        super().__init__(record, reader_options, batch_size, num_parts, part_index)
        self.seed = seed
        self._augment = augment
        self._reader_augment = reader_augment or {}
        # Every part counts the largest part's batches, so dist_sync workers stay in step.
        largest_part = -(-record.count // num_parts)
        self._num_batches = math.ceil(largest_part / batch_size)
        self._epoch = 0

    def __len__(self):
        return self._num_batches

    def set_epoch(self, epoch):
        """The next pass shows epoch `epoch`: resuming there reproduces an uninterrupted run."""
        self._epoch = int(epoch)

    def __iter__(self):
        epoch = self._epoch
        self._epoch += 1
        return self._epoch_batches(epoch)

    def _stand_at(self, epoch):
        if self._reader is None or epoch < self._pass or (epoch == self._pass
                                                          and not self._fresh):
            options = dict(self._reader_augment, shuffle=True,
                           seed=run_seed(self.seed, self.num_parts, self.part_index))
            if self._reader_augment:
                options['seed_aug'] = run_seed(self.seed, self.num_parts, self.part_index,
                                               epoch)
            self._new_reader(**options)
        self._advance_to(epoch)

    def _epoch_stream(self):
        """This epoch's records, then the first ones again to fill the last batch."""
        extra = self._num_batches * self.batch_size - self.num_examples
        head = None
        for data, label in self._records():
            if head is None and extra:
                head = data[:extra], label[:extra]  # extra <= batch size <= part size
            yield data, label
        if extra:
            yield head

    def _epoch_batches(self, epoch):
        self._stand_at(epoch)
        rng = np.random.default_rng(run_seed(self.seed, self.num_parts, self.part_index, epoch))
        size = self.batch_size
        carry = None
        for data, label in self._epoch_stream():
            if carry is not None:
                data = mx.nd.concat(carry[0], data, dim=0)
                label = mx.nd.concat(carry[1], label, dim=0)
            while data.shape[0] >= size:
                batch, label_batch = data[:size], label[:size]
                if self._augment is not None:
                    batch = mx.nd.array(self._augment(batch.asnumpy(), rng), ctx=mx.cpu())
                yield batch, label_batch
                data, label = data[size:], label[size:]
            carry = (data, label) if data.shape[0] else None
        assert carry is None, 'the epoch did not end on a full batch'


class ValIterator(_Batches):
    """Every record of the part exactly once per pass, in order, the last batch short."""

    def __init__(self, record, reader_options, batch_size, num_parts, part_index,
                 crop_size=None, reader_augment=None):
        super().__init__(record, reader_options, batch_size, num_parts, part_index)
        self._crop_size = crop_size
        self._reader_augment = reader_augment or {}

    def __len__(self):
        return math.ceil(self.num_examples / self.batch_size)

    def set_epoch(self, epoch):
        """Validation is the same every epoch; kept so both iterators answer alike."""

    def __iter__(self):
        if self._reader is None:
            self._new_reader(shuffle=False, **self._reader_augment)
        self._advance_to(self._pass)
        return self._pass_batches()

    def _pass_batches(self):
        for data, label in self._records():
            if self._crop_size:
                data = mx.nd.array(centre_crop(data.asnumpy(), self._crop_size), ctx=mx.cpu())
            yield data, label


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise UserError('%s must be a positive integer, not %r' % (name, value))
    return int(value)


def _normalisation(mean, std):
    """ImageRecordIter's per-channel mean/std options (a grey image reads the red ones)."""
    options = {}
    for channel, m, s in zip('rgb', mean, std):
        options['mean_' + channel], options['std_' + channel] = float(m), float(s)
    return options


def _expected_shape(dataset, data_dir, meta):
    """(channels, height, width) every record must decode to (None for ImageNet's varying
    sizes), and where that comes from; the JSON must describe this data set."""
    spec = DATASETS[dataset]
    named = (meta or {}).get('dataset')
    if named and named != dataset:
        raise UserError('%s holds %s records (its %s says so), not %s; pass --dataset %s or '
                        'the right --data-dir' % (data_dir, named, META_NAME, dataset, named))
    if dataset == 'imagenet':
        return None, None
    if meta and meta.get('image_shape'):
        shape, source = tuple(meta['image_shape']), 'its %s' % META_NAME
    else:
        shape = (spec['channels'], spec['data_shape'], spec['data_shape'])
        source = '%s (no %s says otherwise)' % (dataset, META_NAME)
    channels, height, width = shape
    if channels != len(spec['mean']) or height != width:
        raise UserError('%s holds %dx%dx%d images (%s); %s needs square images with %d '
                        'channels' % (data_dir, channels, height, width, source, dataset,
                                      len(spec['mean'])))
    return shape, source


def _open_records(data_dir, name, num_classes, image_shape, shape_from, meta):
    """A checked record file: every record's image in the set's encoding (its JSON's, else
    PNG for the small sets and JPEG for ImageNet, as data.prepare writes them)."""
    encoding = (meta or {}).get('encoding') or ('jpeg' if image_shape is None else 'png')
    record = RecordFile(os.path.join(data_dir, name), num_classes, image_shape, shape_from,
                        encoding)
    check_describes(data_dir, meta, record)
    return record


def get_iterators(dataset, data_dir, batch_size=64, test_batch_size=400, aug_type=None,
                  data_shape=None, train_rec=None, val_rec=None, num_parts=1, part_index=0,
                  seed=0, threads=None, num_classes=None):
    """(train_it, val_it) over `data_dir`/`train_rec` and `val_rec` (defaults: the table's).

    aug_type: 0 none, 1 pad 4 + random crop + mirror, 2 random crop + mirror (default: the
    data set's); ImageNet: 0 random crop + mirror at one scale, 1 and 2 add scale, aspect
    and HSL jitter. data_shape: the square side the network sees (default: the data set's).
    threads: decoding threads (default: default_threads(dataset)).
    """
    if dataset not in DATASETS:
        raise UserError('unknown data set %r; choose one of %s'
                        % (dataset, ', '.join(sorted(DATASETS))))
    spec = DATASETS[dataset]
    batch_size = _positive_int('batch size', batch_size)
    test_batch_size = _positive_int('test batch size', test_batch_size)
    num_parts = _positive_int('number of parts', num_parts)
    if not 0 <= part_index < num_parts:
        raise UserError('part index %r is outside 0..%d' % (part_index, num_parts - 1))
    aug_type = spec['aug_type'] if aug_type is None else aug_type
    if aug_type not in (0, 1, 2):
        raise UserError('augmentation type must be 0, 1 or 2, not %r' % (aug_type,))
    size = _positive_int('data shape', spec['data_shape'] if data_shape is None else data_shape)
    threads = _positive_int('threads', default_threads(dataset) if threads is None else threads)
    num_classes = _positive_int('number of classes', spec['num_classes'] if num_classes is None
                                else num_classes)

    train, val, image_shape = _open_both(dataset, data_dir, train_rec or spec['train_rec'],
                                         val_rec or spec['val_rec'], num_classes)
    parts = dict(num_parts=num_parts, part_index=part_index)
    _check_parts(train, val, batch_size, **parts)
    options = dict(_normalisation(spec['mean'], spec['std']), preprocess_threads=threads,
                   verbose=False)
    if dataset == 'imagenet':
        options['data_shape'] = (3, size, size)
        train_augment = IMAGENET_TRAIN_AUGMENT if aug_type else IMAGENET_TRAIN_NO_JITTER
        return (TrainIterator(train, options, batch_size, seed=seed,
                              reader_augment=train_augment, **parts),
                ValIterator(val, options, test_batch_size,
                            reader_augment=IMAGENET_VAL_AUGMENT, **parts))
    return _small_image_iterators(dataset, train, val, image_shape, size, aug_type, options,
                                  batch_size, test_batch_size, seed, parts)


def _open_both(dataset, data_dir, train_name, val_name, num_classes):
    """(train records, test records, the images' expected shape), checked at open time."""
    if not os.path.isdir(data_dir):
        raise UserError('data folder %s not found; run `python -m data.prepare %s` or pass '
                        'the right --data-dir' % (data_dir, dataset))
    meta = read_meta(data_dir)
    image_shape, shape_from = _expected_shape(dataset, data_dir, meta)
    train, val = (_open_records(data_dir, name, num_classes, image_shape, shape_from, meta)
                  for name in (train_name, val_name))
    return train, val, image_shape


def _check_parts(train, val, batch_size, num_parts, part_index):
    for record in (train, val):
        if record.part_size(num_parts, part_index) == 0:
            raise UserError('%s has %d records: too few for %d parts'
                            % (record.rec_path, record.count, num_parts))
    # An epoch's last batch is topped up from the first batch of the same shuffle.
    if train.part_size(num_parts, part_index) < batch_size:
        raise UserError('%s gives part %d of %d only %d records, fewer than the batch size %d; '
                        'use a smaller batch size or fewer workers'
                        % (train.rec_path, part_index, num_parts,
                           train.part_size(num_parts, part_index), batch_size))


def _small_image_iterators(dataset, train, val, image_shape, size, aug_type, options,
                           batch_size, test_batch_size, seed, parts):
    """CIFAR, SVHN, Fashion-MNIST: the augmentation runs on whole batches in Python."""
    spec = DATASETS[dataset]
    channels, height, width = image_shape
    if size > height:
        raise UserError('data shape %d is larger than the %dx%d images of %s'
                        % (size, height, width, dataset))
    options['data_shape'] = (channels, height, height)
    augment = None
    if aug_type:
        augment = CropMirror(height, size, PAD if aug_type == 1 else 0, mirror=True,
                             fill=padding_fill(spec['mean'], spec['std']))
    elif size < height:
        augment = lambda batch, rng: centre_crop(batch, size)  # noqa: E731
    return (TrainIterator(train, options, batch_size, seed=seed, augment=augment, **parts),
            ValIterator(val, options, test_batch_size, crop_size=size if size < height else None,
                        **parts))
