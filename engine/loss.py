"""The training loss: cross-entropy, and for the ensemble, of every component.

The original never trained its ensemble (its 8 heads need labels its iterator did not give).
MXNet's usual way to train several outputs, a group of 8 softmax outputs, back-propagates
each component's full cross-entropy: the SUM of the 8 losses, as if 8 weight-shared
networks were trained together. That is the default here (--ensemble-loss sum); `mean`
divides it by 8 (the port's earlier choice: every component gets 1/8 of the gradient).
"""
import mxnet as mx
from mxnet import gluon

import network

_CROSS_ENTROPY = gluon.loss.SoftmaxCrossEntropyLoss()


def training_loss(out, label, ensemble_loss='sum'):
    """(the per-image loss to back-propagate, the per-image cross-entropy to report).

    For one output both are its cross-entropy; for the ensemble the reported figure is the
    components' mean in either mode, so that logs of both modes compare.
    """
    outs = network.outputs_of(out)
    if len(outs) == 1:
        loss = _CROSS_ENTROPY(outs[0], label)
        return loss, loss
    mean = mx.nd.add_n(*[_CROSS_ENTROPY(o, label) for o in outs]) / len(outs)
    if ensemble_loss == 'mean':
        return mean, mean
    return mean * len(outs), mean
