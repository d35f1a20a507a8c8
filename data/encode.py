"""Image encoding done in worker processes: PNG for small images, resized JPEG for ImageNet.

Workers are spawned fresh (a forked child can deadlock on thread pools that OpenCV or MXNet
started in the parent), so this module imports only numpy and OpenCV to start quickly. The
parent packs the encoded bytes into records (mxnet.recordio) and writes them.
"""
import cv2
import numpy as np

# Small images are stored losslessly so the records decode to the official pixels exactly.
PNG_COMPRESSION = 3
SHORT_SIDE = 480
JPEG_QUALITY = 95


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
    None when the file cannot be read as an image."""
    cv2.setNumThreads(1)
    try:
        image = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR)
    except (OSError, ValueError, cv2.error):
        image = None
    if image is None:
        return None
    image = resize_short_side(image)
    ok, buf = cv2.imencode('.jpg', image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        return None
    return buf.tobytes(), image_sums(image[None, :, :, ::-1])  # BGR -> RGB order
