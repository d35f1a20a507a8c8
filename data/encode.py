"""Image encoding done in worker processes: PNG for small images, resized JPEG for ImageNet.

Workers are spawned fresh (a forked child can deadlock on thread pools that OpenCV or MXNet
started in the parent), so this module imports only numpy and OpenCV to start quickly. The
parent packs the encoded bytes into records (mxnet.recordio) and writes them.
"""
import io
import warnings

import cv2
import numpy as np

from common.errors import UserError
from common.reading import open_regular

# Small images are stored losslessly so the records decode to the official pixels exactly.
PNG_COMPRESSION = 3
SHORT_SIDE = 480
JPEG_QUALITY = 95
# An image file is read only when it is a regular file of at most MAX_IMAGE_BYTES, and
# decoded only when its header says that it, and its copy resized to the short side the
# data set needs, hold at most MAX_PIXELS each: a 1x20000 JPEG scaled to a short side of
# 480 would need 13.8 GB, and OpenCV's allocation failure ends the process.
MAX_IMAGE_BYTES = 64 << 20
MAX_PIXELS = 1 << 26          # 8192 x 8192; 192 MiB in colour


def read_image(path, flags, short_side=None):
    """The image at `path` decoded by OpenCV (`flags`, e.g. cv2.IMREAD_COLOR), or None when
    it is no image. UserError, naming the file and the limit, when it is no regular file
    (a FIFO would block), is too large a file, or its header says it would decode or
    resize (shorter side to `short_side`) to more than MAX_PIXELS."""
    with open_regular(path, max_bytes=MAX_IMAGE_BYTES, what='the image') as handle:
        data = handle.read()
    size = header_size(data, path)
    if size is None:
        return None
    check_pixels(path, size, short_side)
    try:
        return cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:
        return None


def header_size(data, path):
    """(width, height) from the image's header, without decoding it; None when the bytes
    are no image format Pillow (matplotlib's dependency) knows."""
    from PIL import Image
    try:
        with warnings.catch_warnings():   # Pillow's own bomb warning: this module says it
            warnings.simplefilter('ignore')
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except Image.DecompressionBombError:
        raise UserError('the image %s would decode to more than %d pixels, the limit'
                        % (path, MAX_PIXELS)) from None
    except Exception:   # Pillow raises many kinds on bytes that are no image
        return None


def check_pixels(path, size, short_side=None):
    width, height = size
    if width < 1 or height < 1 or width * height > MAX_PIXELS:
        raise UserError('the image %s is %dx%d pixels: more than the limit of %d pixels'
                        % (path, width, height, MAX_PIXELS))
    if short_side is not None:
        scale = short_side / min(width, height)
        resized = round(width * scale) * round(height * scale)
        if resized > MAX_PIXELS:
            raise UserError('the image %s is %dx%d pixels: scaled to a shorter side of %d '
                            'it would have %d pixels, more than the limit of %d'
                            % (path, width, height, short_side, resized, MAX_PIXELS))


def image_sums(images):
    """Per-channel pixel sums, sums of squares and pixel count of uint8 (N, H, W[, C]) images."""
    values = images.reshape(-1, images.shape[3] if images.ndim == 4 else 1).astype(np.float64)
    return values.sum(0), np.einsum('ij,ij->j', values, values), len(values)


def encode_png_chunk(images):
    """PNG bytes of RGB or grey uint8 images, and their channel sums (RGB order)."""
    cv2.setNumThreads(1)
    encoded = []
    for image in images:
        if image.ndim == 3:
            image = image[:, :, ::-1]  # OpenCV encodes BGR; MXNet decodes back to RGB
        ok, buf = cv2.imencode('.png', np.ascontiguousarray(image),
                               [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
        if not ok:
            raise RuntimeError('OpenCV could not encode a %s image as PNG' % (image.shape,))
        encoded.append(buf.tobytes())
    return encoded, image_sums(images)


def resize_short_side(image, size=SHORT_SIDE):
    """Scale so the shorter side is `size` (integer arithmetic as im2rec's --resize)."""
    height, width = image.shape[:2]
    if height > width:
        new_size = (size, height * size // width)
    else:
        new_size = (width * size // height, size)
    shrink = new_size[0] < width
    return cv2.resize(image, new_size, interpolation=cv2.INTER_AREA if shrink
                      else cv2.INTER_LINEAR)


def encode_jpeg_file(path):
    """The short-side-480, quality-95 JPEG of one image file and its RGB channel sums, or
    None when the file cannot be read as an image; UserError when it is too large or no
    regular file (read_image)."""
    cv2.setNumThreads(1)
    try:
        image = read_image(path, cv2.IMREAD_COLOR, SHORT_SIDE)
    except OSError:
        image = None
    if image is None:
        return None
    image = resize_short_side(image)
    ok, buf = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        return None
    return buf.tobytes(), image_sums(image[None, :, :, ::-1])  # BGR -> RGB order
