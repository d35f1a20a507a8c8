"""Checking an MXNet NDArray file (.params, optimizer states) before MXNet reads it.

mx.nd.load trusts the file: a damaged shape can ask for gigabytes, and its errors are
C++ stack traces. Walking the file's structure first (header, every array's shape, type
and data, then the names) costs a read of the file and turns every damage into one line.

Layout as MXNet 1.9.1 writes it (little-endian; dense arrays, format 2):
  u64 0x112, u64 0, u64 n, n arrays, u64 n, n names (u64 length + bytes)
  array: u32 0xF993FAC9, i32 storage type (0 dense), u32 ndim, ndim x i64 dims,
         then (ndim > 0) i32 device type, i32 device id, i32 dtype, the data
"""
import struct

from common.errors import UserError
from common.reading import open_regular

LIST_MAGIC = 0x112
ARRAY_MAGIC = 0xF993FAC9
# MXNet's dtype flags -> bytes per element
DTYPE_SIZES = {0: 4, 1: 8, 2: 2, 3: 1, 4: 4, 5: 1, 6: 8, 7: 1, 12: 2}
DTYPE_FLAGS = {'float32': 0, 'float64': 1, 'float16': 2, 'uint8': 3, 'int32': 4, 'int8': 5,
               'int64': 6, 'bool': 7}


class _Truncated(Exception):
    pass


class _Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise _Truncated()
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def skip(self, size):
        if self.pos + size > len(self.data):
            raise _Truncated()
        self.pos += size


def check_nd_file(path, what):
    """Raise a one-line UserError unless `path` is a whole MXNet NDArray file.

    `what` names the file in the message, e.g. 'the weights' or 'the optimizer states'.
    """
    try:
        with open_regular(path, what=what) as handle:
            data = handle.read()
    except OSError as err:
        raise UserError('cannot read %s %s (%s)' % (what, path, err.strerror))
    if not data:
        raise UserError('%s %s is an empty file (0 bytes)' % (what, path))
    header = struct.pack('<QQ', LIST_MAGIC, 0)
    if data[:16] != header[:min(16, len(data))]:
        raise UserError('%s %s is not an MXNet parameter file (it does not begin with the '
                        'NDArray file header)' % (what, path))
    reader = _Reader(data)
    try:
        reader.take('<QQ')
        _walk(reader, path, what)
    except _Truncated:
        raise UserError('%s %s is truncated: it ends after %d bytes, in the middle of '
                        'its data' % (what, path, len(data)))
    if reader.pos != len(data):
        raise UserError('%s %s is damaged: %d stray bytes after its last name'
                        % (what, path, len(data) - reader.pos))


def _walk(reader, path, what):
    count, = reader.take('<Q')
    for index in range(min(count, 1 << 32)):
        magic, stype, ndim = reader.take('<IiI')
        if magic != ARRAY_MAGIC or stype != 0 or ndim > 32:
            raise UserError('%s %s is damaged: array %d of %d has no valid header '
                            '(not an MXNet parameter file of this port)'
                            % (what, path, index + 1, count))
        dims = reader.take('<%dq' % ndim)
        if ndim == 0:
            continue
        _, _, dtype = reader.take('<iii')
        if dtype not in DTYPE_SIZES or any(d < 0 for d in dims):
            raise UserError('%s %s is damaged: array %d of %d has dtype %d, shape %s'
                            % (what, path, index + 1, count, dtype, dims))
        size = DTYPE_SIZES[dtype]
        for dim in dims:
            size *= dim
        reader.skip(size)
    names, = reader.take('<Q')
    if names not in (0, count):
        raise UserError('%s %s is damaged: %d arrays but %d names'
                        % (what, path, count, names))
    for _ in range(names):
        length, = reader.take('<Q')
        reader.skip(length)


def load_nd_dict(path, what):
    """The named arrays of a checked NDArray file."""
    import mxnet as mx
    check_nd_file(path, what)
    try:
        loaded = mx.nd.load(path)
    except mx.base.MXNetError as err:   # the checks above should leave nothing for this
        raise UserError('%s %s cannot be read by MXNet (%s)'
                        % (what, path, str(err).strip().splitlines()[0]))
    if not isinstance(loaded, dict):
        raise UserError('%s %s holds unnamed arrays: not a file this port wrote'
                        % (what, path))
    return loaded



def save_nd_dict(path, arrays):
    """Write named NDArrays in the format above, byte for byte as mx.nd.save writes them
    from the CPU, but with Python's own file I/O: a full disk is an OSError with its errno,
    not MXNet's bare `FileStream.Write incomplete`."""
    names = list(arrays)
    with open(path, 'wb') as handle:
        handle.write(struct.pack('<QQQ', LIST_MAGIC, 0, len(names)))
        for name in names:
            data = arrays[name].asnumpy()
            flag = DTYPE_FLAGS[data.dtype.name]
            handle.write(struct.pack('<IiI', ARRAY_MAGIC, 0, data.ndim))
            handle.write(struct.pack('<%dq' % data.ndim, *data.shape))
            if data.ndim:
                handle.write(struct.pack('<iii', 1, 0, flag))   # cpu(0)
                handle.write(data.astype(data.dtype.newbyteorder('<'), copy=False).tobytes())
        handle.write(struct.pack('<Q', len(names)))
        for name in names:
            encoded = name.encode('utf-8')
            handle.write(struct.pack('<Q', len(encoded)) + encoded)
