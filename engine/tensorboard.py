"""--tensorboard DIR: the training figures as TensorBoard scalars, through tensorboardX
(mxboard does not work with the pinned protobuf). tensorboardX is imported only when the flag
is given, so a training install needs none.

Tags: train/loss and train/top1 per log window and per epoch (epoch/...), lr per window,
val/loss, val/top1 (and val/top5) per epoch; the step is the global batch count, per epoch
the number of finished epochs.
"""
import os
import shutil

from common.errors import UserError


def summary_writer_class():
    """tensorboardX's SummaryWriter, or a UserError that says how to install it."""
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        raise UserError('--tensorboard needs tensorboardX: pip install -r '
                        'requirements-tensorboard.txt')
    return SummaryWriter


class ScalarWriter:
    def __init__(self, log_dir):
        self.log_dir = log_dir
        self.existing = set(os.listdir(log_dir)) if os.path.isdir(log_dir) else None
        try:
            self.writer = summary_writer_class()(log_dir)
        except OSError as err:
            raise UserError('cannot write TensorBoard events to %s (%s)'
                            % (log_dir, err.strerror or err)) from None

    def window(self, num_update, lr, loss, top1):
        self.writer.add_scalar('train/loss', loss, num_update)
        self.writer.add_scalar('train/top1', top1, num_update)
        self.writer.add_scalar('lr', lr, num_update)

    def epoch(self, result):
        done = result['epoch'] + 1
        for tag, key in (('epoch/train_loss', 'train_loss'), ('epoch/train_top1', 'train_acc'),
                         ('val/loss', 'val_loss'), ('val/top1', 'val_acc'),
                         ('val/top5', 'val_top5')):
            if result.get(key) is not None:
                self.writer.add_scalar(tag, result[key], done)
        self.writer.flush()

    def close(self):
        self.writer.close()

    def discard(self):
        """Close and remove what this writer created (a run refused at its start)."""
        self.writer.close()
        if self.existing is None:
            shutil.rmtree(self.log_dir, ignore_errors=True)
            return
        for name in set(os.listdir(self.log_dir)) - self.existing:
            if name.startswith('events.out.tfevents.'):
                os.remove(os.path.join(self.log_dir, name))
