"""ImageNet: a class-folder tree (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG) to record files.

As the original expected: every image's short side resized to 480, JPEG quality 95, written
by several processes to imagenet_train.rec and imagenet_val.rec, with list files in the format
mxnet's tools/im2rec.py writes (`key<TAB>label<TAB>relative path`). Labels are the sorted
training wnids' positions. The training list is shuffled once with a fixed seed (as im2rec
does) so that every part of a sharded run sees every class; validation stays sorted.
"""
import os
import sys

import mxnet as mx
import numpy as np
from tqdm import tqdm

from common.errors import UserError
from data.encode import JPEG_QUALITY, SHORT_SIDE, encode_jpeg_file
from data.recwriter import (ChannelStats, RecordSink, Staging, default_workers, ordered_map,
                            worker_pool)

EXTENSIONS = ('.jpeg', '.jpg', '.png')
SHUFFLE_SEED = 100
SPLITS = (('train', 'imagenet_train'), ('val', 'imagenet_val'))


def list_split(root, split, classes=None):
    """[(path relative to root/split, label)] of one split, and the class list (wnids)."""
    folder = os.path.join(root, split)
    if not os.path.isdir(folder):
        raise UserError('%s not found; --source must hold train/<wnid>/ and val/<wnid>/ '
                        'folders of images' % folder)
    wnids = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    if classes is None:
        classes = wnids
    unknown = sorted(set(wnids) - set(classes))
    if unknown:
        raise UserError('%s has class folder %s that train/ lacks' % (folder, unknown[0]))
    label_of = {wnid: label for label, wnid in enumerate(classes)}
    items = []
    for wnid in wnids:
        for name in sorted(os.listdir(os.path.join(folder, wnid))):
            if name.lower().endswith(EXTENSIONS):
                items.append((wnid + '/' + name, label_of[wnid]))
    if not items:
        raise UserError('%s holds no images (%s)' % (folder, ', '.join(EXTENSIONS)))
    return items, classes


def write_split(staging, root, split, stem, items, pool, in_flight, stats=None):
    """Write `stem`.rec/.idx/.lst from `items`; returns (JSON entry, skipped paths)."""
    sink = RecordSink(staging, stem + '.rec')
    skipped = []
    paths = [os.path.join(root, split, rel) for rel, _ in items]
    with open(staging.path(stem + '.lst'), 'w') as lst, \
            tqdm(total=len(items), unit='img', desc='imagenet ' + split) as bar:
        results = ordered_map(pool, encode_jpeg_file, paths, in_flight)
        for (rel, label), result in zip(items, results):
            bar.update()
            if result is None:
                skipped.append(os.path.join(split, rel))
                continue
            jpeg, sums = result
            key = sink.count
            sink.write(mx.recordio.pack(mx.recordio.IRHeader(0, float(label), key, 0), jpeg),
                       label)
            lst.write('%d\t%f\t%s\n' % (key, label, rel))
            if stats is not None:
                stats.add(*sums)
    sink.close()
    if sink.count == 0:
        raise UserError('no image under %s could be read' % os.path.join(root, split))
    return sink.summary(), skipped


def convert(source, out_dir, workers=None):
    """Write imagenet_train/val .rec/.idx/.lst and dataset.json to `out_dir`; returns the JSON."""
    if source is None:
        raise UserError('ImageNet cannot be downloaded without an account: pass the folder '
                        'holding train/<wnid>/*.JPEG and val/<wnid>/*.JPEG as --source')
    train_items, classes = list_split(source, 'train')
    val_items, _ = list_split(source, 'val', classes)
    order = np.random.default_rng(SHUFFLE_SEED).permutation(len(train_items))
    train_items = [train_items[i] for i in order]
    stats = ChannelStats(3)
    entries, skipped = {}, []
    with Staging(out_dir) as staging:
        workers = workers or default_workers()
        pool = worker_pool(workers) if workers > 1 else None
        try:
            for (split, stem), items in zip(SPLITS, (train_items, val_items)):
                entry, missed = write_split(staging, source, split, stem, items, pool,
                                            16 * workers, stats if split == 'train' else None)
                entries[stem + '.rec'] = entry
                skipped += missed
        finally:
            if pool:
                pool.shutdown(cancel_futures=True)
        mean, std = stats.result()
        meta = dict(dataset='imagenet', num_classes=len(classes), classes=classes,
                    image_shape=None, short_side=SHORT_SIDE, jpeg_quality=JPEG_QUALITY,
                    mean=mean, std=std, encoding='jpeg',
                    counts=dict(train=entries['imagenet_train.rec']['count'],
                                val=entries['imagenet_val.rec']['count']),
                    files=entries, train_order='shuffled with numpy default_rng(%d)'
                    % SHUFFLE_SEED, skipped=skipped)
        staging.commit(meta)
    if skipped:
        print('warning: skipped %d unreadable images (listed in dataset.json), e.g. %s'
              % (len(skipped), skipped[0]), file=sys.stderr)
    return meta
