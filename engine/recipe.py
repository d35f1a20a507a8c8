"""Opt-in training recipe options of gluon-cv and timm; every one is off by default, and
off, the engine runs the original recipe without calling into this module's batch code.

- --label-smoothing EPS: the training objective is the cross-entropy against the target
  (1 - EPS) * one_hot + EPS / classes.
- --mixup ALPHA: each batch trains on lam * x + (1 - lam) * x_flipped (the batch in reverse
  order) against the same mix of the targets, lam ~ Beta(ALPHA, ALPHA) drawn per batch from
  a generator seeded by (run seed, epoch), so a resumed run draws the same lams.
- --no-wd-bn: no weight decay on BatchNorm's gamma and beta and on biases.

What the log reports stays comparable with the original recipe's figures:
- the logged training loss is the cross-entropy against the UNsmoothed target (with mixup,
  lam * CE(label) + (1 - lam) * CE(flipped label)), the quantity logged without the options
  and the one the validation cross-entropy measures;
- the training accuracy under mixup counts a hit when the top prediction is the label with
  the larger weight (the image's own label when lam >= 0.5, else the flipped one's).
"""
import mxnet as mx
import numpy as np
from mxnet import gluon

import network

_SOFT_CROSS_ENTROPY = gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False)
_NO_DECAY_SUFFIXES = ('_gamma', '_beta', '_bias')


def exclude_from_weight_decay(net):
    """--no-wd-bn: weight-decay multiplier 0 on BatchNorm gamma/beta and biases."""
    names = []
    for name, param in net.collect_params().items():
        if name.endswith(_NO_DECAY_SUFFIXES) and param.grad_req != 'null':
            param.wd_mult = 0.0
            names.append(name)
    return names


def smoothed(one_hot, eps):
    return one_hot * (1.0 - eps) + eps / one_hot.shape[1]


class BatchMixer:
    """Label smoothing and mixup of one run; make_mixer() gives None when both are off."""

    def __init__(self, num_classes, label_smoothing, mixup_alpha):
        self.num_classes = num_classes
        self.eps, self.alpha = label_smoothing, mixup_alpha
        self.rng = None

    def start_epoch(self, seed, epoch):
        self.rng = np.random.default_rng([seed, epoch])

    def mix(self, data, label):
        """(data, objective targets, reported targets, labels for the accuracy)."""
        one_hot = mx.nd.one_hot(label, self.num_classes)
        if self.alpha > 0:
            lam = float(self.rng.beta(self.alpha, self.alpha))
            data = lam * data + (1.0 - lam) * mx.nd.flip(data, axis=0)
            flipped = mx.nd.flip(one_hot, axis=0)
            one_hot = lam * one_hot + (1.0 - lam) * flipped
            if lam < 0.5:
                label = mx.nd.flip(label, axis=0)
        return data, smoothed(one_hot, self.eps), one_hot, label


def make_mixer(args):
    if args.label_smoothing == 0 and args.mixup == 0:
        return None
    return BatchMixer(args.num_classes, args.label_smoothing, args.mixup)


def soft_training_loss(out, target, reported_target, ensemble_loss='sum'):
    """As engine.loss.training_loss, against dense targets: (the per-image loss to
    back-propagate, the per-image cross-entropy against `reported_target` to report)."""
    outs = network.outputs_of(out)
    objective = mx.nd.add_n(*[_SOFT_CROSS_ENTROPY(o, target) for o in outs])
    reported = mx.nd.add_n(*[_SOFT_CROSS_ENTROPY(o, reported_target) for o in outs])
    if ensemble_loss == 'mean' or len(outs) == 1:
        objective = objective / len(outs)
    return objective, reported / len(outs)
