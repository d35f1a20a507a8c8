"""The learning-rate schedule: multi-step, stepped per batch as the original's scheduler.

The original used MXNet's MultiFactorScheduler with steps at `epoch * epoch_size` updates,
where `epoch_size = num_examples / batch_size` in Python 2 integer division, and lowered
the rate for update k (counted from 1 over the whole run) once k > step. The iterator yields
ceil(num_examples / batch_size) batches per epoch, so a step "at epoch E" falls at the
batch E * floor(num_examples / batch_size) (counted from 0), a few batches before the epoch
ends: this port steps exactly there. With several dist workers, each sees 1/workers of the
images; as MXNet's own image-classification examples, the epoch size is divided by the
number of workers, so the steps fall in the same epochs as on one machine.
"""
from common.errors import UserError


def epoch_size(num_examples, batch_size, num_workers=1):
    """Updates per epoch of the schedule: floor(num_examples / (batch_size * workers))."""
    size = num_examples // (batch_size * num_workers)
    if size < 1:
        raise UserError('--num-examples %d is less than one batch (%d images x %d workers); '
                        'pass the number of training images' % (num_examples, batch_size,
                                                                 num_workers))
    return size


def lr_step_updates(step_epochs, epoch_size):
    """Batch counts after which the learning rate drops (epochs -> updates)."""
    return [e * epoch_size for e in step_epochs if e > 0]


def lr_at(num_update, base_lr, factor, step_updates):
    """Learning rate of the batch that follows `num_update` finished batches."""
    drops = sum(1 for step in step_updates if num_update >= step)
    return base_lr * factor ** drops


class StepSchedule:
    """The rate of every batch of a run, counted from 0 over the whole run.

    `epoch_size` is the schedule's (see epoch_size()), not the iterator's batch count.
    """

    def __init__(self, base_lr, factor, step_epochs, epoch_size):
        self.base_lr, self.factor = base_lr, factor
        self.epoch_size = epoch_size
        self.step_updates = lr_step_updates(step_epochs, epoch_size)

    def lr_at(self, num_update):
        return lr_at(num_update, self.base_lr, self.factor, self.step_updates)
