"""data.iterators on small record files: shapes, exact normalisation, augmentation, shards,
seeds and epochs, exact validation passes, and bad record files."""
import math
import os
import shutil

import mxnet as mx
import numpy as np
import pytest

from common.errors import UserError
from data import imagenet, synthetic
from data.augment import padding_fill
from data.datasets import DATASETS
from data.iterators import default_threads, get_iterators, record_iter

COUNT = 103  # prime: no batch size or part count divides it
MEAN = np.array(DATASETS['cifar10']['mean'], np.float32)
STD = np.array(DATASETS['cifar10']['std'], np.float32)


def colour_coded(count, size=32):
    """Constant-colour images whose colour encodes the index: R = i % 256, G = i // 256."""
    colours = np.stack([np.arange(count) % 256, np.arange(count) // 256,
                        np.full(count, 7)], 1).astype(np.uint8)
    return np.broadcast_to(colours[:, None, None, :], (count, size, size, 3)).copy()


def ids_of(data):
    """Record indices back from normalised batches of colour_coded images (centre pixel)."""
    centre = data.asnumpy()[:, :, 16, 16] * STD + MEAN
    colour = np.rint(centre).astype(int)
    return (colour[:, 0] + 256 * colour[:, 1]).tolist()


@pytest.fixture(scope='module')
def coded_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('coded'))
    images, labels = colour_coded(COUNT), np.arange(COUNT) % 10
    synthetic.write_record_dataset(out, 'cifar10', (images, labels), (images, labels))
    return out


def iterators(data_dir, **options):
    settings = dict(dataset='cifar10', data_dir=data_dir, batch_size=10, test_batch_size=20,
                    aug_type=0, threads=1)
    settings.update(options)
    return get_iterators(**settings)


def batches(iterator):
    return [(data.asnumpy(), label.asnumpy()) for data, label in iterator]


def test_batches_are_cpu_float32_of_the_right_shapes(coded_dir):
    train, val = iterators(coded_dir, aug_type=1)
    assert len(train) == math.ceil(COUNT / 10) and train.num_examples == COUNT
    assert len(val) == math.ceil(COUNT / 20) and val.num_examples == COUNT
    seen = 0
    for data, label in train:
        assert isinstance(data, mx.nd.NDArray) and data.context == mx.cpu()
        assert data.shape == (10, 3, 32, 32) and data.dtype == np.float32
        assert label.shape == (10,) and label.dtype == np.float32 and label.context == mx.cpu()
        seen += 1
    assert seen == len(train)


def test_normalisation_is_exact(coded_dir):
    _, val = iterators(coded_dir)
    data = np.concatenate([d for d, _ in batches(val)])
    colours = colour_coded(COUNT)[:, 0, 0, :].astype(np.float32)
    expected = (colours - MEAN) * (np.float32(1) / STD)
    np.testing.assert_array_equal(data, np.broadcast_to(expected[:, :, None, None], data.shape))


def test_validation_sees_every_record_once_in_order_with_a_short_last_batch(coded_dir):
    _, val = iterators(coded_dir)
    for _ in range(2):  # a new `for` loop is a new, identical pass
        got = batches(val)
        assert [len(d) for d, _ in got] == [20] * 5 + [3]
        ids = sum((ids_of(mx.nd.array(d)) for d, _ in got), [])
        assert ids == list(range(COUNT))
        assert np.concatenate([l for _, l in got]).tolist() == [i % 10 for i in range(COUNT)]


@pytest.mark.parametrize('num_parts', [2, 3, 4])
def test_parts_cover_every_record_exactly_once(coded_dir, num_parts):
    val_ids, train_ids = [], []
    for part in range(num_parts):
        train, val = iterators(coded_dir, num_parts=num_parts, part_index=part)
        part_val = sum((ids_of(d) for d, _ in val), [])
        assert len(part_val) == val.num_examples == train.num_examples
        val_ids += part_val
        train_ids.append(set(sum((ids_of(d) for d, _ in train), [])))
        assert train_ids[-1] == set(part_val)  # training reads its own part only
    assert sorted(val_ids) == list(range(COUNT))
    assert set.union(*train_ids) == set(range(COUNT))


def test_every_part_counts_the_same_batches_so_dist_sync_workers_stay_in_step(coded_dir):
    # parts of 52 and 51 records: 4 and 3 batches of 17 on their own
    lengths = []
    for part in range(2):
        train, _ = iterators(coded_dir, num_parts=2, part_index=part, batch_size=17)
        got = batches(train)
        assert len(got) == len(train) and all(len(d) == 17 for d, _ in got)
        lengths.append(len(train))
    assert lengths == [4, 4]


def test_training_is_shuffled_and_wraps_within_its_part_to_full_batches(coded_dir):
    train, _ = iterators(coded_dir)
    ids = sum((ids_of(d) for d, _ in train), [])
    assert len(ids) == 110 and set(ids) == set(range(COUNT))
    assert ids[:COUNT] != list(range(COUNT))


def test_same_seed_same_batches_new_epoch_new_order_and_resume_reproduces(coded_dir):
    def run(seed, epochs, start=0):
        train, _ = iterators(coded_dir, aug_type=1, seed=seed)
        if start:
            train.set_epoch(start)
        return [batches(train) for _ in range(epochs)]

    uninterrupted = run(5, 3)
    again = run(5, 3)
    for epoch in range(3):
        for (a, la), (b, lb) in zip(uninterrupted[epoch], again[epoch]):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(la, lb)
    order = [sum((ids_of(mx.nd.array(d)) for d, _ in epoch), []) for epoch in uninterrupted]
    assert order[0] != order[1] != order[2]
    resumed = run(5, 1, start=2)[0]
    for (a, _), (b, _) in zip(uninterrupted[2], resumed):
        np.testing.assert_array_equal(a, b)
    other_seed = run(6, 1)[0]
    assert not np.array_equal(other_seed[0][0], uninterrupted[0][0][0])


@pytest.mark.parametrize('num_parts, part_index, batch_size', [(1, 0, 10), (2, 1, 17)])
def test_resuming_at_any_epoch_reproduces_the_uninterrupted_run(
        coded_dir, num_parts, part_index, batch_size):
    options = dict(aug_type=1, seed=11, num_parts=num_parts, part_index=part_index,
                   batch_size=batch_size)
    train, _ = iterators(coded_dir, **options)
    uninterrupted = [batches(train) for _ in range(4)]
    for start in (1, 3):
        resumed, _ = iterators(coded_dir, **options)
        resumed.set_epoch(start)
        for (a, la), (b, lb) in zip(uninterrupted[start], batches(resumed)):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(la, lb)
    # an epoch left half-way does not shift the ones after it
    broken, _ = iterators(coded_dir, **options)
    batches(broken)
    for i, _ in enumerate(broken):
        if i == 1:
            break
    np.testing.assert_array_equal(batches(broken)[0][0], uninterrupted[2][0][0])
    # going back to an earlier epoch works too
    broken.set_epoch(0)
    np.testing.assert_array_equal(batches(broken)[-1][0], uninterrupted[0][-1][0])


def test_each_epoch_is_one_shuffle_of_the_part_topped_up_from_its_start(coded_dir):
    train, _ = iterators(coded_dir)
    for _ in range(3):
        ids = sum((ids_of(d) for d, _ in train), [])
        assert sorted(ids[:COUNT]) == list(range(COUNT))
        assert ids[COUNT:] == ids[:110 - COUNT]


def test_one_reader_per_iterator_however_many_epochs(coded_dir, monkeypatch):
    import data.iterators as module
    made = []
    real = module.record_iter

    def counting(**options):
        made.append(options['shuffle'])
        return real(**options)

    monkeypatch.setattr(module, 'record_iter', counting)
    train, val = iterators(coded_dir, aug_type=1)
    for _ in range(6):
        batches(train)
        assert len(batches(val)) == 6
    assert sorted(made) == [False, True]


def test_mean_colour_images_give_padded_crops_without_a_seam(tmp_path):
    mean_colour = np.floor(MEAN.astype(np.float64) + 0.5).astype(np.uint8)
    images = np.broadcast_to(mean_colour, (64, 32, 32, 3)).copy()
    synthetic.write_record_dataset(str(tmp_path), 'cifar10', (images, np.zeros(64, int)),
                                   (images[:8], np.zeros(8, int)))
    train, _ = iterators(str(tmp_path), aug_type=1, batch_size=32)
    fill = padding_fill(MEAN, STD)
    for data, _ in train:
        data = data.asnumpy()
        for channel in range(3):
            assert np.all(data[:, channel] == fill[channel])


def _padded_frame(mask):
    """(rows padded at the top minus at the bottom, the same for columns) of one crop."""
    rows, cols = mask.all(1), mask.all(0)
    top, bottom = np.argmin(rows), np.argmin(rows[::-1])
    left, right = np.argmin(cols), np.argmin(cols[::-1])
    return top - bottom, left - right


def test_padding_is_a_mean_colour_frame_from_shifts_of_up_to_four(tmp_path):
    # black images: the padding stands out as the mean colour
    images = np.zeros((300, 32, 32, 3), np.uint8)
    synthetic.write_record_dataset(str(tmp_path), 'cifar10', (images, np.zeros(300, int)),
                                   (images[:8], np.zeros(8, int)))
    train, _ = iterators(str(tmp_path), aug_type=1, batch_size=50)
    fill = padding_fill(MEAN, STD)
    black = -MEAN * (np.float32(1) / STD)
    shifts = []
    for data, _ in train:
        data = data.asnumpy()
        padded = np.all(data == fill.reshape(1, 3, 1, 1), axis=1)
        assert np.all(padded | np.all(data == black.reshape(1, 3, 1, 1), axis=1))
        for mask in padded:
            dy, dx = _padded_frame(mask)
            # exactly the frame a shift of (dy, dx) leaves, nothing else
            expected = np.ones((32, 32), bool)
            expected[max(dy, 0):32 + min(dy, 0), max(dx, 0):32 + min(dx, 0)] = False
            np.testing.assert_array_equal(mask, expected)
            shifts.append((dy, dx))
    assert {dy for dy, _ in shifts} == set(range(-4, 5))
    assert {dx for _, dx in shifts} == set(range(-4, 5))


def test_mirroring_flips_about_half_the_images(tmp_path):
    images = np.zeros((400, 32, 32, 3), np.uint8)
    images[:, :, 16:] = 255  # dark left, bright right
    synthetic.write_record_dataset(str(tmp_path), 'cifar10', (images, np.zeros(400, int)),
                                   (images[:8], np.zeros(8, int)))
    train, _ = iterators(str(tmp_path), aug_type=2, batch_size=100)
    flipped = []
    for _ in range(5):
        for data, _ in train:
            data = data.asnumpy()
            flipped += (data[:, 0, 16, 0] > data[:, 0, 16, -1]).tolist()
    assert len(flipped) == 2000 and abs(np.mean(flipped) - 0.5) < 0.05
    _, val = iterators(str(tmp_path), aug_type=2)
    assert all(np.all(d.asnumpy()[:, 0, 16, 0] < d.asnumpy()[:, 0, 16, -1]) for d, _ in val)


def test_smaller_data_shape_crops_randomly_for_training_and_centrally_for_validation(
        coded_dir):
    train, val = iterators(coded_dir, aug_type=1, data_shape=28)
    data, _ = next(iter(train))
    assert data.shape == (10, 3, 28, 28)
    data, _ = next(iter(val))
    assert data.shape == (20, 3, 28, 28)
    with pytest.raises(UserError, match='larger than the 32x32'):
        iterators(coded_dir, data_shape=36)


def test_fashion_mnist_is_one_grey_channel_at_28(tmp_path):
    images = synthetic.smooth_images(30, 28, 28, channels=1)
    synthetic.write_record_dataset(str(tmp_path), 'fashion-mnist', (images, np.arange(30) % 10),
                                   (images[:12], np.arange(12) % 10))
    train, val = get_iterators('fashion-mnist', str(tmp_path), batch_size=8,
                               test_batch_size=5, aug_type=1, threads=1)
    data, label = next(iter(train))
    assert data.shape == (8, 1, 28, 28)
    got = batches(val)
    assert [len(d) for d, _ in got] == [5, 5, 2]
    spec = DATASETS['fashion-mnist']
    expected = (images[:12].astype(np.float32) - np.float32(spec['mean'][0])) \
        * (np.float32(1) / np.float32(spec['std'][0]))
    np.testing.assert_array_equal(np.concatenate([d for d, _ in got])[:, 0], expected)


def test_imagenet_iterators_scale_crop_and_jitter_inside_image_record_iter(tmp_path):
    synthetic.write_image_tree(str(tmp_path / 'src'), per_class=3)
    imagenet.convert(str(tmp_path / 'src'), str(tmp_path / 'out'), workers=1)
    train, val = get_iterators('imagenet', str(tmp_path / 'out'), batch_size=4,
                               test_batch_size=4, threads=2, num_classes=3)
    assert train.num_examples == 9 and len(train) == 3 and len(val) == 3
    for data, label in train:
        assert data.shape == (4, 3, 224, 224) and label.shape == (4,)
    sizes = [len(d) for d, _ in val]
    assert sizes == [4, 4, 1]
    first, again = next(iter(val))[0].asnumpy(), next(iter(val))[0].asnumpy()
    np.testing.assert_array_equal(first, again)  # no random jitter in validation
    assert abs(first.mean()) < 1.5


def test_unknown_options_are_errors_not_silently_ignored(coded_dir):
    with pytest.raises(TypeError, match='rand_mirorr'):
        record_iter(path_imgrec='x.rec', data_shape=(3, 32, 32), batch_size=1,
                    rand_mirorr=True)
    with pytest.raises(TypeError, match='shuffel'):
        get_iterators('cifar10', coded_dir, shuffel=True)
    with pytest.raises(UserError, match='augmentation type'):
        iterators(coded_dir, aug_type=3)
    with pytest.raises(UserError, match='unknown data set'):
        iterators(coded_dir, dataset='mnist')
    with pytest.raises(UserError, match='part index'):
        iterators(coded_dir, num_parts=2, part_index=2)
    with pytest.raises(UserError, match='fewer than the batch size 40'):
        iterators(coded_dir, num_parts=8, part_index=7, batch_size=40)


def test_a_batch_as_large_as_the_data_still_gives_exact_passes(coded_dir):
    train, val = iterators(coded_dir, batch_size=COUNT, test_batch_size=400)
    assert [len(d) for d, _ in batches(val)] == [COUNT]
    (data, _), = batches(train)
    assert sorted(ids_of(mx.nd.array(data))) == list(range(COUNT))


def _copy(coded_dir, tmp_path):
    out = str(tmp_path / 'copy')
    shutil.copytree(coded_dir, out)
    return out


def test_missing_records_or_index_are_one_line_user_errors(coded_dir, tmp_path):
    out = _copy(coded_dir, tmp_path)
    with pytest.raises(UserError, match='not found'):
        iterators(str(tmp_path / 'nowhere'))
    os.remove(os.path.join(out, 'test.idx'))
    with pytest.raises(UserError, match='has no index') as err:
        iterators(out)
    assert '\n' not in str(err.value)
    os.remove(os.path.join(out, 'test.rec'))
    with pytest.raises(UserError, match='not found'):
        iterators(out)


@pytest.mark.parametrize('with_json', [True, False])
def test_cut_short_records_are_refused(coded_dir, tmp_path, with_json):
    out = _copy(coded_dir, tmp_path)
    if not with_json:
        os.remove(os.path.join(out, 'dataset.json'))
    path = os.path.join(out, 'train.rec')
    with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) - 100)
    with pytest.raises(UserError, match='cut short'):
        iterators(out)


def test_an_index_of_another_file_is_refused(coded_dir, tmp_path):
    out = _copy(coded_dir, tmp_path)
    with open(os.path.join(out, 'train.idx')) as f:
        lines = f.readlines()
    with open(os.path.join(out, 'train.idx'), 'w') as f:
        f.writelines(lines[:-1])  # the last record is no longer indexed
    with pytest.raises(UserError, match='belongs to another file'):
        iterators(out)
    with open(os.path.join(out, 'train.idx'), 'w') as f:
        f.write('0\t5\n')
    with pytest.raises(UserError, match='index does not belong'):
        iterators(out)


@pytest.mark.parametrize('with_json', [True, False])
def test_labels_outside_the_classes_are_refused(tmp_path, with_json):
    images = colour_coded(20)
    synthetic.write_record_dataset(str(tmp_path), 'cifar10', (images, np.arange(20)),
                                   (images, np.arange(20) % 10))
    if not with_json:
        os.remove(os.path.join(str(tmp_path), 'dataset.json'))
    with pytest.raises(UserError, match=r'labels in \[0, 19\], outside \[0, 10\)'):
        iterators(str(tmp_path))
    iterators(str(tmp_path), num_classes=20)  # right with the right class count


def test_default_threads_suit_the_core_count():
    assert 1 <= default_threads('cifar10') <= 2
    assert 1 <= default_threads('imagenet') <= 16


def test_the_benchmark_reports_three_readers(capsys):
    from tools.bench import iterator as bench
    assert bench.main(['--count', '256', '--epochs', '1', '--batch-size', '32']) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split('  ')[0] for line in lines[1:]] == [
        'raw ImageRecordIter', 'wrapper, aug type 0', 'wrapper, aug type 1']
    assert all(float(line.split()[-2]) > 0 for line in lines[1:])
