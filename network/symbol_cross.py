"""symbol_cross: the ImageNet DFN-MR-50 of the original (bottleneck blocks (1, 2, 11, 2)).

Two streams from the pooled stem. Where the channels change each stream is
`relu(B_i(x_i))`; otherwise `m = 0.5 * (x1 + x2)`, `x_i = relu(m + B_i(x_i))`. The head
takes the concatenation of both streams (4096 channels).
"""
from mxnet.gluon import HybridBlock

from .blocks import ImageNetNet, add, bottleneck, relu

BLOCKS = (1, 2, 11, 2)


class CrossBottleneckBlock(HybridBlock):
    """Merge-and-run block of two bottleneck streams."""

    def __init__(self, kin, kout, stride=1, **kwargs):
        super().__init__(**kwargs)
        self.merge = kin == kout
        with self.name_scope():
            self.body1 = bottleneck(kout, stride, prefix='res1_')
            self.body2 = bottleneck(kout, stride, prefix='res2_')

    def hybrid_forward(self, F, x1, x2):
        if not self.merge:
            return relu(F, self.body1(x1)), relu(F, self.body2(x2))
        m = 0.5 * add(F, x1, x2)
        return relu(F, add(F, m, self.body1(x1))), relu(F, add(F, m, self.body2(x2)))


class SymbolCrossNet(ImageNetNet):
    """stem -> two streams of CrossBottleneckBlocks -> concatenation -> head."""

    def __init__(self, blocks=BLOCKS, num_classes=1000, **kwargs):
        super().__init__(blocks, CrossBottleneckBlock, num_classes, streams=2, **kwargs)


def symbol_cross(num_classes=1000, **kwargs):
    """DFN-MR-50 for 224x224 inputs."""
    return SymbolCrossNet(BLOCKS, num_classes, **kwargs)
