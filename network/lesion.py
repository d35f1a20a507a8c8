"""Test-time surgery on a trained network; its parameters (weights and BatchNorm running
statistics) are never changed.

Lesion study (Veit, Wilber and Belongie 2016, "Residual networks behave like ensembles of
relatively shallow networks"): delete blocks of a `resnet` or a `cross` network.
- resnet: a deleted block `relu(shortcut(x) + two(x))` becomes `relu(shortcut(x))`, the
  identity (its input is a ReLU's output).
- cross (merge-and-run): a deleted block drops both streams' residual branches and keeps
  the merge, `m = (x1 + x2) / 2`: each stream becomes `relu(m)` (= m), the last block's one
  output too.
Only blocks whose shortcut is the identity can be deleted: a block that changes the
channels (the first of groups 2 and 3) has a 1x1 convolution there, and deleting its branch
would still leave a trained layer in place. Veit et al. kept the downsampling blocks too;
`skipped_blocks` names them.

Path removal in a skip network (fuse3, fuse6): one block keeps only one of its two paths,
`relu(chain(x))` without the left path (the line) or `relu(line(x))` without the right path
(the chain); the rest of the network, its statistics included, stays as trained.

Blocks are named `g<group>_b<block>` as their parameters are (counted from 1). The blocks
carry the flags (`deleted`, `removed`) that their hybrid_forward honours; setting them
clears every cached graph, so a hybridized network builds its graph again at its next call.
"""
from mxnet.gluon import HybridBlock
from mxnet.gluon.contrib.nn import Identity

from .cross import CrossBlock
from .resnet import ResBlock
from .skip import SkipBlock

PATHS = ('left', 'right')


def named_blocks(net, kind):
    """[(name, block)] of `net`'s blocks in network order; ValueError unless they are all
    of class `kind`."""
    features = getattr(net, 'features', None)
    blocks = [('g%d_b%d' % (g, b), block)
              for g, group in enumerate(features or [], 1)
              for b, block in enumerate(group, 1)]
    if not blocks or not all(isinstance(block, kind) for _, block in blocks):
        raise ValueError('%s is not made of %s blocks' % (type(net).__name__, kind.__name__))
    return blocks


def lesion_blocks(net):
    """[(name, block)] of a resnet or cross network; ValueError for any other network."""
    for kind in (ResBlock, CrossBlock):
        try:
            return named_blocks(net, kind)
        except ValueError:
            pass
    raise ValueError('blocks can be deleted from resnet and cross networks, not from %s'
                     % type(net).__name__)


def _has_identity_shortcut(block):
    shortcuts = [block.short] if isinstance(block, ResBlock) else [block.short1, block.short2]
    return all(isinstance(short, Identity) for short in shortcuts)


def deletable_blocks(net):
    """Names of the blocks that can be deleted (identity shortcuts), in network order."""
    return [name for name, block in lesion_blocks(net) if _has_identity_shortcut(block)]


def skipped_blocks(net):
    """Names of the blocks that cannot be deleted (they change the channels)."""
    return [name for name, block in lesion_blocks(net) if not _has_identity_shortcut(block)]


def set_deleted(net, names):
    """Delete exactly the blocks `names` (any others are restored); `[]` restores all."""
    blocks = lesion_blocks(net)
    wanted = set(names)
    unknown = wanted - {name for name, _ in blocks}
    if unknown:
        raise ValueError('no block %s; the blocks are %s'
                         % (', '.join(sorted(unknown)), ', '.join(n for n, _ in blocks)))
    refused = sorted(wanted & set(skipped_blocks(net)))
    if refused:
        raise ValueError('block %s changes the channels (no identity shortcut) and cannot be '
                         'deleted' % ', '.join(refused))
    for name, block in blocks:
        block.deleted = name in wanted
    clear_graphs(net)


def set_removed_paths(net, removed):
    """Remove one path from blocks of a skip network: `removed` maps block names to 'left'
    or 'right'; blocks not named keep both paths (`{}` restores all)."""
    blocks = named_blocks(net, SkipBlock)
    names = {name for name, _ in blocks}
    for name, path in removed.items():
        if name not in names:
            raise ValueError('no block %s; the blocks are %s' % (name, ', '.join(sorted(names))))
        if path not in PATHS:
            raise ValueError('a path is left or right, not %r' % (path,))
    for name, block in blocks:
        block.removed = removed.get(name)
    clear_graphs(net)


def clear_graphs(net):
    """Forget the graphs a hybridized network built (its hybridize settings stay)."""
    stack = [net]
    while stack:
        block = stack.pop()
        if isinstance(block, HybridBlock):
            block._clear_cached_op()
        stack.extend(block._children.values())
