"""Building blocks shared by every network, and the depth rule.

Naming: each unit is a HybridSequential with a Gluon prefix, so that the hybridized symbol's
op and parameter names tell the role of each layer (see `network/__init__.py`).
"""
from mxnet.gluon import HybridBlock, nn
from mxnet.gluon.contrib.nn import Identity

# BatchNorm momentum of the running statistics, as the original's final code sets it: 0.9 in
# the CIFAR networks' conv units (its network/base.py since 2016-11-28; its first two commits
# had 0.99) and in the ImageNet bottlenecks (its symbol_cross.py / symbol_resnet.py); the
# ensemble keeps 0.99 (network/ensemble.py). Training-mode outputs do not depend on it; the
# statistics the test pass uses do. `--bn-momentum` overrides it (set_bn_momentum).
BN_MOMENTUM = 0.9
IMAGENET_BN_MOMENTUM = 0.9
BN_EPSILON = 2e-5


class ConvUnit(nn.HybridSequential):
    """`C(k, stride, pad, relu)`: Conv2D (no bias) -> BatchNorm -> optional ReLU.

    Input channels are inferred at the first forward pass.
    """

    def __init__(self, channels, kernel, stride=1, pad=0, relu=True, momentum=BN_MOMENTUM,
                 **kwargs):
        super().__init__(**kwargs)
        self.relu = relu
        with self.name_scope():
            self.add(nn.Conv2D(channels, kernel, strides=stride, padding=pad, use_bias=False),
                     nn.BatchNorm(momentum=momentum, epsilon=BN_EPSILON))
            if relu:
                self.add(nn.Activation('relu'))


def relu(F, x):
    """ReLU as MXNet's `Activation` operator: the same values as `F.relu`, run by oneDNN.

    Why: in MXNet 1.9.1 `relu` has no oneDNN kernel and `Activation` has. On the oneDNN-
    blocked sum of a block, `F.relu` made MXNet reorder the sum to NCHW and the next
    convolution reorder it back; in the backward pass three more reorders per block.
    Measured on resnet d20, batch 32, one training step: 126 oneDNN reorders with `F.relu`,
    99 with this (blocked-to-NCHW copies of activations 28 -> 7). Outputs and gradients
    are bitwise the same (tests/test_networks.py); only a NaN input differs: 0 here, as in
    every ConvUnit's ReLU already, where `F.relu` passed the NaN on.
    """
    return F.Activation(x, act_type='relu')


def add(F, *xs):
    """`xs[0] + xs[1] + ...` as one `add_n`: the same values as `+`, without a copy.

    Why: with `+` (elemwise_add) oneDNN's sum wrote a temporary that was then copied into
    the output (one activation-sized reorder per sum); `add_n` writes the output directly.
    resnet d20, batch 32, one training step: 99 reorders -> 92 (with `relu` above). Two
    arrays are summed in the same order either way: bitwise the same (tested).
    """
    return F.add_n(*xs)


def C(channels, kernel, stride=1, pad=0, relu=True, prefix=None, momentum=BN_MOMENTUM):
    """The conv unit `C(k, stride, pad, relu)` to `channels` output channels."""
    return ConvUnit(channels, kernel, stride, pad, relu, momentum, prefix=prefix)


def one(kin, kout, relu=True, prefix=None):
    """A 3x3 conv unit; stride 2 when the channel count changes."""
    return C(kout, 3, 1 if kin == kout else 2, 1, relu, prefix=prefix)


def chain(kin, kout, length, relu=False, prefix=None):
    """`length` units `one` in a row, ReLU on all but the last (the last one: `relu`)."""
    body = nn.HybridSequential(prefix=prefix)
    with body.name_scope():
        for i in range(length):
            last = i == length - 1
            body.add(one(kin if i == 0 else kout, kout, relu if last else True,
                         prefix='c%d_' % (i + 1)))
    return body


def two(kin, kout, relu=False, prefix=None):
    """`one(kin, kout)` then `one(kout, kout, relu)`: the two-conv residual branch."""
    return chain(kin, kout, 2, relu, prefix=prefix)


def zero(kin, kout, prefix=None):
    """The shortcut: identity when `kin == kout`, else a 1x1/2 conv + BN."""
    if kin == kout:
        return Identity(prefix=prefix)
    return C(kout, 1, 2, 0, relu=False, prefix=prefix)


def bottleneck(kout, stride=1, prefix=None):
    """ImageNet bottleneck: 1x1 to kout/4, 3x3/stride to kout/4, 1x1 to kout (no ReLU)."""
    body = nn.HybridSequential(prefix=prefix)
    with body.name_scope():
        body.add(C(kout // 4, 1, 1, 0, True, prefix='c1_', momentum=IMAGENET_BN_MOMENTUM),
                 C(kout // 4, 3, stride, 1, True, prefix='c2_', momentum=IMAGENET_BN_MOMENTUM),
                 C(kout, 1, 1, 0, False, prefix='c3_', momentum=IMAGENET_BN_MOMENTUM))
    return body


def walk(block):
    """`block` and every block inside it, depth first."""
    yield block
    for child in block._children.values():
        yield from walk(child)


class Streams(nn.HybridSequential):
    """A HybridSequential whose blocks take and return several arrays (e.g. two streams)."""

    def hybrid_forward(self, F, *xs):
        for block in self._children.values():
            xs = block(*xs)
            if not isinstance(xs, (tuple, list)):
                xs = (xs,)
        return xs[0] if len(xs) == 1 else tuple(xs)


class PlainLayout(HybridBlock):
    """`x * 1`: the same values, handed on in MXNet's default (NCHW) memory layout.

    Why: on oneDNN's blocked layout the average pooling that ends every network has no fast
    backward kernel; oneDNN's reference kernel ran instead and wrote the gradient in a layout
    that sent every BatchNorm backward of the last group to the reference kernel too (19 per
    step in resnet d110, about a third of the step). Pooled from the default layout, the
    forward values are bitwise the same (tested) and the backward runs on the fast kernels.
    """

    def hybrid_forward(self, F, x):
        return x * 1.0


def head(num_classes, pool_size=None):
    """Classifier: average pooling (global, or `pool_size` with stride 1) -> flatten ->
    Dense (prefix `fc_`)."""
    body = nn.HybridSequential(prefix='head_')
    with body.name_scope():
        body.add(PlainLayout(prefix='plain_'),
                 nn.GlobalAvgPool2D() if pool_size is None
                 else nn.AvgPool2D(pool_size, strides=1),
                 nn.Flatten(),
                 nn.Dense(num_classes, prefix='fc_'))
    return body


def cifar_channels(widen_factor):
    """(kin, kout) of the first block of g1, g2, g3 for widen factor `w`."""
    w = widen_factor
    return [(16 * w, 16 * w), (16 * w, 32 * w), (32 * w, 64 * w)]


def make_groups(blocks, channels, make_block, cls=nn.HybridSequential):
    """Groups `g1_`, `g2_`, ... of blocks `b1_`, `b2_`, ...

    `make_block(kin, kout, group, index, prefix)` builds one block (group and index count
    from 0); the first block of a group goes from kin to kout, the others stay at kout.
    """
    features = cls(prefix='')
    with features.name_scope():
        for g, (n, (kin, kout)) in enumerate(zip(blocks, channels)):
            group = cls(prefix='g%d_' % (g + 1))
            with group.name_scope():
                for b in range(n):
                    group.add(make_block(kin if b == 0 else kout, kout, g, b,
                                         prefix='b%d_' % (b + 1)))
            features.add(group)
    return features


class CifarNet(HybridBlock):
    """stem (3x3 conv unit to 16w) -> groups g1, g2, g3 -> head.

    `make_block(kin, kout, group, index, prefix)` builds the blocks; with `streams=2` the
    stem output feeds both streams of the first block.
    """

    def __init__(self, blocks, make_block, widen_factor=1, num_classes=10, streams=1,
                 **kwargs):
        super().__init__(**kwargs)
        self.streams = streams
        self.blocks = list(blocks)
        channels = cifar_channels(widen_factor)
        with self.name_scope():
            self.stem = C(channels[0][0], 3, 1, 1, True, prefix='stem_')
            self.features = make_groups(blocks, channels, make_block,
                                        Streams if streams > 1 else nn.HybridSequential)
            self.output = head(num_classes)

    def hybrid_forward(self, F, x):
        x = self.stem(x)
        return self.output(self.features(*[x] * self.streams))


IMAGENET_CHANNELS = [(64, 256), (256, 512), (512, 1024), (1024, 2048)]


class ImageNetNet(HybridBlock):
    """stem (7x7/2 conv without BN or ReLU, quirk of the original; 3x3/2 max pooling) ->
    groups g1..g4 of bottleneck blocks -> 7x7 average pooling -> Dense.

    `make_block(kin, kout, stride, prefix)`; the first block of groups 2-4 has stride 2.
    With `streams=2` the pooled stem feeds both streams of the first block and the last
    block's two outputs are concatenated along the channels.
    """

    def __init__(self, blocks, make_block, num_classes=1000, streams=1, **kwargs):
        super().__init__(**kwargs)
        self.streams = streams
        self.blocks = list(blocks)

        def block(kin, kout, g, b, prefix):
            return make_block(kin, kout, 2 if g > 0 and b == 0 else 1, prefix=prefix)

        with self.name_scope():
            self.stem = nn.HybridSequential(prefix='stem_')
            with self.stem.name_scope():
                self.stem.add(nn.Conv2D(64, 7, strides=2, padding=3, use_bias=False),
                              nn.MaxPool2D(3, strides=2, padding=1))
            self.features = make_groups(blocks, IMAGENET_CHANNELS, block,
                                        Streams if streams > 1 else nn.HybridSequential)
            self.output = head(num_classes, pool_size=7)

    def hybrid_forward(self, F, x):
        x = self.stem(x)
        x = self.features(*[x] * self.streams)
        if self.streams > 1:
            x = F.concat(*x, dim=1)
        return self.output(x)


# ---- depth rule ---------------------------------------------------------------------------

def _raw_blocks(depth, block_depth):
    """The original's integer arithmetic, without checks."""
    exclude = 2
    blocks = []
    for i in range(3):
        n = (depth - exclude) // (block_depth * (3 - i))
        exclude += n * block_depth
        blocks.append(n)
    return blocks


def _is_valid(layout, depth):
    try:
        return min(layout(depth)) >= 1
    except (ValueError, ZeroDivisionError):
        return False


def nearest_valid_depths(depth, layout, search=1000):
    """(nearest valid depth below `depth` or None, nearest valid above or None)."""
    below = next((d for d in range(depth - 1, 0, -1) if _is_valid(layout, d)), None)
    above = next((d for d in range(max(depth + 1, 1), max(depth, 0) + search)
                  if _is_valid(layout, d)), None)
    return below, above


def check_depth(depth):
    """Reject depths that are not integers."""
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise ValueError('depth must be an integer, got %r' % (depth,))


def validated(name, depth, layout, why=None):
    """`layout(depth)` (blocks per group) if every group gets a block, else a one-line
    ValueError naming the nearest valid depths below and above (`why`: the reason)."""
    check_depth(depth)
    blocks = layout(depth)
    if min(blocks) < 1:
        below, above = nearest_valid_depths(depth, layout)
        near = ', '.join('%s %s' % ('none' if d is None else d, side)
                         for d, side in ((below, 'below'), (above, 'above')))
        why = why or 'a group would get no block (blocks per group %s)' % list(blocks)
        raise ValueError('invalid depth %d for network %r: %s; nearest valid depths: %s'
                         % (depth, name, why, near))
    return blocks


def blocks_per_group(depth, block_depth, name=None):
    """Blocks in each of the three groups for a plain-equivalent `depth`, as the original:

        exclude = 2
        for i in 0, 1, 2:
            n_i = (depth - exclude) // (block_depth * (3 - i))
            exclude += n_i * block_depth

    Raises ValueError (listing the nearest valid depths) if a group gets no block.
    """
    if isinstance(block_depth, bool) or not isinstance(block_depth, int) or block_depth < 1:
        raise ValueError('block_depth must be a positive integer, got %r' % (block_depth,))
    return validated(name or 'block depth %d' % block_depth, depth,
                     lambda d: _raw_blocks(d, block_depth))
