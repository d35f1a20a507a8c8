"""The learning-rate schedule: multi-step, stepped per batch as the original's scheduler."""


def lr_step_updates(step_epochs, epoch_size):
    """Batch counts after which the learning rate drops (epochs -> updates)."""
    return [e * epoch_size for e in step_epochs if e > 0]


def lr_at(num_update, base_lr, factor, step_updates):
    """Learning rate of the batch that follows `num_update` finished batches."""
    drops = sum(1 for step in step_updates if num_update >= step)
    return base_lr * factor ** drops


class StepSchedule:
    """The rate of every batch of a run, counted from 0 over the whole run."""

    def __init__(self, base_lr, factor, step_epochs, epoch_size):
        self.base_lr, self.factor = base_lr, factor
        self.epoch_size = epoch_size
        self.step_updates = lr_step_updates(step_epochs, epoch_size)

    def lr_at(self, num_update):
        return lr_at(num_update, self.base_lr, self.factor, self.step_updates)
