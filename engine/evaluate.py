"""Scoring a network on the validation iterator (every image once)."""
import mxnet as mx
import numpy as np
from mxnet import gluon

import network
from engine.meter import cross_entropy_sum


def evaluate(net, val_it, contexts, batch_size, top5):
    """Sums of cross-entropy, top-1 and top-5 hits over every validation image once.

    A short last batch is padded to the full batch so the static graph keeps its shape;
    the padding rows are dropped before scoring.
    """
    sums = dict(n=0.0, loss=0.0, top1=0.0, top5=0.0)
    for data, label in val_it:
        n = data.shape[0]
        if n < batch_size:
            pad = mx.nd.zeros((batch_size - n,) + data.shape[1:], dtype=data.dtype)
            data = mx.nd.concat(data, pad, dim=0)
        parts = gluon.utils.split_and_load(data, contexts, even_split=False)
        logits = np.concatenate([network.mean_prediction(net(x)).asnumpy()
                                 for x in parts])[:n]
        labels = label.asnumpy().astype(np.int64)
        sums['loss'] += cross_entropy_sum(logits, labels)
        sums['top1'] += (logits.argmax(axis=1) == labels).sum()
        if top5:
            best5 = np.argsort(-logits, axis=1)[:, :5]
            sums['top5'] += (best5 == labels[:, None]).any(axis=1).sum()
        sums['n'] += n
    return sums
