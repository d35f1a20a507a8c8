"""plain: the equivalent plain network, a chain of 3x3 conv units (block depth 1)."""
from .blocks import CifarNet, blocks_per_group, one

BLOCK_DEPTH = 1


def layout(depth):
    """Blocks per group for `depth`."""
    return blocks_per_group(depth, BLOCK_DEPTH, 'plain')


def _block(kin, kout, group, index, prefix):
    return one(kin, kout, relu=True, prefix=prefix)


class PlainNet(CifarNet):
    """stem -> `blocks[g]` units `one` per group -> head."""

    def __init__(self, blocks, widen_factor=1, num_classes=10, **kwargs):
        super().__init__(blocks, _block, widen_factor, num_classes, **kwargs)


def plain(depth=62, widen_factor=1, num_classes=10, **kwargs):
    """The plain network of `depth` conv layers (stem and classifier included)."""
    return PlainNet(layout(depth), widen_factor, num_classes, **kwargs)
