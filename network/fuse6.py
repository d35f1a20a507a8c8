"""fuse6: the skip network with six fusions (block depth `(depth - 2) // 6`)."""
from .skip import SkipNet, skip_layout, skip_net

SKIP = 6


def layout(depth):
    """Blocks per group for `depth`."""
    return skip_layout(depth, SKIP, 'fuse6')[1]


def fuse6(depth=62, widen_factor=1, num_classes=10, **kwargs):
    """Skip network with six fusions."""
    return skip_net(SKIP, depth, widen_factor, num_classes, **kwargs)


__all__ = ['SkipNet', 'fuse6', 'layout']
