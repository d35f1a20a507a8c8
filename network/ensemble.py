"""ensemble: the 8 weight-shared component networks of a three-group skip network.

In each group a component takes the *left* path (one 3x3 conv + BN, stride 2 where the
channels change) or the *right* path (the group's chain of 3x3 conv + BN units, ReLU on all
but the last); each group ends with a ReLU. Component `i` takes the right path in group `g`
iff bit `g` of `i` is set (bit 0 = g1): component 0 is left-left-left, 7 is
right-right-right. All components share the stem, each group's left and right weights and
the classifier; each has its own output.

BatchNorm as in the original, where every component builds its own BatchNorm operators on
the shared gamma and beta: each component keeps its own running mean and variance, with
momentum 0.99 (ENSEMBLE_BN_MOMENTUM: the original's ensemble code kept 0.99 where its other
CIFAR networks moved to 0.9). Components
that agree on the groups before a layer feed it the same input, so their statistics for it
stay equal: a layer of group g keeps one set per path into it, 2^(g-1) (stem and g1 one, g2
two, g3 four); set `k` of a layer in group g belongs to the components whose first g-1 bits
are k.

The network computes the components as a tree (stem once, 2 paths after g1, 4 after g2,
8 after g3), which gives the same outputs as 8 separate passes. As in the original the stem
has 16 channels whatever the widen factor; `wide_stem=True` gives it 16w channels instead.
Either way the groups take their strides from the nominal channels (16w, 16w), (16w, 32w),
(32w, 64w), as the original's did: g1 keeps stride 1 also where, for w > 1, its first units
widen the 16-channel stem to 16w.
"""
from mxnet.gluon import HybridBlock, nn

from .blocks import BN_EPSILON, Streams, cifar_channels, head, relu, validated

NUM_COMPONENTS = 8
ENSEMBLE_BN_MOMENTUM = 0.99


def _ensemble_blocks(depth):
    b1 = (depth - 2) // 3
    b2 = (depth - 2 - b1) // 2
    return [b1, b2, depth - 2 - b1 - b2]


def layout(depth):
    """Right-path lengths (units per group) for `depth`."""
    return validated('ensemble', depth, _ensemble_blocks)


def _single(outputs):
    """One path gives a bare array, several a tuple (as blocks.Streams expects)."""
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


def as_paths(out):
    """The outputs of a path block as a tuple, whether one path or several."""
    return tuple(out) if isinstance(out, (list, tuple)) else (out,)


class PathBatchNorm(HybridBlock):
    """BatchNorm applied to `paths` inputs: one gamma and beta for all of them, a running
    mean and variance of its own for each (`path<k>_running_mean`, `path<k>_running_var`).
    Called with n <= `paths` inputs, input k uses set k."""

    def __init__(self, paths=1, momentum=ENSEMBLE_BN_MOMENTUM, epsilon=BN_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.paths = paths
        self.momentum = momentum
        self.epsilon = epsilon
        deferred = dict(shape=(0,), allow_deferred_init=True)
        with self.name_scope():
            self.gamma = self.params.get('gamma', init='ones', **deferred)
            self.beta = self.params.get('beta', init='zeros', **deferred)
            for k in range(paths):
                for stat, init in (('running_mean', 'zeros'), ('running_var', 'ones')):
                    name = 'path%d_%s' % (k, stat)
                    setattr(self, name, self.params.get(name, grad_req='null', init=init,
                                                        differentiable=False, **deferred))

    def stats(self, k):
        """(running mean, running variance) Parameters of path `k`."""
        return (getattr(self, 'path%d_running_mean' % k),
                getattr(self, 'path%d_running_var' % k))

    def infer_shape(self, *xs):
        # every set has the input's channel count, also those of paths not called yet
        for param in self.params.values():
            param.shape = (xs[0].shape[1],)

    def hybrid_forward(self, F, *xs, gamma, beta, **stats):
        if len(xs) > self.paths:
            raise ValueError('%s keeps statistics for %d paths, got %d inputs'
                             % (self.name, self.paths, len(xs)))
        return _single([F.BatchNorm(x, gamma, beta, stats['path%d_running_mean' % k],
                                    stats['path%d_running_var' % k], eps=self.epsilon,
                                    momentum=self.momentum, fix_gamma=False,
                                    name='fwd%d' % k)
                        for k, x in enumerate(xs)])


class PathConvUnit(HybridBlock):
    """The conv unit `C(k, stride, pad, relu)` over several paths: one conv weight, gamma
    and beta, BatchNorm running statistics per path (PathBatchNorm)."""

    def __init__(self, channels, kernel=3, stride=1, pad=1, relu=True, paths=1,
                 momentum=ENSEMBLE_BN_MOMENTUM, **kwargs):
        super().__init__(**kwargs)
        self.relu = relu
        with self.name_scope():
            self.conv = nn.Conv2D(channels, kernel, strides=stride, padding=pad,
                                  use_bias=False)
            self.bn = PathBatchNorm(paths, momentum)

    def hybrid_forward(self, F, *xs):
        ys = as_paths(self.bn(*[self.conv(x) for x in xs]))
        return _single([relu(F, y) for y in ys] if self.relu else ys)


def path_one(kin, kout, relu=True, paths=1, momentum=ENSEMBLE_BN_MOMENTUM, prefix=None):
    """`one(kin, kout, relu)` over `paths` paths: stride 2 when the channels change."""
    return PathConvUnit(kout, 3, 1 if kin == kout else 2, 1, relu, paths, momentum,
                        prefix=prefix)


def path_chain(kin, kout, length, paths=1, momentum=ENSEMBLE_BN_MOMENTUM, prefix=None):
    """`length` units `path_one` in a row, ReLU on all but the last."""
    body = Streams(prefix=prefix)
    with body.name_scope():
        for i in range(length):
            body.add(path_one(kin if i == 0 else kout, kout, i < length - 1, paths,
                              momentum, prefix='c%d_' % (i + 1)))
    return body


class EnsembleGroup(HybridBlock):
    """One group over `paths` inputs: returns `relu(left(x))` for every input, then
    `relu(right(x))` for every input."""

    def __init__(self, kin, kout, length, paths=1, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.left = path_one(kin, kout, relu=False, paths=paths, prefix='left_')
            self.right = path_chain(kin, kout, length, paths, prefix='right_')

    def hybrid_forward(self, F, *xs):
        lefts = [relu(F, y) for y in as_paths(self.left(*xs))]
        rights = [relu(F, y) for y in as_paths(self.right(*xs))]
        return _single(lefts + rights)


class EnsembleNet(HybridBlock):
    """Returns the outputs of the 8 components, a tuple of (batch, classes) arrays."""

    def __init__(self, blocks, widen_factor=1, num_classes=10, wide_stem=False, **kwargs):
        super().__init__(**kwargs)
        self.blocks = list(blocks)
        channels = cifar_channels(widen_factor)   # nominal: they set the strides
        with self.name_scope():
            self.stem = PathConvUnit(channels[0][0] if wide_stem else 16, 3, 1, 1, True,
                                     prefix='stem_')
            self.groups = nn.HybridSequential(prefix='')
            with self.groups.name_scope():
                for g, (n, (kin, kout)) in enumerate(zip(blocks, channels)):
                    self.groups.add(EnsembleGroup(kin, kout, n, paths=2 ** g,
                                                  prefix='g%d_' % (g + 1)))
            self.output = head(num_classes)

    def hybrid_forward(self, F, x):
        # path j + len(paths) * bit after each group: bit set = right path in that group
        paths = (self.stem(x),)
        for group in self.groups:
            paths = as_paths(group(*paths))
        return tuple(self.output(p) for p in paths)


def takes_right(component, group):
    """Whether `component` takes the right path in `group` (0 = g1)."""
    return bool((component >> group) & 1)


def stats_index(component, group):
    """Which of a group's statistics sets `component` uses: its choices in the groups
    before (the index of the path into the group)."""
    return component & ((1 << group) - 1)


def ensemble(depth=62, widen_factor=1, num_classes=10, wide_stem=False, **kwargs):
    """The weight-shared ensemble of 8 components for `depth`."""
    return EnsembleNet(layout(depth), widen_factor, num_classes, wide_stem, **kwargs)
