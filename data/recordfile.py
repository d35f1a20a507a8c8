"""The structure of an indexed record file (.rec + .idx), checked before MXNet opens it.

MXNet's C++ reader aborts the whole process (SIGABRT from a reader thread, which Python
cannot catch) on an index offset that does not point at a record, and misreads silently on
duplicate offsets or a cut-short file. So the whole index is checked when a record set is
opened: every offset must hold a record header with RecordIO's magic, each record must end
exactly where the next indexed one starts, the last at the end of the file. That reads only
the 32 header bytes at each offset (the RecordIO header, then the image header with the
label), never an image, so it stays cheap for ImageNet's 1.28M records.
"""
import concurrent.futures
import os
import struct

import numpy as np

from common.errors import UserError
from common.reading import is_regular, open_regular

RECORD_MAGIC = 0xced7230a
# RecordIO header: magic, then (continue flag << 29 | payload length).
_RECORD_HEAD = struct.Struct('<II')
_LENGTH_MASK = (1 << 29) - 1
# Image-record header inside the payload: flag, label, id, id2 (mxnet.recordio.IRHeader);
# flag > 0 means `flag` float labels follow the header instead.
IMAGE_HEAD = struct.Struct('<IfQQ')
_PEEK = _RECORD_HEAD.size + IMAGE_HEAD.size
# A PNG starts with its signature and the IHDR chunk: width, height, bit depth, colour type.
_PNG_START = b'\x89PNG\r\n\x1a\n\0\0\0\rIHDR'
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # by colour type, as OpenCV decodes them
_READ = _PEEK + len(_PNG_START) + 10
# A record longer than this is not an image record but a damaged length field.
_MAX_LENGTH = 1 << 28
# Records larger than this on average are read with parallel reads and no read-ahead.
_SPARSE = 64 << 10
_READERS = 8
REBUILD = 'rebuild the records with `python -m data.prepare <dataset> --force`'


def index_path(rec_path):
    return os.path.splitext(rec_path)[0] + '.idx'


def read_index(rec_path):
    """(keys, offsets) of the index of `rec_path`, sorted by offset, each key and offset once."""
    if not os.path.exists(rec_path):
        raise UserError('record file %s not found; run `python -m data.prepare <dataset>` '
                        'or pass the right --data-dir' % rec_path)
    if not is_regular(rec_path):   # MXNet's reader would block on a FIFO
        raise UserError('record file %s is not a regular file; give the records' % rec_path)
    idx_path = index_path(rec_path)
    if not os.path.lexists(idx_path):
        raise UserError('%s has no index %s; rebuild both with `python -m data.prepare '
                        '<dataset> --force` (or im2rec with its .idx)' % (rec_path, idx_path))
    with open_regular(idx_path, what='the index') as f:
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
    if table is None or len(fields) != 2 * lines or table.min() < 0:
        raise UserError('index %s is not "key<TAB>offset" lines; rebuild it' % idx_path)
    table = table[np.argsort(table[:, 1], kind='stable')]
    for column, what in ((1, 'offset'), (0, 'key')):
        values = np.sort(table[:, column])
        repeated = values[1:][values[1:] == values[:-1]]
        if len(repeated):
            holders = table[table[:, column] == repeated[0], 1 - column]
            raise UserError('index %s is damaged: %s %d appears %d times (%s %s); %s'
                            % (idx_path, what, repeated[0], len(holders),
                               'keys' if column else 'offsets',
                               ', '.join(map(str, holders[:4])), REBUILD))
    return table[:, 0], table[:, 1]


def _peek_heads(fd, offsets, size):
    """The first bytes of every record (headers and a PNG's IHDR), a (count, 58) uint8 array."""
    def read(chunk):
        return b''.join(os.pread(fd, _READ, int(offset)).ljust(_READ, b'\0')
                        for offset in chunk)
    if size < _SPARSE * len(offsets):  # small records: reading ahead reads what comes next
        heads = read(offsets)
    else:
        # Big records (ImageNet's JPEGs): read ahead would read the whole file. Only a few
        # bytes of each are wanted, so many small reads at once keep a cold disk busy.
        if hasattr(os, 'posix_fadvise'):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
        with concurrent.futures.ThreadPoolExecutor(_READERS) as pool:
            heads = b''.join(pool.map(read, np.array_split(offsets, 8 * _READERS)))
    return np.frombuffer(heads, np.uint8).reshape(len(offsets), _READ)


def _record_end(fd, offset, where):
    """Where a record split into parts (its payload held the magic) ends."""
    while True:
        head = os.pread(fd, _RECORD_HEAD.size, offset)
        if len(head) < _RECORD_HEAD.size:
            raise UserError('%s is cut short inside %s' % where)
        magic, lrec = _RECORD_HEAD.unpack(head)
        if magic != RECORD_MAGIC:
            raise UserError('%s: a part of %s has no RecordIO magic; the file is damaged; %s'
                            % (where[0], where[1], REBUILD))
        offset += _RECORD_HEAD.size + ((lrec & _LENGTH_MASK) + 3) // 4 * 4
        if lrec >> 29 in (0, 3):
            return offset


def _record_ends(fd, rec_path, keys, offsets, heads):
    """The end of every record after checking its RecordIO and image headers."""
    words = np.ascontiguousarray(heads[:, :12]).view('<u4')
    magic, lrec, flag = words[:, 0], words[:, 1], words[:, 2]
    length, cflag = lrec & _LENGTH_MASK, lrec >> 29
    bad = (magic != RECORD_MAGIC) | (cflag > 1) | (length > _MAX_LENGTH) \
        | ((cflag == 0) & (length < IMAGE_HEAD.size + 4 * flag.astype(np.int64)))
    if bad.any():
        i = int(np.argmax(bad))
        problem = 'where no record starts' if magic[i] != RECORD_MAGIC or cflag[i] > 1 \
            else 'whose header is damaged (length %d, label count %d)' % (length[i], flag[i])
        raise UserError('%s: its index gives record key %d offset %d, %s: the file is damaged '
                        'or its index does not belong to it; %s'
                        % (rec_path, keys[i], offsets[i], problem, REBUILD))
    ends = offsets + _RECORD_HEAD.size + (length.astype(np.int64) + 3) // 4 * 4
    for i in np.flatnonzero(cflag == 1):
        ends[i] = _record_end(fd, int(offsets[i]), (rec_path, 'record key %d' % keys[i]))
    return ends


def _check_chain(rec_path, keys, offsets, ends, size):
    """Each record must end where the next indexed one starts, the last at the end."""
    if offsets[0] != 0:
        raise UserError('%s: the first %d bytes hold no indexed record: the index %s does not '
                        'belong to it; %s' % (rec_path, offsets[0], index_path(rec_path),
                                              REBUILD))
    gaps = np.flatnonzero(ends[:-1] != offsets[1:])
    if len(gaps):
        i = int(gaps[0])
        raise UserError('%s: record key %d (offset %d) ends at byte %d but the next indexed '
                        'record, key %d, starts at %d: a damaged length, a moved offset or '
                        'an index of another file; %s' % (rec_path, keys[i], offsets[i],
                                                          ends[i], keys[i + 1],
                                                          offsets[i + 1], REBUILD))
    if ends[-1] > size:
        raise UserError('%s is cut short (%d bytes, its index needs %d): it was not written to '
                        'the end; %s' % (rec_path, size, ends[-1], REBUILD))
    if ends[-1] != size:
        raise UserError('%s has %d bytes after its last indexed record: the index %s belongs '
                        'to another file; %s' % (rec_path, size - ends[-1],
                                                 index_path(rec_path), REBUILD))


def _labels(fd, offsets, heads):
    """Each record's (first) label, from its image header or the label array after it."""
    labels = heads[:, 12:16].copy().view('<f4')[:, 0]
    flags = heads[:, 8:12].copy().view('<u4')[:, 0]
    for i in np.flatnonzero(flags):
        first = os.pread(fd, 4, int(offsets[i]) + _PEEK)
        labels[i] = struct.unpack('<f', first)[0]
    return labels


def verify_records(rec_path):
    """(keys, offsets, labels, PNG shapes, image formats) of a record file whose index and
    record headers are sound; sorted by offset, as MXNet's indexed reader splits them."""
    keys, offsets = read_index(rec_path)
    size = os.path.getsize(rec_path)
    late = np.flatnonzero(offsets + _PEEK > size)
    if len(late):
        raise UserError('%s is cut short (%d bytes): its index gives record key %d offset %d; '
                        '%s' % (rec_path, size, keys[late[0]], offsets[late[0]], REBUILD))
    with open_regular(rec_path, what='the record file') as f:
        heads = _peek_heads(f.fileno(), offsets, size)
        ends = _record_ends(f.fileno(), rec_path, keys, offsets, heads)
        _check_chain(rec_path, keys, offsets, ends, size)
        return (keys, offsets, _labels(f.fileno(), offsets, heads), _png_shapes(heads),
                image_formats(f.fileno(), offsets, heads))


def _png_shapes(heads):
    """(channels, height, width) of each record's PNG from its IHDR, without decoding it;
    (0, 0, 0) for a record that is not a PNG (JPEG, or a label array before the image)."""
    start = np.frombuffer(_PNG_START, np.uint8)
    colour = heads[:, _PEEK + 25]
    channels = np.zeros(256, np.int64)
    channels[list(_PNG_CHANNELS)] = list(_PNG_CHANNELS.values())
    png = (heads[:, _PEEK:_PEEK + len(start)] == start).all(1) & ~heads[:, 8:12].any(1) \
        & (channels[colour] > 0)
    size = np.ascontiguousarray(heads[:, _PEEK + 16:_PEEK + 24]).view('>u4')
    shapes = np.stack([channels[colour], size[:, 1], size[:, 0]], 1).astype(np.int64)
    shapes[~png] = 0
    return shapes


# The first bytes of an image by format, as data.prepare stores them.
IMAGE_MAGIC = {'png': b'\x89PNG\r\n\x1a\n', 'jpeg': b'\xff\xd8\xff'}


def image_formats(fd, offsets, heads):
    """Each record's image format ('png', 'jpeg' or 'other'), from its first bytes: in the
    headers already read (one comparison for all), or, after a label array, one read more."""
    starts = heads[:, _PEEK:_PEEK + 8].copy()
    flags = heads[:, 8:12].copy().view('<u4')[:, 0]
    for i in np.flatnonzero(flags):
        start = os.pread(fd, 8, int(offsets[i]) + _PEEK + 4 * int(flags[i])).ljust(8, b'\0')
        starts[i] = np.frombuffer(start, np.uint8)
    formats = np.full(len(offsets), 'other', dtype=object)
    for name, magic in IMAGE_MAGIC.items():
        magic = np.frombuffer(magic, np.uint8)
        formats[(starts[:, :len(magic)] == magic).all(1)] = name
    return formats


def read_offsets(rec_path):
    """The record offsets of `rec_path`, ascending, after checking the index and headers."""
    return verify_records(rec_path)[1]


def read_payload(fd, offset):
    """The payload of the record at `offset`, its parts joined as RecordIO splits them."""
    parts = []
    while True:
        magic, lrec = _RECORD_HEAD.unpack(os.pread(fd, _RECORD_HEAD.size, offset))
        length = lrec & _LENGTH_MASK
        parts.append(os.pread(fd, length, offset + _RECORD_HEAD.size))
        offset += _RECORD_HEAD.size + (length + 3) // 4 * 4
        if lrec >> 29 in (0, 3):
            return struct.pack('<I', RECORD_MAGIC).join(parts)


def part_range(count, num_parts, part_index):
    """Records [begin, end) that MXNet's indexed reader gives to one part (checked in tests)."""
    step = -(-count // num_parts)
    return min(part_index * step, count), min((part_index + 1) * step, count)
