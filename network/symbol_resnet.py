"""symbol_resnet: the ImageNet ResNet-98 of the original (bottleneck blocks (2, 4, 22, 4)).

A block where the channels stay is `relu(x + B(x))`; a block where they change is
`relu(B(x))`, with no shortcut at all (quirk of the original).
"""
from mxnet.gluon import HybridBlock

from .blocks import ImageNetNet, add, bottleneck, relu

BLOCKS = (2, 4, 22, 4)


class BottleneckBlock(HybridBlock):
    """`relu(x + B(x))` when `kin == kout`, else `relu(B(x))`."""

    def __init__(self, kin, kout, stride=1, **kwargs):
        super().__init__(**kwargs)
        self.identity = kin == kout
        with self.name_scope():
            self.body = bottleneck(kout, stride, prefix='res_')

    def hybrid_forward(self, F, x):
        y = self.body(x)
        return relu(F, add(F, x, y) if self.identity else y)


class SymbolResNet(ImageNetNet):
    """stem -> BottleneckBlocks -> head."""

    def __init__(self, blocks=BLOCKS, num_classes=1000, **kwargs):
        super().__init__(blocks, BottleneckBlock, num_classes, **kwargs)


def symbol_resnet(num_classes=1000, **kwargs):
    """ResNet-98 for 224x224 inputs."""
    return SymbolResNet(BLOCKS, num_classes, **kwargs)
