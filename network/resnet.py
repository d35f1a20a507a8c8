"""resnet: ResNet with two-conv blocks, `relu(zero(x) + two(x))` (block depth 2)."""
from mxnet.gluon import HybridBlock

from .blocks import CifarNet, add, blocks_per_group, relu, two, zero

BLOCK_DEPTH = 2


def layout(depth):
    """Blocks per group for `depth`."""
    return blocks_per_group(depth, BLOCK_DEPTH, 'resnet')


class ResBlock(HybridBlock):
    """`relu(zero(x) + two(x))`.

    `deleted` (set only by network/lesion.py, for a lesion study at test time) drops the
    residual branch: `relu(zero(x))`, which is `x` where the shortcut is the identity (x is
    a ReLU's output)."""

    def __init__(self, kin, kout, **kwargs):
        super().__init__(**kwargs)
        self.deleted = False
        with self.name_scope():
            self.short = zero(kin, kout, prefix='short_')
            self.body = two(kin, kout, prefix='res_')

    def hybrid_forward(self, F, x):
        if self.deleted:
            return relu(F, self.short(x))
        return relu(F, add(F, self.short(x), self.body(x)))


class ResNet(CifarNet):
    """stem -> `blocks[g]` ResBlocks per group -> head."""

    def __init__(self, blocks, widen_factor=1, num_classes=10, **kwargs):
        super().__init__(blocks, lambda kin, kout, g, b, prefix: ResBlock(kin, kout, prefix=prefix),
                         widen_factor, num_classes, **kwargs)


def resnet(depth=62, widen_factor=1, num_classes=10, **kwargs):
    """ResNet whose equivalent plain network has `depth` layers."""
    return ResNet(layout(depth), widen_factor, num_classes, **kwargs)
