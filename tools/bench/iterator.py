"""Images per second of the training iterator for 32x32 images, augmentation type 1.

    python tools/bench_iterator.py [--rec data/cifar10/train.rec] [--batch-size 64]

Without --rec it writes a synthetic CIFAR-sized record file to a temporary folder: photo-like
PNGs by default (slower to decode), or pure noise with --noise (stored almost uncompressed).
It times three readers over the same records, each for whole epochs:
  raw ImageRecordIter     decode + normalise only, batches left where MXNet puts them
  wrapper, aug type 0     data.iterators without pad/crop/mirror (batches copied to cpu)
  wrapper, aug type 1     data.iterators with the mean-colour pad, random crop and mirror
"""
import argparse
import os
import shutil
import tempfile
import time

import numpy as np

from data import synthetic
from data.datasets import DATASETS
from data.iterators import default_threads, get_iterators, record_iter
from data.recordfile import index_path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rec', help='a 32x32 train.rec with its .idx (default: synthetic)')
    parser.add_argument('--count', type=int, default=20000,
                        help='synthetic images to write (default %(default)s)')
    parser.add_argument('--noise', action='store_true',
                        help='synthetic images of pure noise instead of photo-like ones')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--threads', type=int, default=None,
                        help='decoding threads (default: the iterators\' default)')
    parser.add_argument('--epochs', type=int, default=2, help='epochs timed per reader')
    return parser.parse_args(argv)


def images_per_second(batches, epochs):
    """Images per second over `epochs` passes of `batches()` (a new pass each call)."""
    images, start = 0, time.perf_counter()
    for _ in range(epochs):
        for data in batches():
            images += data.shape[0]
    data.wait_to_read()
    return images / (time.perf_counter() - start)


def main(argv=None):
    args = parse_args(argv)
    threads = args.threads or default_threads('cifar10')
    temp = None
    if args.rec:
        rec = args.rec
    else:
        temp = tempfile.mkdtemp(prefix='bench_iterator_')
        images = synthetic.smooth_images(args.count, 32, 32) if not args.noise else \
            np.random.default_rng(0).integers(0, 256, (args.count, 32, 32, 3), dtype=np.uint8)
        labels = np.arange(args.count) % 10
        synthetic.write_record_dataset(temp, 'cifar10', (images, labels),
                                       (images[:100], labels[:100]), workers=1)
        rec = os.path.join(temp, 'train.rec')
    try:
        spec = DATASETS['cifar10']
        normalise = {}
        for channel, mean, std in zip('rgb', spec['mean'], spec['std']):
            normalise['mean_' + channel], normalise['std_' + channel] = mean, std

        def raw():
            reader = record_iter(path_imgrec=rec, path_imgidx=index_path(rec),
                                 data_shape=(3, 32, 32), batch_size=args.batch_size,
                                 shuffle=True, preprocess_threads=threads, verbose=False,
                                 **normalise)
            return (batch.data[0] for batch in reader)

        def wrapper(aug_type):
            train, _ = get_iterators(
                'cifar10', os.path.dirname(rec), batch_size=args.batch_size,
                test_batch_size=args.batch_size, aug_type=aug_type,
                train_rec=os.path.basename(rec), val_rec=os.path.basename(rec),
                threads=threads)
            return lambda: (data for data, _ in train)

        engine = os.environ.get('MXNET_ENGINE_TYPE', 'ThreadedEnginePerDevice')
        print('%s: batch %d, %d decoding thread(s), %d cores, %s engine, %d epochs each'
              % (rec, args.batch_size, threads, os.cpu_count(), engine, args.epochs))
        for name, batches in (('raw ImageRecordIter', raw), ('wrapper, aug type 0', wrapper(0)),
                              ('wrapper, aug type 1', wrapper(1))):
            print('%-22s %8.0f img/s' % (name, images_per_second(batches, args.epochs)))
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
    return 0

