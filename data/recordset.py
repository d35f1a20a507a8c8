"""A record set as the iterators use it: its file checked (data.recordfile), its labels in
range, its images of the expected shape, and the search for the record MXNet cannot decode.

Labels and PNG sizes come from the headers already read; only the first few images are
decoded when a file is opened. A record that fails to decode later makes MXNet raise an
MXNetError without saying which; `read_error` then decodes the part here to name it.
"""
import contextlib
import os
import sys

import cv2
import numpy as np

from common.errors import UserError
from common.reading import open_regular
from data.recordfile import (IMAGE_HEAD, REBUILD, index_path, part_range, read_payload,
                             verify_records)


@contextlib.contextmanager
def _quiet_stderr():
    """libpng and libjpeg print their complaints about a damaged image straight to file
    descriptor 2; the error raised for it is the one line the user should see."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, 'wb') as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def decoded_shape(payload):
    """(channels, height, width) of the record's image as stored, or None if it does not
    decode (OpenCV, as MXNet decodes it)."""
    flag = IMAGE_HEAD.unpack_from(payload)[0]
    data = np.frombuffer(payload, np.uint8, offset=IMAGE_HEAD.size + 4 * flag)
    try:
        with _quiet_stderr():
            image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        return None
    return (image.shape[2] if image.ndim == 3 else 1,) + image.shape[:2]


def _check_labels(rec_path, keys, labels, num_classes):
    fractional = labels != np.floor(labels)
    wrong = fractional | (labels < 0) | (labels >= num_classes)
    if wrong.any():
        i = int(np.argmax(wrong))
        problem = 'a label that is no class number' if fractional[i] else \
            'labels in [%g, %g], outside [0, %d)' % (labels.min(), labels.max(), num_classes)
        raise UserError('%s has %s (record key %d has %g): the records belong to another '
                        'data set, or --num-classes is wrong' % (rec_path, problem, keys[i],
                                                                labels[i]))


def _describe(shape):
    return '%dx%d image%s' % (shape[1], shape[2], '' if shape[0] == 1 else
                              ' with %d channels' % shape[0])


class RecordFile:
    """A checked .rec/.idx pair: its record count, and, per part, how many records it gets.

    image_shape: the (channels, height, width) every record must decode to, or None when
    sizes vary (ImageNet); `expected_from` says where that shape comes from.
    """

    SAMPLES = 3  # first records decoded when opened: enough to catch another data set

    def __init__(self, rec_path, num_classes, image_shape=None, expected_from='the data set',
                 encoding=None):
        self.rec_path = rec_path
        self.idx_path = index_path(rec_path)
        self.keys, self._offsets, labels, png_shapes, formats = verify_records(rec_path)
        self.count = len(self._offsets)
        self.image_shape = None if image_shape is None else tuple(image_shape)
        self._expected_from = expected_from
        _check_labels(rec_path, self.keys, labels, num_classes)
        if encoding is not None:
            self._check_formats(formats, encoding)
        problem = self._first_bad(0, min(self.count, self.SAMPLES))
        if problem:
            raise UserError(problem)
        if self.image_shape:
            # MXNet would silently resize one odd image; every PNG's header shows its size.
            odd = png_shapes[:, 0].astype(bool) & (png_shapes != self.image_shape).any(1)
            if odd.any():
                i = int(np.argmax(odd))
                raise UserError(self._wrong_shape(i, tuple(png_shapes[i])))

    def _check_formats(self, formats, encoding):
        """Every record's image must be in the set's encoding, checked from each record's
        first bytes (a record that is not would decode, maybe resized, without a word)."""
        odd = formats != encoding
        if odd.any():
            i = int(np.argmax(odd))
            raise UserError('%s: record key %d (offset %d) holds %s, but %s says its images '
                            'are %s: the records are mixed or damaged; %s'
                            % (self.rec_path, self.keys[i], self._offsets[i],
                               'a %s image' % formats[i].upper() if formats[i] != 'other'
                               else 'no PNG or JPEG image', self._expected_from,
                               encoding.upper(), REBUILD))

    def part_size(self, num_parts, part_index):
        begin, end = part_range(self.count, num_parts, part_index)
        return end - begin

    def _first_bad(self, begin, end):
        """A one-line description of the first record in [begin, end) that does not decode
        to the expected shape, or None."""
        with open_regular(self.rec_path) as f:
            for i in range(begin, end):
                shape = decoded_shape(read_payload(f.fileno(), int(self._offsets[i])))
                where = '%s: record key %d (offset %d)' % (self.rec_path, self.keys[i],
                                                           self._offsets[i])
                if shape is None:
                    return '%s is not a readable image (damaged data); %s' % (where, REBUILD)
                if self.image_shape and shape != self.image_shape:
                    return self._wrong_shape(i, shape)
        return None

    def _wrong_shape(self, i, shape):
        return ('%s: record key %d (offset %d) is a %s, but %s expects a %s: the records '
                'belong to another data set' % (self.rec_path, self.keys[i], self._offsets[i],
                                                 _describe(shape), self._expected_from,
                                                 _describe(self.image_shape)))

    def read_error(self, error, num_parts, part_index):
        """The UserError for an MXNetError that MXNet's reader raised on this part: names the
        bad record, found by decoding the part's records here in order."""
        problem = self._first_bad(*part_range(self.count, num_parts, part_index))
        if problem is None:
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            problem = '%s: MXNet could not read it (%s)' % (self.rec_path,
                                                            lines[0] if lines else 'no message')
        return UserError(problem)
