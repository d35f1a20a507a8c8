"""The data sets the training scripts know, with the original's per-dataset settings.

Mean and std are per channel on 0-255 pixels (docs/training.md); `channels` is what the
networks see; `train_rec`/`val_rec` are the record files data.prepare writes.
Fashion-MNIST stays one grey channel at 28x28: the CIFAR-style networks infer their input
channels and end in global average pooling, so no resizing is needed.
"""

DATASETS = {
    'cifar10': dict(num_classes=10, num_examples=50000, num_test=10000, channels=3,
                    data_shape=32, mean=(125.307, 122.950, 113.865),
                    std=(62.993, 62.089, 66.705), aug_type=1, num_epochs=400,
                    min_test_batch=400, train_rec='train.rec', val_rec='test.rec'),
    'cifar100': dict(num_classes=100, num_examples=50000, num_test=10000, channels=3,
                     data_shape=32, mean=(129.304, 124.070, 112.434),
                     std=(68.170, 65.392, 70.418), aug_type=1, num_epochs=400,
                     min_test_batch=400, train_rec='train.rec', val_rec='test.rec'),
    'svhn': dict(num_classes=10, num_examples=604388, num_test=26032, channels=3,
                 data_shape=32, mean=(111.609, 113.161, 120.565),
                 std=(50.498, 51.259, 50.244), aug_type=0, num_epochs=40,
                 min_test_batch=280, train_rec='train.rec', val_rec='test.rec'),
    # Mean and std of the 60,000 official training images.
    'fashion-mnist': dict(num_classes=10, num_examples=60000, num_test=10000, channels=1,
                          data_shape=28, mean=(72.940,), std=(90.021,), aug_type=1,
                          num_epochs=40, min_test_batch=400, train_rec='train.rec',
                          val_rec='test.rec'),
    'imagenet': dict(num_classes=1000, num_examples=1281167, num_test=50000, channels=3,
                     data_shape=224, mean=(123.370, 112.757, 99.406),
                     std=(68.998, 66.093, 68.292), aug_type=1, num_epochs=100,
                     min_test_batch=0, train_rec='imagenet_train.rec',
                     val_rec='imagenet_val.rec'),
}


def dataset_names():
    return sorted(DATASETS)
