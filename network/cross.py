"""cross (DFN-MR, merge-and-run): two streams that share a merged shortcut (block depth 4)."""
from mxnet.gluon import HybridBlock

from .blocks import CifarNet, add, blocks_per_group, relu, two, zero

BLOCK_DEPTH = 4


def layout(depth):
    """Blocks per group for `depth`."""
    return blocks_per_group(depth, BLOCK_DEPTH, 'cross')


class CrossBlock(HybridBlock):
    """Merge-and-run block on streams (x1, x2):

        m  = 0.5 * (zero_1(x1) + zero_2(x2))
        x1 = relu(m + two_1(x1)),  x2 = relu(m + two_2(x2))

    With `last=True` (last block of the network) it returns
    `relu(m + two_1(x1) + two_2(x2))` alone.

    `deleted` (set only by network/lesion.py, for a lesion study at test time) drops both
    residual branches and keeps the merge: `relu(m)` for each stream (the last block: once).
    """

    def __init__(self, kin, kout, last=False, **kwargs):
        super().__init__(**kwargs)
        self.last = last
        self.deleted = False
        with self.name_scope():
            self.short1 = zero(kin, kout, prefix='short1_')
            self.short2 = zero(kin, kout, prefix='short2_')
            self.body1 = two(kin, kout, prefix='res1_')
            self.body2 = two(kin, kout, prefix='res2_')

    def hybrid_forward(self, F, x1, x2):
        m = 0.5 * add(F, self.short1(x1), self.short2(x2))
        if self.deleted:
            merged = relu(F, m)
            return merged if self.last else (merged, merged)
        if self.last:
            return relu(F, add(F, m, self.body1(x1), self.body2(x2)))
        return relu(F, add(F, m, self.body1(x1))), relu(F, add(F, m, self.body2(x2)))


class CrossNet(CifarNet):
    """stem -> both streams -> `blocks[g]` CrossBlocks per group -> head."""

    def __init__(self, blocks, widen_factor=1, num_classes=10, **kwargs):
        last = (len(blocks) - 1, blocks[-1] - 1)

        def block(kin, kout, g, b, prefix):
            return CrossBlock(kin, kout, last=(g, b) == last, prefix=prefix)

        super().__init__(blocks, block, widen_factor, num_classes, streams=2, **kwargs)


def cross(depth=62, widen_factor=1, num_classes=10, **kwargs):
    """DFN-MR whose equivalent plain network has `depth` layers (62: blocks [5, 5, 5])."""
    return CrossNet(layout(depth), widen_factor, num_classes, **kwargs)
