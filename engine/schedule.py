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
import math

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


# ---------------------------------------------------------------- opt-in modes (--lr-mode)

def cosine_lr(num_update, base_lr, start, last):
    """Half a cosine from base_lr at batch `start` down to 0 at batch `last` (and after)."""
    if num_update >= last:
        return 0.0
    position = (num_update - start) / float(last - start)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * position))


class RecipeSchedule:
    """--lr-mode cosine, or --warmup-epochs W before either mode; positions count batches
    over the whole run (the global update count), so a resumed run takes up the same curve.

    Warm-up: batch k < W*epoch_size trains at base_lr * (k+1) / (W*epoch_size), rising
    linearly to the full rate. Cosine: from the end of the warm-up the rate falls as half a
    cosine and reaches 0 at the last batch, num_epochs*epoch_size - 1 (the schedule's epoch
    size: batches the iterator yields beyond it train at 0). Step: the multi-step rates of
    StepSchedule after the warm-up.
    """

    def __init__(self, mode, base_lr, factor, step_epochs, epoch_size, num_epochs,
                 warmup_epochs=0):
        self.mode, self.base_lr, self.epoch_size = mode, base_lr, epoch_size
        self.warmup_updates = warmup_epochs * epoch_size
        self.last_update = num_epochs * epoch_size - 1
        self.steps = StepSchedule(base_lr, factor, step_epochs, epoch_size)
        if mode == 'cosine' and self.warmup_updates > self.last_update:
            raise UserError('--warmup-epochs %d leaves no epoch for the cosine schedule of %d '
                            'epochs' % (warmup_epochs, num_epochs))

    def lr_at(self, num_update):
        if num_update < self.warmup_updates:
            return self.base_lr * (num_update + 1) / self.warmup_updates
        if self.mode == 'step':
            return self.steps.lr_at(num_update)
        return cosine_lr(num_update, self.base_lr, self.warmup_updates, self.last_update)

    def describe(self):
        """What the rate does, in words, for the log."""
        parts = []
        if self.warmup_updates:
            parts.append('linear warm-up over batches 0-%d to %g'
                         % (self.warmup_updates - 1, self.base_lr))
        if self.mode == 'cosine':
            parts.append('cosine from %g at batch %d to 0 at batch %d'
                         % (self.base_lr, self.warmup_updates, self.last_update))
        else:
            parts.append('then steps x%g after batches %s' % (
                self.steps.factor, ', '.join(map(str, self.steps.step_updates)) or 'none'))
        return 'learning rate per batch: ' + '; '.join(parts)

    def change_line(self, epoch, lr, num_update, batch):
        """The log line for a new rate, or None: a smooth part (warm-up, cosine) changes it
        every batch, so there only the first batch of an epoch says where it stands."""
        smooth = num_update < self.warmup_updates or self.mode == 'cosine'
        if smooth and batch != 0:
            return None
        return 'Epoch[%d] learning rate %g at batch %d (batch %d of the epoch, %s)' % (
            epoch, lr, num_update, batch, self.phase(num_update))

    def phase(self, num_update):
        if num_update < self.warmup_updates:
            return 'warm-up'
        return self.mode


def make_schedule(args, epoch_size):
    """The schedule the flags ask for: the original's StepSchedule unless --lr-mode cosine
    or --warmup-epochs is given."""
    mode, warmup = getattr(args, 'lr_mode', 'step'), getattr(args, 'warmup_epochs', 0)
    if mode == 'step' and not warmup:
        return StepSchedule(args.lr, args.lr_factor, args.lr_step_epochs, epoch_size)
    return RecipeSchedule(mode, args.lr, args.lr_factor, args.lr_step_epochs, epoch_size,
                          args.num_epochs, warmup)
