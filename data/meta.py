"""dataset.json, the description data.prepare writes beside the records: read and checked.

The file is user-editable and may come from elsewhere, so every field the code reads is
checked for type and range here, and its description of the record files against them,
before anything trusts it. A bad field is a one-line UserError naming the file and field.
"""
import json
import math
import numbers
import os

from common.errors import UserError
from common.reading import open_regular

META_NAME = 'dataset.json'
FIX = 'rerun `python -m data.prepare <dataset> --force` or correct it'


def _is_int(value, low=0):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and math.isfinite(value)


def _short(value):
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + '...'


def _field(path, name, value, ok, wanted):
    if not ok:
        raise UserError('%s: %s must be %s, not %s; %s' % (path, name, wanted, _short(value),
                                                           FIX))


def _check_shape_fields(path, meta):
    shape = meta.get('image_shape')
    if shape is not None:
        _field(path, 'image_shape', shape, isinstance(shape, list) and len(shape) == 3
               and all(_is_int(n, 1) for n in shape) and shape[0] in (1, 3),
               '[channels, height, width] with 1 or 3 channels')
    for name in ('mean', 'std'):
        if name not in meta:
            continue
        values = meta[name]
        lengths = (shape[0],) if shape else (1, 3)
        _field(path, name, values, isinstance(values, list) and len(values) in lengths
               and all(_is_number(v) and (name == 'mean' or v >= 0) for v in values),
               'a list of %s %s numbers, one per channel' % (
                   ' or '.join(map(str, lengths)), 'finite' if name == 'mean' else 'non-negative'))


def _check_file_entries(path, files):
    _field(path, 'files', files, isinstance(files, dict), 'an object of record-file entries')
    for name, entry in files.items():
        field = 'files["%s"]' % name
        _field(path, field, entry, isinstance(entry, dict), 'an object')
        for key in ('count', 'bytes'):
            if key in entry:
                _field(path, field + '.' + key, entry[key], _is_int(entry[key]),
                       'a whole number >= 0')
        if 'index' in entry:
            _field(path, field + '.index', entry['index'], isinstance(entry['index'], str),
                   'a file name')


def check_meta(path, meta):
    """Raise a UserError for the first field of `meta` with a wrong type or range."""
    _field(path, 'the file', meta, isinstance(meta, dict), 'a JSON object')
    for name in ('dataset', 'encoding'):
        if name in meta:
            _field(path, name, meta[name], isinstance(meta[name], str), 'a string')
    if 'num_classes' in meta:
        _field(path, 'num_classes', meta['num_classes'], _is_int(meta['num_classes'], 1),
               'a whole number >= 1')
    if 'classes' in meta:
        classes = meta['classes']
        count = meta.get('num_classes', len(classes) if isinstance(classes, list) else -1)
        _field(path, 'classes', classes, isinstance(classes, list) and len(classes) == count
               and all(isinstance(c, str) for c in classes),
               'a list of num_classes (%s) names' % count)
    _check_shape_fields(path, meta)
    if 'counts' in meta:
        counts = meta['counts']
        _field(path, 'counts', counts, isinstance(counts, dict)
               and all(_is_int(n) for n in counts.values()),
               'an object of whole numbers >= 0')
    if 'files' in meta:
        _check_file_entries(path, meta['files'])


META_MAX_BYTES = 16 << 20   # ImageNet's, with its 1,000 class names and skipped list: KBs


def read_meta(data_dir):
    """The checked JSON that data.prepare writes beside the records, or None without one."""
    path = os.path.join(data_dir, META_NAME)
    if not os.path.lexists(path):
        return None
    try:
        with open_regular(path, max_bytes=META_MAX_BYTES, what='the data set description') as f:
            meta = json.loads(f.read().decode('utf-8'))
    except (OSError, ValueError) as err:
        raise UserError('%s is unreadable (%s); %s' % (path, err, FIX)) from None
    check_meta(path, meta)
    return meta


def check_describes(data_dir, meta, record):
    """The JSON's entry for a record file must match the file (a JSON of other records
    would describe other shapes and classes)."""
    entry = (meta or {}).get('files', {}).get(os.path.basename(record.rec_path))
    if not entry:
        return
    actual = dict(count=record.count, bytes=os.path.getsize(record.rec_path))
    for key, value in actual.items():
        if key in entry and entry[key] != value:
            raise UserError('%s describes another %s (%s %d; the file has %d): it belongs to '
                            'other records; %s' % (os.path.join(data_dir, META_NAME),
                                                   os.path.basename(record.rec_path), key,
                                                   entry[key], value, FIX))
