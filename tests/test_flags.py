"""The flags and their per-dataset defaults (engine/flags.py, as train_model.py uses them)."""
import os

import pytest

import train_model
from common.errors import UserError


def parse(*argv):
    return train_model.parse(list(argv))


def test_default_lr_steps_are_half_three_quarters_seven_eighths():
    assert parse('--num-epochs', '400').lr_step_epochs == [200, 300, 350]
    assert parse('--lr-steps', '100,150').lr_step_epochs == [100, 150]
    with pytest.raises(UserError, match='comma-separated'):
        parse('--lr-steps', 'ten')


@pytest.mark.parametrize('dataset, epochs, aug, test_batch, classes, shape', [
    ('cifar10', 400, 1, 400, 10, 32),
    ('cifar100', 400, 1, 400, 100, 32),
    ('svhn', 40, 0, 280, 10, 32),
    ('fashion-mnist', 40, 1, 400, 10, 28),
])
def test_per_dataset_defaults(dataset, epochs, aug, test_batch, classes, shape):
    args = parse('--dataset', dataset)
    assert (args.num_epochs, args.aug_type, args.test_batch_size, args.num_classes,
            args.data_shape) == (epochs, aug, test_batch, classes, shape)
    assert args.data_dir == os.path.join('data', dataset)
    assert args.checkpoint_epochs == epochs // 8
    # anything given on the command line wins
    args = parse('--dataset', dataset, '--num-epochs', '3', '--aug-type', '2',
                 '--num-classes', '7')
    assert (args.num_epochs, args.aug_type, args.num_classes, args.checkpoint_epochs) == (
        3, 2, 7, 1)


@pytest.mark.parametrize('dataset, batch, test_batch', [
    ('cifar10', 64, 400), ('cifar10', 512, 512), ('svhn', 300, 300), ('svhn', 128, 280),
    ('imagenet', 256, 256), ('imagenet', 96, 96)])
def test_the_test_batch_is_at_least_the_training_batch(dataset, batch, test_batch):
    """As the original's options.py (CIFAR 400 unless the batch is larger, SVHN 280 likewise)
    and train_imagenet.py (the training batch)."""
    args = parse('--dataset', dataset, '--batch-size', str(batch), '--network',
                 'symbol_cross' if dataset == 'imagenet' else 'cross')
    assert args.test_batch_size == test_batch
    args = parse('--dataset', dataset, '--batch-size', str(batch), '--test-batch-size', '8',
                 '--network', 'symbol_cross' if dataset == 'imagenet' else 'cross')
    assert args.test_batch_size == 8   # given: kept


@pytest.mark.parametrize('epochs, steps', [(120, [30, 60, 90]), (100, [30, 60, 90]),
                                           (61, [30, 60]), (30, []), (200, [30, 60, 90, 120,
                                                                           150, 180])])
def test_imagenet_steps_every_30_epochs_up_to_the_last(epochs, steps):
    """As the original's train_imagenet.py: range(30, num_epochs, 30)."""
    import train_imagenet
    assert train_imagenet.parse(['--num-epochs', str(epochs)]).lr_step_epochs == steps


def test_both_training_scripts_take_imagenet_defaults_from_one_table():
    """train_model.py --dataset imagenet and train_imagenet.py read the same recipe: the
    final 2016 train_imagenet.py's (120 epochs, the rate / 10 every 30, batch 256)."""
    import train_imagenet
    fields = ('num_epochs', 'lr_step_epochs', 'batch_size', 'test_batch_size', 'log_iters',
              'checkpoint_epochs', 'train_dataset', 'val_dataset', 'aug_type', 'data_shape')
    ours = parse('--dataset', 'imagenet', '--network', 'symbol_cross')
    theirs = train_imagenet.parse([])
    assert [getattr(ours, f) for f in fields] == [getattr(theirs, f) for f in fields] == [
        120, [30, 60, 90], 256, 256, 10, 5, 'imagenet_train.rec', 'imagenet_val.rec', 1, 224]
    assert train_model.logs_top5(ours) and train_model.logs_top5(theirs)
    assert not train_model.logs_top5(parse('--dataset', 'cifar100'))
    assert not train_model.logs_top5(parse('--dataset', 'imagenet', '--num-classes', '4'))


def test_prepare_and_training_agree_on_the_data_folder_from_any_folder(tmp_path, monkeypatch):
    # both are relative to the working directory: run from one folder, they meet
    from data import prepare
    monkeypatch.chdir(tmp_path)
    for dataset in ('fashion-mnist', 'cifar10'):
        ours = os.path.abspath(parse('--dataset', dataset).data_dir)
        assert ours == os.path.abspath(prepare.default_out_dir(dataset))
        assert ours == str(tmp_path / 'data' / dataset)


@pytest.mark.parametrize('dataset, count', [('cifar10', 50000), ('cifar100', 50000),
                                            ('svhn', 604388)])
def test_num_examples_defaults_to_the_originals_presets(dataset, count):
    assert parse('--dataset', dataset).num_examples == count
    assert parse('--dataset', dataset, '--num-examples', '1000').num_examples == 1000


def test_num_examples_of_fashion_mnist_is_its_record_count(tmp_path):
    from helpers import write_fashion_slice
    folder = write_fashion_slice(str(tmp_path), 37, 5)
    assert parse('--dataset', 'fashion-mnist', '--data-dir', folder).num_examples == 37
    with pytest.raises(UserError, match='--num-examples must be at least 1'):
        parse('--dataset', 'fashion-mnist', '--num-examples', '0')
