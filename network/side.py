"""side (DFN-IL without identity): `relu(two_a(x) + two_b(x))` (block depth 4)."""
from mxnet.gluon import HybridBlock

from .blocks import CifarNet, add, blocks_per_group, relu, two

BLOCK_DEPTH = 4


def layout(depth):
    """Blocks per group for `depth`."""
    return blocks_per_group(depth, BLOCK_DEPTH, 'side')


class SideBlock(HybridBlock):
    """Two two-conv branches with their own weights, summed; no shortcut."""

    def __init__(self, kin, kout, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.body_a = two(kin, kout, prefix='resa_')
            self.body_b = two(kin, kout, prefix='resb_')

    def hybrid_forward(self, F, x):
        return relu(F, add(F, self.body_a(x), self.body_b(x)))


class SideNet(CifarNet):
    """stem -> `blocks[g]` SideBlocks per group -> head."""

    def __init__(self, blocks, widen_factor=1, num_classes=10, **kwargs):
        super().__init__(blocks, lambda kin, kout, g, b, prefix: SideBlock(kin, kout, prefix=prefix),
                         widen_factor, num_classes, **kwargs)


def side(depth=62, widen_factor=1, num_classes=10, **kwargs):
    """DFN-IL without identity, whose equivalent plain network has `depth` layers."""
    return SideNet(layout(depth), widen_factor, num_classes, **kwargs)
