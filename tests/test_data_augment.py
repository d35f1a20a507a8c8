"""Aug type 1 after normalisation equals the original's (pad with the rounded mean colour on
uint8 pixels, crop, mirror, then normalise), and its random draws have the right statistics."""
import numpy as np
import pytest

from data.augment import CropMirror, centre_crop, padding_fill
from data.datasets import DATASETS


def normalise(images, mean, std):
    """As ImageRecordIter: float32 (pixel - mean) * (1 / std), per channel."""
    mean = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
    scale = (np.float32(1) / np.asarray(std, np.float32)).reshape(1, -1, 1, 1)
    return (images.astype(np.float32) - mean) * scale


def original_augment(images, mean, std, pad, size, ys, xs, flips):
    """The original's order on uint8 (N, C, H, W): pad with round(mean), crop, mirror, normalise."""
    fill = np.floor(np.asarray(mean) + 0.5).astype(np.uint8)
    n, channels, height, width = images.shape
    padded = np.empty((n, channels, height + 2 * pad, width + 2 * pad), np.uint8)
    padded[:] = fill.reshape(1, -1, 1, 1)
    padded[:, :, pad:pad + height, pad:pad + width] = images
    crops = np.stack([padded[i, :, y:y + size, x:x + size] for i, (y, x) in enumerate(zip(ys, xs))])
    crops[flips] = crops[flips][..., ::-1]
    return normalise(crops, mean, std)


@pytest.mark.parametrize('dataset', ['cifar10', 'cifar100', 'svhn', 'fashion-mnist'])
def test_normalise_then_pad_equals_the_original_order(dataset):
    spec = DATASETS[dataset]
    size, channels = spec['data_shape'], spec['channels']
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (64, channels, size, size), dtype=np.uint8)
    augment = CropMirror(size, size, 4, mirror=True, fill=padding_fill(spec['mean'], spec['std']))
    ys, xs, flips = augment.draw(rng, len(images))
    ours = augment.apply(normalise(images, spec['mean'], spec['std']), ys, xs, flips)
    reference = original_augment(images, spec['mean'], spec['std'], 4, size, ys, xs, flips)
    assert ours.shape == (64, channels, size, size) and ours.dtype == np.float32
    np.testing.assert_array_equal(ours, reference)


def test_the_padding_is_the_rounded_mean_colour_not_zero():
    spec = DATASETS['cifar10']
    fill = padding_fill(spec['mean'], spec['std'])
    # 125.307 -> 125, 122.950 -> 123, 113.865 -> 114
    expected = (np.array([125, 123, 114], np.float32) - np.float32(spec['mean'])) \
        * (np.float32(1) / np.float32(spec['std']))
    np.testing.assert_array_equal(fill, expected)
    assert np.all(fill != 0)


def test_uniform_mean_colour_images_give_crops_without_a_seam():
    spec = DATASETS['cifar10']
    mean_colour = np.floor(np.asarray(spec['mean']) + 0.5).astype(np.uint8)
    images = np.broadcast_to(mean_colour.reshape(1, 3, 1, 1), (256, 3, 32, 32))
    augment = CropMirror(32, 32, 4, mirror=True, fill=padding_fill(spec['mean'], spec['std']))
    crops = augment(normalise(images, spec['mean'], spec['std']), np.random.default_rng(0))
    for channel in range(3):
        assert np.unique(crops[:, channel]).size == 1


def test_crop_offsets_cover_the_padding_evenly_and_half_the_images_flip():
    augment = CropMirror(32, 32, 4, mirror=True, fill=np.zeros(3, np.float32))
    ys, xs, flips = augment.draw(np.random.default_rng(0), 20000)
    assert ys.min() == 0 and ys.max() == 8 and xs.min() == 0 and xs.max() == 8
    counts = np.bincount(ys * 9 + xs, minlength=81)
    assert counts.min() > 0.7 * 20000 / 81 and counts.max() < 1.3 * 20000 / 81
    assert abs(flips.mean() - 0.5) < 0.02


def test_crops_and_flips_move_the_pixels_as_drawn():
    rng = np.random.default_rng(2)
    batch = rng.standard_normal((8, 3, 32, 32)).astype(np.float32)
    augment = CropMirror(32, 32, 4, mirror=True, fill=np.full(3, -9, np.float32))
    ys, xs = np.array([4, 0, 8, 4, 0, 8, 2, 6]), np.array([4, 0, 8, 0, 8, 4, 3, 5])
    flips = np.array([False, False, False, True, True, True, False, True])
    out = augment.apply(batch, ys, xs, flips)
    np.testing.assert_array_equal(out[0], batch[0])  # centred, unflipped: unchanged
    np.testing.assert_array_equal(out[1][:, 4:, 4:], batch[1][:, :28, :28])
    assert np.all(out[1][:, :4] == -9) and np.all(out[1][:, :, :4] == -9)
    np.testing.assert_array_equal(out[2][:, :28, :28], batch[2][:, 4:, 4:])
    np.testing.assert_array_equal(out[3][..., ::-1][:, :, 4:], batch[3][:, :, :28])


def test_without_padding_crops_stay_inside_and_centre_crop_is_centred():
    batch = np.arange(2 * 1 * 6 * 6, dtype=np.float32).reshape(2, 1, 6, 6)
    augment = CropMirror(6, 4, 0, mirror=False, fill=np.zeros(1, np.float32))
    ys, xs, flips = augment.draw(np.random.default_rng(0), 1000)
    assert ys.max() == 2 and xs.max() == 2 and not flips.any()
    np.testing.assert_array_equal(centre_crop(batch, 4), batch[:, :, 1:5, 1:5])
    with pytest.raises(ValueError):
        CropMirror(32, 41, 4, mirror=True, fill=np.zeros(3))
