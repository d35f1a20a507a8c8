"""--ema DECAY: an exponential moving average of the weights, kept beside the trained ones.

After every update, for every parameter of the network:

    average = DECAY * average + (1 - DECAY) * weight

starting from the weights the run starts with. The average never feeds back into training:
the optimizer sees and updates the raw weights only.

BatchNorm's running mean and variance are averaged the same way (as timm's ModelEmaV2
does). They are not learnt but measured, and the measurement belongs to the weights that
produced the activations; averaging them with the same decay keeps them in step with the
averaged weights (both lag the raw ones alike), at no cost. Re-measuring them for the
averaged weights would take a pass over the training data every epoch. With several
devices, the first device's statistics are averaged.

The end of each epoch evaluates the averaged weights as well (`Validation-ema-*` lines, the
metrics' `ema_val_*` figures); a checkpoint saves them as `<prefix>-<epoch>.ema.params`, a
weights file like `.params` (structural names, loadable with `net.load_parameters`).
"""
from contextlib import contextmanager

import mxnet as mx

from common.errors import UserError


class WeightAverage:
    def __init__(self, net, decay, ctx):
        self.decay = decay
        self.ctx = ctx
        self.params = net._collect_params_with_prefix()   # the names .params files use
        self.averages = {name: param.data(ctx).copy() for name, param in self.params.items()}

    def update(self):
        keep, take = self.decay, 1.0 - self.decay
        for name, param in self.params.items():
            average = self.averages[name]
            average[:] = keep * average + take * param.data(self.ctx)

    def state(self):
        """The averages on the CPU, by structural name, to save."""
        return {name: average.as_in_context(mx.cpu()) for name, average in self.averages.items()}

    def restore(self, arrays, path):
        """Take the averages of a checkpoint (checked against the network: `path` names the
        file in the message)."""
        for name, average in self.averages.items():
            if name not in arrays or arrays[name].shape != average.shape:
                raise UserError('the averaged weights %s do not fit the network (%s): a '
                                'checkpoint of another network?' % (path, name))
        for name, average in self.averages.items():
            average[:] = arrays[name].as_in_context(self.ctx)

    @contextmanager
    def swapped_in(self):
        """The network holds the averages (on every device) inside the block and its own
        weights again, exactly, after it."""
        saved = {name: [array.copy() for array in param.list_data()]
                 for name, param in self.params.items()}
        try:
            for name, param in self.params.items():
                param.set_data(self.averages[name])
            yield
        finally:
            for name, param in self.params.items():
                for array, copy in zip(param.list_data(), saved[name]):
                    array[:] = copy
