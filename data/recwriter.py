"""Writing a data set's record files: staged, encoded in worker processes, moved in at the end.

Every file is written under `<out>/.partial/` and renamed into `<out>/` only when all of them
are complete; the JSON that marks a data set as finished is written last. An interrupted or
failed run therefore never leaves files that look finished.
"""
import collections
import concurrent.futures
import errno
import json
import multiprocessing
import os
import shutil
import signal

import mxnet as mx
import numpy as np
from tqdm import tqdm

from common.errors import UserError
from common.pidlock import Busy, PidLock
from data.encode import encode_png_chunk
from data.meta import META_NAME

_CHUNK = 2000
LOCK_NAME = '.prepare.lock'   # held while a preparation writes into the folder


def default_workers():
    """Encoding processes: one per core but the one this process uses to write."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    return max(1, cores - 1)


def finished_meta(out_dir):
    """The JSON of a finished data set in `out_dir` (there, and every record file it lists
    at its recorded size, with its index), else None."""
    path = os.path.join(out_dir, META_NAME)
    try:
        with open(path) as f:
            meta = json.load(f)
        finished = all(os.path.getsize(os.path.join(out_dir, name)) == entry['bytes']
                       and os.path.isfile(os.path.join(out_dir, entry['index']))
                       for name, entry in meta['files'].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return meta if finished else None


def is_finished(out_dir):
    return finished_meta(out_dir) is not None


class Staging:
    """A folder for the files of one run; `commit` moves them in, leaving it aborts.

    One preparation at a time per folder (a PidLock on `.prepare.lock`): a second one would
    remove the first one's staged files and write into the same ones.
    """

    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.dir = os.path.join(out_dir, '.partial')
        self.lock = PidLock(os.path.join(out_dir, LOCK_NAME), remove=True)

    def __enter__(self):
        try:
            os.makedirs(self.out_dir, exist_ok=True)
            self.lock.acquire()
        except Busy as busy:
            raise UserError('another data.prepare (pid %s) is writing records in %s; wait '
                            'for it to finish, or choose another --out-dir'
                            % (busy.holder, self.out_dir)) from None
        except OSError as err:
            raise UserError('cannot write to %s (%s)' % (self.out_dir, err.strerror)) from None
        try:
            shutil.rmtree(self.dir, ignore_errors=True)  # left by a killed run
            os.makedirs(self.dir)
        except OSError as err:
            self.lock.release()
            raise UserError('cannot write to %s (%s)' % (self.out_dir, err.strerror)) from None
        return self

    def path(self, name):
        return os.path.join(self.dir, name)

    def commit(self, meta):
        """Move every staged file into place, then write the JSON that says it is finished."""
        final_meta = os.path.join(self.out_dir, META_NAME)
        if os.path.exists(final_meta):
            os.remove(final_meta)
        for name in sorted(os.listdir(self.dir)):
            os.replace(self.path(name), os.path.join(self.out_dir, name))
        with open(self.path(META_NAME), 'w') as f:
            json.dump(meta, f, indent=1)
            f.write('\n')
        os.replace(self.path(META_NAME), final_meta)

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)
        self.lock.release()


class ChannelStats:
    """Per-channel mean and std of 0-255 pixels, accumulated in float64."""

    def __init__(self, channels):
        self.sums = np.zeros(channels)
        self.squares = np.zeros(channels)
        self.pixels = 0

    def add(self, sums, squares, pixels):
        self.sums += sums
        self.squares += squares
        self.pixels += pixels

    def result(self):
        mean = self.sums / self.pixels
        std = np.sqrt(np.maximum(self.squares / self.pixels - mean ** 2, 0))
        return [round(float(m), 3) for m in mean], [round(float(s), 3) for s in std]


def worker_pool(workers):
    """Encoding processes. Spawned, not forked: a forked child can hang on thread pools that
    OpenCV or MXNet started in the parent. An executor, not a Pool: a worker that dies
    breaks the run with an error instead of hanging it.

    Ctrl-C reaches the whole process group, but only this process should answer it (stop
    the workers, remove the staged files, say 'interrupted'), so every worker is started
    here, at once, while SIGINT is ignored: a child inherits that from its birth on."""
    pool = concurrent.futures.ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context('spawn'))
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for _ in range(workers):  # each submit to a pool not yet full starts one worker
            pool.submit(int)
    finally:
        signal.signal(signal.SIGINT, previous)
    return pool


def ordered_map(pool, function, tasks, in_flight):
    """Results of `function` over `tasks` in order, from `pool` (or here when None), with at
    most `in_flight` tasks queued so that the tasks are not all held in memory at once."""
    if pool is None:
        yield from map(function, tasks)
        return
    pending = collections.deque()
    for task in tasks:
        pending.append(pool.submit(function, task))
        if len(pending) >= in_flight:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


class RecordSink:
    """One .rec/.idx pair being written; `summary()` is its entry in the JSON."""

    def __init__(self, staging, rec_name):
        self.rec_name = rec_name
        self.idx_name = os.path.splitext(rec_name)[0] + '.idx'
        self._rec_path = staging.path(rec_name)
        self._writer = mx.recordio.MXIndexedRecordIO(staging.path(self.idx_name),
                                                     self._rec_path, 'w')
        self.count = 0
        self.label_min, self.label_max = float('inf'), float('-inf')

    def write(self, record, label):
        try:
            self._writer.write_idx(self.count, record)
        except mx.base.MXNetError as err:   # dmlc's fwrite check: a full disk, mostly
            raise OSError(errno.EIO, 'writing %s failed after %d records (%s)' % (
                self._rec_path, self.count, _mxnet_reason(err)))
        self.count += 1
        self.label_min = min(self.label_min, float(label))
        self.label_max = max(self.label_max, float(label))

    def close(self):
        self._writer.close()

    def summary(self):
        return dict(count=self.count, bytes=os.path.getsize(self._rec_path),
                    index=self.idx_name, label_min=self.label_min, label_max=self.label_max)


def write_image_array(staging, rec_name, images, labels, order=None, workers=None, desc=None):
    """Write uint8 RGB (N, H, W, 3) or grey (N, H, W) images as PNG records in `order`.

    Record i holds images[order[i]]; its header's id is i and id2 the source index.
    Returns (the file's JSON entry, per-channel mean, per-channel std).
    """
    count = len(images)
    order = np.arange(count) if order is None else np.asarray(order)
    channels = images.shape[3] if images.ndim == 4 else 1
    stats = ChannelStats(channels)
    sink = RecordSink(staging, rec_name)

    def chunks():
        for start in range(0, count, _CHUNK):
            yield images[order[start:start + _CHUNK]]

    workers = workers or default_workers()
    pool = worker_pool(workers) if workers > 1 else None
    try:
        encoded = ordered_map(pool, encode_png_chunk, chunks(), in_flight=2 * workers)
        with tqdm(total=count, unit='img', desc=desc or rec_name) as bar:
            for pngs, sums in encoded:
                for png in pngs:
                    key = sink.count
                    label = labels[order[key]]
                    header = mx.recordio.IRHeader(0, float(label), key, int(order[key]))
                    sink.write(mx.recordio.pack(header, png), label)
                stats.add(*sums)
                bar.update(len(pngs))
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
        sink.close()
    mean, std = stats.result()
    return sink.summary(), mean, std


def _mxnet_reason(err):
    """The informative line of an MXNet error: its last (the first ones are stack frames)."""
    lines = [line for line in str(err).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(err).__name__
