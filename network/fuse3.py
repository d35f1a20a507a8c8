"""fuse3: the skip network with three fusions (block depth `(depth - 2) // 3`)."""
from .skip import SkipNet, skip_layout, skip_net

SKIP = 3


def layout(depth):
    """Blocks per group for `depth`."""
    return skip_layout(depth, SKIP, 'fuse3')[1]


def fuse3(depth=62, widen_factor=1, num_classes=10, **kwargs):
    """Skip network with three fusions."""
    return skip_net(SKIP, depth, widen_factor, num_classes, **kwargs)


__all__ = ['SkipNet', 'fuse3', 'layout']
