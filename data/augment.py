"""Pad, random crop and mirror on a normalised batch: the original's augmentation type 1.

The original (a patched MXNet) padded each uint8 image with its channel's rounded mean colour
before normalising. Stock MXNet 1.9.1 has a single fill value, so the iterator normalises
first and pads here with the normalised value of that colour, (round(mean) - mean) / std per
channel. Padding and cropping commute with the per-channel affine normalisation, so the
result equals the original's pixel for pixel (tests/test_data_augment.py checks it).
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def rounded_mean(mean):
    """The mean colour as whole pixel values (round half up): the original's fill colour."""
    return np.floor(np.asarray(mean, np.float64) + 0.5)


def padding_fill(mean, std):
    """Per channel, the normalised value of the rounded mean colour.

    Computed in float32 as ImageRecordIter normalises, (pixel - mean) * (1 / std), so the
    padding equals a decoded pixel of that colour bit for bit.
    """
    mean = np.asarray(mean, np.float32)
    rounded = rounded_mean(mean.astype(np.float64)).astype(np.float32)
    return (rounded - mean) * (np.float32(1) / np.asarray(std, np.float32))


def nearest_grey(mean, std):
    """The grey level (0..255) whose normalised value is nearest the rounded mean colour's.

    Stock MXNet 1.9.1 fills the borders of its scale/aspect warp with one value for all
    channels, where the original's build filled each channel with its own (rounded mean).
    Least squares over the normalised channels: the mean weighted by 1 / std**2.
    """
    weights = 1 / np.asarray(std, np.float64) ** 2
    return int(np.floor(np.sum(weights * rounded_mean(mean)) / np.sum(weights) + 0.5))


class CropMirror:
    """Random crop of `out_size` from images padded by `pad`, then a random horizontal flip."""

    def __init__(self, in_size, out_size, pad, mirror, fill):
        if out_size > in_size + 2 * pad:
            raise ValueError('crop %d is larger than the padded image %d'
                             % (out_size, in_size + 2 * pad))
        self.in_size, self.out_size, self.pad, self.mirror = in_size, out_size, pad, mirror
        self.fill = np.asarray(fill, np.float32)

    def draw(self, rng, n):
        """Crop corners (in padded coordinates) and flip decisions for `n` images."""
        span = self.in_size + 2 * self.pad - self.out_size + 1
        ys = rng.integers(0, span, n)
        xs = rng.integers(0, span, n)
        flips = rng.random(n) < 0.5 if self.mirror else np.zeros(n, bool)
        return ys, xs, flips

    def apply(self, batch, ys, xs, flips):
        """The crops of a float32 (N, C, H, W) batch at the given corners, flipped where asked."""
        n, channels, height, width = batch.shape
        pad, size = self.pad, self.out_size
        if pad:
            padded = np.empty((n, channels, height + 2 * pad, width + 2 * pad), np.float32)
            padded[:] = self.fill.reshape(1, -1, 1, 1)
            padded[:, :, pad:pad + height, pad:pad + width] = batch
        else:
            padded = batch
        # One view of every possible crop; fancy indexing picks one per image in one copy.
        windows = sliding_window_view(padded, (size, size), axis=(2, 3))
        out = windows[np.arange(n), :, ys, xs]
        if flips.any():
            out[flips] = out[flips][..., ::-1]
        return out

    def __call__(self, batch, rng):
        return self.apply(batch, *self.draw(rng, len(batch)))


def centre_crop(batch, size):
    """The centre `size` x `size` of each image, as MXNet crops when no augmentation is asked."""
    height, width = batch.shape[2:]
    if height == size and width == size:
        return batch
    top, left = (height - size) // 2, (width - size) // 2
    return np.ascontiguousarray(batch[:, :, top:top + size, left:left + size])
