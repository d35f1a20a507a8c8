"""Fixture logs written the way this port's engine and the 2016 code wrote them.

This port's: through engine.logs' formatters, with the metrics file the engine writes beside
the log. The 2016 code's: by hand (no Train-cross-entropy, a Python 2 Namespace, a metric
reset at every batch line).
"""
import argparse
import os

from engine import runfiles
from engine.logs import append_metrics, batch_line, epoch_lines, head_lines, log_prefix

STAMP = '2023-05-04 10:11:12,345 '
STAMP_2016 = '2016-11-25 11:21:06,123 '
EPOCHS = 4


def write_port_log(folder, name, final_val_acc, final_train_acc, epochs_done=EPOCHS,
                   num_epochs=EPOCHS, nodes=(None,), exp_name=None, args_extra=None):
    """A log and its metrics file as this port's engine writes them."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    network, rest = name.split('_d', 1)
    depth, widen = rest.split('_', 1)[0].split('w')
    fields = dict(network=network, depth=int(depth), widen_factor=int(widen),
                  num_epochs=num_epochs, exp_name=exp_name, gpus='0', lr_steps=[2, 3])
    fields.update(args_extra or {})
    if num_epochs is None:
        del fields['num_epochs']
    lines = [STAMP + line for line in head_lines(path, argparse.Namespace(**fields))]
    metrics = []
    for epoch in range(epochs_done):
        last = epoch == EPOCHS - 1
        for rank in nodes:
            prefix = STAMP + ('' if rank is None else log_prefix(rank, 2))
            shift = 0.0 if rank in (None, 0) else 0.05   # another node, other numbers
            for batch in (50, 100):
                lines.append(prefix + batch_line(epoch, batch, 1234.5, 1.5, 1.6 - 0.1 * epoch,
                                                 60.0, 55.0 + epoch))
            val_acc = final_val_acc if last else 0.5 + 0.1 * epoch
            train_acc = final_train_acc if last else 0.6 + 0.1 * epoch
            lines += [prefix + line for line in epoch_lines(
                epoch, train_acc - shift, 1.0 / (epoch + 1), 61.25, 1.2 / (epoch + 1),
                val_acc - shift)]
        metrics.append(dict(epoch=epoch, train_acc=train_acc, train_loss=1.0 / (epoch + 1),
                            time_cost=61.25, val_loss=1.2 / (epoch + 1), val_acc=val_acc,
                            val_top5=None, lr=0.1))   # rank 0 alone writes them
    with open(path, 'w', errors='surrogateescape') as out:   # names as the file system has them
        out.write('\n'.join(lines) + '\n')
    for figures in metrics:
        append_metrics(runfiles.metrics_path(path), figures)
    return path


def write_2016_log(folder, name, final_val_acc, final_batch_top1, epochs_done=EPOCHS,
                   train_accuracy_lines=True):
    """A log of the 2016 code: Python 2 Namespace, multi-line head, no Train-cross-entropy.

    The training accuracy is the running mean of the last batch line, final_batch_top1
    percent. The original's own logs had no Train-accuracy lines (train_accuracy_lines=False);
    logs of MXNet's stock callback do, and there it covers only the batches after the last
    batch line (here a misleading 0.5), so a reader must not take it.
    """
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    lines = [
        STAMP_2016 + path,
        STAMP_2016 + "start with arguments Namespace(aug_type=1, batch_size=64, "
        "checkpoint_epochs=50, data_dir='../../../dataset/cifar10/', data_shape=32, "
        "dataset='cifar10', depth=56L, exp_name=None, gpus=u'0,1', kv_store='device', "
        "load_epoch=None, log_dir='./snapshot/cifar10/', lr=0.1, lr_factor=0.1, "
        "lr_steps=[2, 3, 3], mean_rgb=[125.307, 122.95, 113.865], model_args={}, "
        "network='resnet', num_classes=10, num_epochs=%d, rand_seed=1480042866L, "
        "std_rgb=[62.993, 62.089, 66.705], widen_factor=1)" % EPOCHS,
        STAMP_2016 + 'Using gpus 0,1 from:',
        'GPU 0: Tesla K80 (UUID: GPU-0a1b2c3d)',
        'GPU 1: Tesla K80 (UUID: GPU-4e5f6a7b)',
        '',
        STAMP_2016 + 'training strategy: lr=0.100000, step=[2, 3, 3]',
    ]
    for epoch in range(epochs_done):
        last = epoch == EPOCHS - 1
        top1 = final_batch_top1 if last else 50.0 + 10 * epoch
        lines += [
            STAMP_2016 + 'Epoch[%d] Batch [50]\tSpeed: 1234\tloss: 2.1034(2.1034)\t'
                         'top1: 21.5625(21.5625)' % epoch,
            STAMP_2016 + 'Epoch[%d] Batch [750]\tSpeed: 1301\tloss: 0.5000(%.4f)\t'
                         'top1: 80.0000(%.4f)' % (epoch, 0.9 - 0.1 * epoch, top1),
            STAMP_2016 + 'Epoch[%d] Resetting Data Iterator' % epoch]
        if train_accuracy_lines:
            lines.append(STAMP_2016 + 'Epoch[%d] Train-accuracy=0.500000' % epoch)
        lines += [
            STAMP_2016 + 'Epoch[%d] Time cost=61.234' % epoch,
            STAMP_2016 + 'Saved checkpoint to "weights/x-%04d.params"' % (epoch + 1),
            STAMP_2016 + 'Epoch[%d] Validation-cross-entropy=%f' % (epoch, 1.0 / (epoch + 1)),
            STAMP_2016 + 'Epoch[%d] Validation-accuracy=%f'
            % (epoch, final_val_acc if last else 0.4 + 0.1 * epoch),
        ]
    with open(path, 'w', errors='surrogateescape') as out:   # names as the file system has them
        out.write('\n'.join(lines) + '\n')
    return path
