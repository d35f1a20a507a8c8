"""Cheap checks and facts about an indexed record file (.rec + .idx), read before MXNet opens it.

MXNet's C++ reader aborts or silently misreads on a missing index, a cut-short file or an
index that belongs to another file, so every such case is caught here first and turned into
a one-line UserError. Everything here reads only the index and record headers.
"""
import json
import os
import struct

import numpy as np

from common.errors import UserError

RECORD_MAGIC = 0xced7230a
# RecordIO header: magic, then (continue flag << 29 | payload length).
_RECORD_HEAD = struct.Struct('<II')
# Image-record header inside the payload: flag, label, id, id2 (mxnet.recordio.IRHeader).
_IMAGE_HEAD = struct.Struct('<IfQQ')
META_NAME = 'dataset.json'


def index_path(rec_path):
    return os.path.splitext(rec_path)[0] + '.idx'


def read_offsets(rec_path):
    """The record offsets of `rec_path`, ascending, after checking the pair of files agree."""
    if not os.path.isfile(rec_path):
        raise UserError('record file %s not found; run `python -m data.prepare <dataset>` '
                        'or pass the right --data-dir' % rec_path)
    idx_path = index_path(rec_path)
    if not os.path.isfile(idx_path):
        raise UserError('%s has no index %s; rebuild both with `python -m data.prepare '
                        '<dataset> --force` (or im2rec with its .idx)' % (rec_path, idx_path))
    with open(idx_path, 'rb') as f:
        text = f.read()
    fields = text.split()
    lines = sum(1 for line in text.splitlines() if line.strip())
    if not fields:
        raise UserError('%s holds no records (its index %s is empty); rebuild it'
                        % (rec_path, idx_path))
    try:
        table = np.array(fields).astype(np.int64).reshape(-1, 2)
    except ValueError:
        table = None
    if table is None or len(fields) != 2 * lines:
        raise UserError('index %s is not "key<TAB>offset" lines; rebuild it' % idx_path)
    offsets = np.sort(table[:, 1])
    size = os.path.getsize(rec_path)
    with open(rec_path, 'rb') as f:
        end = _record_end(f, offsets[-1], rec_path, size)
    if end > size or offsets[-1] >= size:
        raise UserError('%s is cut short (%d bytes, its index needs %d); it was not written '
                        'to the end: rebuild it with --force' % (rec_path, size, end))
    if end != size:
        raise UserError('%s has %d bytes after its last indexed record: the index %s belongs '
                        'to another file; rebuild both' % (rec_path, size - end, idx_path))
    return offsets


def _record_end(f, offset, rec_path, size):
    head = os.pread(f.fileno(), _RECORD_HEAD.size, int(offset))
    if len(head) < _RECORD_HEAD.size:
        return offset + _RECORD_HEAD.size
    magic, lrec = _RECORD_HEAD.unpack(head)
    if magic != RECORD_MAGIC:
        raise UserError('%s has no record at offset %d: its index does not belong to it; '
                        'rebuild both' % (rec_path, offset))
    length = lrec & ((1 << 29) - 1)
    return offset + _RECORD_HEAD.size + (length + 3) // 4 * 4


def scan_labels(rec_path, offsets):
    """Every record's label, read from the image headers at the indexed offsets."""
    labels = np.empty(len(offsets), np.float32)
    size = _RECORD_HEAD.size + _IMAGE_HEAD.size
    with open(rec_path, 'rb') as f:
        fd = f.fileno()
        for i, offset in enumerate(offsets):
            head = os.pread(fd, size, int(offset))
            if len(head) < size:
                raise UserError('%s is cut short at record %d; rebuild it' % (rec_path, i))
            magic, _ = _RECORD_HEAD.unpack_from(head)
            if magic != RECORD_MAGIC:
                raise UserError('%s has no record at offset %d: its index does not belong '
                                'to it; rebuild both' % (rec_path, offset))
            labels[i] = _IMAGE_HEAD.unpack_from(head, _RECORD_HEAD.size)[1]
    return labels


def part_range(count, num_parts, part_index):
    """Records [begin, end) that MXNet's indexed reader gives to one part (checked in tests)."""
    step = -(-count // num_parts)
    return min(part_index * step, count), min((part_index + 1) * step, count)


def read_meta(data_dir):
    """The JSON that data.prepare writes beside the records, or None when there is none."""
    path = os.path.join(data_dir, META_NAME)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise UserError('%s is unreadable (%s); rerun data.prepare with --force'
                        % (path, err)) from None


def label_range(rec_path, offsets, meta):
    """(min, max) label: from the JSON when it describes this very file, else a header scan."""
    entry = (meta or {}).get('files', {}).get(os.path.basename(rec_path))
    if entry and entry.get('bytes') == os.path.getsize(rec_path) \
            and entry.get('count') == len(offsets):
        return entry['label_min'], entry['label_max']
    labels = scan_labels(rec_path, offsets)
    if np.any(labels != np.floor(labels)):
        raise UserError('%s has non-integer labels; class labels must be 0, 1, 2, ...'
                        % rec_path)
    return float(labels.min()), float(labels.max())


class RecordFile:
    """A checked .rec/.idx pair: its record count and, per part, how many records it gets."""

    def __init__(self, rec_path, num_classes, meta=None):
        self.rec_path = rec_path
        self.idx_path = index_path(rec_path)
        offsets = read_offsets(rec_path)
        self.count = len(offsets)
        low, high = label_range(rec_path, offsets, meta)
        if low < 0 or high >= num_classes:
            raise UserError('%s has labels in [%g, %g], outside [0, %d): the records belong '
                            'to another data set or --num-classes is wrong'
                            % (rec_path, low, high, num_classes))

    def part_size(self, num_parts, part_index):
        begin, end = part_range(self.count, num_parts, part_index)
        return end - begin
