"""The data sets the training scripts know: the one table of per-dataset facts and recipe
defaults, the original's.

Mean and std are per channel on 0-255 pixels (docs/training.md); `channels` is what the
networks see; `train_rec`/`val_rec` are the record files data.prepare writes (and the
defaults of --train-dataset/--val-dataset).
Fashion-MNIST stays one grey channel at 28x28: the CIFAR-style networks infer their input
channels and end in global average pooling, so no resizing is needed.

The recipe defaults fill the training flags a user leaves out (engine.flags.resolve_defaults):
`num_epochs`, `batch_size`, `min_test_batch` (the test batch is at least this and at least
the batch size, as the original's options.py set it; ImageNet: the batch size), `lr_steps`
(None: every `lr_step_every` epochs where the entry has one, as the original's
train_imagenet.py, else 1/2, 3/4 and 7/8 of the epochs), `log_iters`, `checkpoint_epochs`
(None: an eighth of the epochs) and `aug_type`.
The small data sets keep the 2016 train_model.py's recipe; ImageNet the final
train_imagenet.py's (batch 256, 120 epochs, the rate divided by 10 every 30 epochs).
"""

_SMALL_RECIPE = dict(batch_size=64, lr_steps=None, log_iters=50, checkpoint_epochs=None,
                     train_rec='train.rec', val_rec='test.rec')

DATASETS = {
    'cifar10': dict(_SMALL_RECIPE, num_classes=10, num_examples=50000, num_test=10000,
                    channels=3, data_shape=32, mean=(125.307, 122.950, 113.865),
                    std=(62.993, 62.089, 66.705), aug_type=1, num_epochs=400,
                    min_test_batch=400),
    'cifar100': dict(_SMALL_RECIPE, num_classes=100, num_examples=50000, num_test=10000,
                     channels=3, data_shape=32, mean=(129.304, 124.070, 112.434),
                     std=(68.170, 65.392, 70.418), aug_type=1, num_epochs=400,
                     min_test_batch=400),
    'svhn': dict(_SMALL_RECIPE, num_classes=10, num_examples=604388, num_test=26032,
                 channels=3, data_shape=32, mean=(111.609, 113.161, 120.565),
                 std=(50.498, 51.259, 50.244), aug_type=0, num_epochs=40,
                 min_test_batch=280),
    # Mean and std of the 60,000 official training images.
    'fashion-mnist': dict(_SMALL_RECIPE, num_classes=10, num_examples=60000, num_test=10000,
                          channels=1, data_shape=28, mean=(72.940,), std=(90.021,),
                          aug_type=1, num_epochs=40, min_test_batch=400),
    'imagenet': dict(num_classes=1000, num_examples=1281167, num_test=50000, channels=3,
                     data_shape=224, mean=(123.370, 112.757, 99.406),
                     std=(68.998, 66.093, 68.292), aug_type=1, num_epochs=120,
                     batch_size=256, min_test_batch=0, lr_steps=None, lr_step_every=30,
                     log_iters=10,
                     checkpoint_epochs=5, train_rec='imagenet_train.rec',
                     val_rec='imagenet_val.rec'),
}


def dataset_names():
    return sorted(DATASETS)
