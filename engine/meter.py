"""Training figures of an epoch: sums kept on the devices, read only when a line is logged."""
import mxnet as mx
import numpy as np

from common.errors import UserError

# What the meters sum, and what dist workers add up (in this order).
SUM_FIELDS = ('n', 'loss', 'top1', 'top5')


def cross_entropy_sum(logits, labels):
    """The summed cross-entropy of one batch (float32 logits), as the log's
    Validation-cross-entropy adds it up: in float32 over the batch, whose sums the epoch
    then adds in float64. tools/evaluate.py sums the same way to print the same digits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_prob = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_prob[np.arange(len(labels)), labels].sum()


def means(sums, top5):
    """Sums (over one worker or all) -> mean loss, accuracy and top-5 accuracy."""
    if sums['n'] == 0:
        raise UserError('no images to score: the record file or its part is empty')
    figures = {key: sums[key] / sums['n'] for key in ('loss', 'top1')}
    if top5:
        figures['top5'] = sums['top5'] / sums['n']
    return figures


class EpochMeter:
    """Loss and hit sums of the epoch and of the window since the last log line."""

    def __init__(self, top5):
        self.top5 = top5
        self.epoch = self._zero()
        self.window = self._zero()

    @staticmethod
    def _zero():
        return {'n': 0, 'loss': [], 'top1': [], 'top5': []}

    def add(self, losses, outputs, labels):
        """One batch: per-device losses, predictions and labels (device arrays)."""
        for meter in (self.epoch, self.window):
            meter['n'] += sum(label.shape[0] for label in labels)
        for loss, out, label in zip(losses, outputs, labels):
            sums = {'loss': loss.sum(),
                    'top1': (out.argmax(axis=1) == label).sum()}
            if self.top5:
                sums['top5'] = (mx.nd.topk(out, k=5) == label.reshape((-1, 1))).sum()
            for key, value in sums.items():
                self.window[key].append(value)
                self.epoch[key].append(value)

    @staticmethod
    def _sums(meter):
        """The meter's sums as numbers (the meter stays as it is)."""
        sums = {'n': float(meter['n'])}
        for key in SUM_FIELDS[1:]:
            sums[key] = float(sum(v.asscalar() for v in meter[key]))
        return sums

    def next_window(self):
        """The means of the window so far; the next window starts empty."""
        values = means(self._sums(self.window), self.top5)
        self.window = self._zero()
        return values

    def read_epoch(self):
        return means(self._sums(self.epoch), self.top5)

    def epoch_sums(self):
        return self._sums(self.epoch)
