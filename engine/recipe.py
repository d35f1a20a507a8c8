"""Opt-in training recipe options of gluon-cv and timm; every one is off by default, and
off, the engine runs the original recipe without calling into this module's batch code.

- --label-smoothing EPS: the training objective is the cross-entropy against the target
  (1 - EPS) * one_hot + EPS / classes.
- --mixup ALPHA: each batch trains on lam * x + (1 - lam) * x_flipped (the batch in reverse
  order) against the same mix of the targets, lam ~ Beta(ALPHA, ALPHA) drawn per batch from
  a generator seeded by (run seed, epoch), so a resumed run draws the same lams.
- --cutmix ALPHA: each batch gets a box of the flipped batch pasted in (the same box in every
  image), and trains against the targets mixed by area: lam ~ Beta(ALPHA, ALPHA) sets the
  box's sides to sqrt(1 - lam) of the image's, centred on a uniformly drawn pixel and cut off
  at the borders; lam is then 1 - (the box's area / the image's), as in the CutMix paper
  and timm. The same seeded generator draws lam and the centre.
- --no-wd-bn: no weight decay on BatchNorm's gamma and beta and on biases.

What the log reports stays comparable with the original recipe's figures:
- the logged training loss is the cross-entropy against the UNsmoothed target (with mixup,
  lam * CE(label) + (1 - lam) * CE(flipped label)), the quantity logged without the options
  and the one the validation cross-entropy measures;
- the training accuracy under mixup and cutmix counts a hit when the top prediction is the
  label with the larger weight (the image's own label when lam >= 0.5, else the flipped
  one's).
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


def cutmix_box(lam, height, width, rng):
    """(top, bottom, left, right) of the pasted box for a drawn `lam`, and the lam its
    clipped area gives (the weight of the image's own target)."""
    ratio = np.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    centre_y, centre_x = int(rng.integers(height)), int(rng.integers(width))
    top, bottom = np.clip([centre_y - cut_h // 2, centre_y + cut_h // 2], 0, height)
    left, right = np.clip([centre_x - cut_w // 2, centre_x + cut_w // 2], 0, width)
    area = (bottom - top) * (right - left)
    return (int(top), int(bottom), int(left), int(right)), 1.0 - area / float(height * width)


class BatchMixer:
    """Label smoothing, mixup and cutmix of one run; make_mixer() gives None when all are
    off."""

    def __init__(self, num_classes, label_smoothing, mixup_alpha, cutmix_alpha=0.0):
        self.num_classes = num_classes
        self.eps, self.alpha, self.cutmix = label_smoothing, mixup_alpha, cutmix_alpha
        self.rng = None

    def start_epoch(self, seed, epoch):
        self.rng = np.random.default_rng([seed, epoch])

    def mix(self, data, label):
        """(data, objective targets, reported targets, labels for the accuracy)."""
        one_hot = mx.nd.one_hot(label, self.num_classes)
        if self.alpha > 0 or self.cutmix > 0:
            if self.alpha > 0:
                lam = float(self.rng.beta(self.alpha, self.alpha))
                data = lam * data + (1.0 - lam) * mx.nd.flip(data, axis=0)
            else:
                data, lam = self._cut_and_paste(data)
            flipped = mx.nd.flip(one_hot, axis=0)
            one_hot = lam * one_hot + (1.0 - lam) * flipped
            if lam < 0.5:
                label = mx.nd.flip(label, axis=0)
        return data, smoothed(one_hot, self.eps), one_hot, label

    def _cut_and_paste(self, data):
        """(the batch (N, C, H, W) with the flipped batch's box pasted in, its lam)."""
        lam = float(self.rng.beta(self.cutmix, self.cutmix))
        (top, bottom, left, right), lam = cutmix_box(lam, data.shape[2], data.shape[3],
                                                     self.rng)
        mixed = data.copy()
        if bottom > top and right > left:
            mixed[:, :, top:bottom, left:right] = \
                mx.nd.flip(data, axis=0)[:, :, top:bottom, left:right]
        return mixed, lam


def make_mixer(args):
    if args.label_smoothing == 0 and args.mixup == 0 and args.cutmix == 0:
        return None
    return BatchMixer(args.num_classes, args.label_smoothing, args.mixup, args.cutmix)


def soft_training_loss(out, target, reported_target, ensemble_loss='sum'):
    """As engine.loss.training_loss, against dense targets: (the per-image loss to
    back-propagate, the per-image cross-entropy against `reported_target` to report)."""
    outs = network.outputs_of(out)
    objective = mx.nd.add_n(*[_SOFT_CROSS_ENTROPY(o, target) for o in outs])
    reported = mx.nd.add_n(*[_SOFT_CROSS_ENTROPY(o, reported_target) for o in outs])
    if ensemble_loss == 'mean' or len(outs) == 1:
        objective = objective / len(outs)
    return objective, reported / len(outs)
