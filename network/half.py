"""half (DFN-IL, inception-like): `relu(zero(x) + two_a(x) + two_b(x))` (block depth 4)."""
from mxnet.gluon import HybridBlock

from .blocks import CifarNet, add, blocks_per_group, relu, two, zero

BLOCK_DEPTH = 4


def layout(depth):
    """Blocks per group for `depth`."""
    return blocks_per_group(depth, BLOCK_DEPTH, 'half')


class HalfBlock(HybridBlock):
    """Identity (or 1x1 shortcut) plus two two-conv branches with their own weights."""

    def __init__(self, kin, kout, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.short = zero(kin, kout, prefix='short_')
            self.body_a = two(kin, kout, prefix='resa_')
            self.body_b = two(kin, kout, prefix='resb_')

    def hybrid_forward(self, F, x):
        return relu(F, add(F, self.short(x), self.body_a(x), self.body_b(x)))


class HalfNet(CifarNet):
    """stem -> `blocks[g]` HalfBlocks per group -> head."""

    def __init__(self, blocks, widen_factor=1, num_classes=10, **kwargs):
        super().__init__(blocks, lambda kin, kout, g, b, prefix: HalfBlock(kin, kout, prefix=prefix),
                         widen_factor, num_classes, **kwargs)


def half(depth=62, widen_factor=1, num_classes=10, **kwargs):
    """DFN-IL whose equivalent plain network has `depth` layers."""
    return HalfNet(layout(depth), widen_factor, num_classes, **kwargs)
