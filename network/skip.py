"""Skip networks fuse3 / fuse6: groups of long chains with a one-conv (or identity) skip.

`block_depth = (depth - 2) // skip`; one block is `relu(line(x) + chain(x))` where the
chain has `block_depth` units `one` (ReLU on all but the last) and `line` is a 3x3 conv + BN
when the channels change or for the very first block of g1 (quirk of the original), else
the identity.
"""
from mxnet.gluon import HybridBlock
from mxnet.gluon.contrib.nn import Identity

from .blocks import CifarNet, _raw_blocks, add, chain, one, relu, validated


def _skip_blocks(depth, skip):
    block_depth = (depth - 2) // skip
    return _raw_blocks(depth, block_depth) if block_depth >= 1 else [0, 0, 0]


def skip_layout(depth, skip, name=None):
    """(block_depth, blocks per group) for a skip network with `skip` fusions."""
    why = None
    if isinstance(depth, int) and (depth - 2) // skip < 1:
        why = 'block depth (depth - 2) // %d would be %d' % (skip, (depth - 2) // skip)
    blocks = validated(name or 'fuse%d' % skip, depth, lambda d: _skip_blocks(d, skip), why)
    return (depth - 2) // skip, blocks


class SkipBlock(HybridBlock):
    """`relu(line(x) + chain(x))`, `line` a 3x3 conv + BN (`line=True`) or identity.

    `removed` (set only by network/lesion.py, at test time) drops one path: 'left' (the
    line) leaves `relu(chain(x))`, 'right' (the chain) leaves `relu(line(x))`."""

    def __init__(self, kin, kout, length, line, **kwargs):
        super().__init__(**kwargs)
        self.removed = None
        with self.name_scope():
            self.line = (one(kin, kout, relu=False, prefix='line_') if line
                         else Identity(prefix='line_'))
            self.body = chain(kin, kout, length, prefix='chain_')

    def hybrid_forward(self, F, x):
        if self.removed == 'left':
            return relu(F, self.body(x))
        if self.removed == 'right':
            return relu(F, self.line(x))
        return relu(F, add(F, self.line(x), self.body(x)))


class SkipNet(CifarNet):
    """stem -> `blocks[g]` SkipBlocks of `block_depth` units per group -> head."""

    def __init__(self, blocks, block_depth, widen_factor=1, num_classes=10, **kwargs):
        def block(kin, kout, g, b, prefix):
            line = kin != kout or (g, b) == (0, 0)
            return SkipBlock(kin, kout, block_depth, line, prefix=prefix)

        super().__init__(blocks, block, widen_factor, num_classes, **kwargs)
        self.block_depth = block_depth


def skip_net(skip, depth=62, widen_factor=1, num_classes=10, **kwargs):
    """A skip network with `skip` fusions whose plain equivalent has `depth` layers."""
    block_depth, blocks = skip_layout(depth, skip)
    return SkipNet(blocks, block_depth, widen_factor, num_classes, **kwargs)
