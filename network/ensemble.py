"""ensemble: the 8 weight-shared component networks of a three-group skip network.

In each group a component takes the *left* path (one 3x3 conv + BN, stride 2 where the
channels change) or the *right* path (the group's chain of 3x3 conv + BN units, ReLU on all
but the last); each group ends with a ReLU. Component `i` takes the right path in group `g`
iff bit `g` of `i` is set (bit 0 = g1): component 0 is left-left-left, 7 is
right-right-right. All components share the stem, each group's left and right weights and
the classifier; each has its own output.

The network computes the components as a tree (stem once, 2 paths after g1, 4 after g2,
8 after g3), which gives the same outputs as 8 separate passes. As in the original the stem
has 16 channels whatever the widen factor (so for w > 1 the first units of g1 change the
channel count and use stride 2); `wide_stem=True` gives it 16w channels instead.
"""
from mxnet.gluon import HybridBlock, nn

from .blocks import C, chain, cifar_channels, head, one, validated

NUM_COMPONENTS = 8


def _ensemble_blocks(depth):
    b1 = (depth - 2) // 3
    b2 = (depth - 2 - b1) // 2
    return [b1, b2, depth - 2 - b1 - b2]


def layout(depth):
    """Right-path lengths (units per group) for `depth`."""
    return validated('ensemble', depth, _ensemble_blocks)


class EnsembleGroup(HybridBlock):
    """One group: returns `(relu(left(x)), relu(right(x)))`."""

    def __init__(self, kin, kout, length, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.left = one(kin, kout, relu=False, prefix='left_')
            self.right = chain(kin, kout, length, prefix='right_')

    def hybrid_forward(self, F, x):
        return F.relu(self.left(x)), F.relu(self.right(x))


class EnsembleNet(HybridBlock):
    """Returns the outputs of the 8 components, a tuple of (batch, classes) arrays."""

    def __init__(self, blocks, widen_factor=1, num_classes=10, wide_stem=False, **kwargs):
        super().__init__(**kwargs)
        self.blocks = list(blocks)
        channels = cifar_channels(widen_factor)
        if not wide_stem:
            channels[0] = (16, channels[0][1])
        with self.name_scope():
            self.stem = C(channels[0][0], 3, 1, 1, True, prefix='stem_')
            self.groups = nn.HybridSequential(prefix='')
            with self.groups.name_scope():
                for g, (n, (kin, kout)) in enumerate(zip(blocks, channels)):
                    self.groups.add(EnsembleGroup(kin, kout, n, prefix='g%d_' % (g + 1)))
            self.output = head(num_classes)

    def hybrid_forward(self, F, x):
        paths = [self.stem(x)]
        for group in self.groups:
            outs = [group(p) for p in paths]
            # path i + len(paths) * bit: bit set = right path in this group
            paths = [left for left, _ in outs] + [right for _, right in outs]
        return tuple(self.output(p) for p in paths)


def ensemble(depth=62, widen_factor=1, num_classes=10, wide_stem=False, **kwargs):
    """The weight-shared ensemble of 8 components for `depth`."""
    return EnsembleNet(layout(depth), widen_factor, num_classes, wide_stem, **kwargs)
