"""The component networks of the ensemble and of the skip networks fuse3 / fuse6.

A component takes one path through every block: the *right* path (the block's chain of
conv units) or the *left* one (the single conv of the ensemble's group or of a skip block's
line, or the identity where a skip block's line is one), each block ending with a ReLU as
the whole network's block does. `choices` holds one bool per block (True = right), in the
network's block order; component `i` of a network with n blocks has choices
`(bit 0 of i, ..., bit n-1 of i)`, which for the ensemble is the order of its outputs.

`build_component` gives a standalone network (one path, PathBatchNorm with a single set of
statistics) holding copies of the trained weights, gamma, beta and classifier. From the
ensemble it also copies the component's own running statistics, so it computes exactly that
component's output; from a skip network it copies the fused network's statistics, which
describe the sum of the paths, not one: `reestimate_statistics` replaces them.
"""
import mxnet as mx
from mxnet import autograd
from mxnet.gluon import HybridBlock, nn

from .blocks import ConvUnit, head, relu, walk
from .ensemble import EnsembleNet, PathBatchNorm, PathConvUnit, path_chain, stats_index
from .skip import SkipNet


class ComponentNet(HybridBlock):
    """stem -> per block `relu(chain)` (`length` units; 0 = identity) -> head.

    `plan` lists (kin, kout, length) per block."""

    def __init__(self, stem_channels, plan, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.plan = list(plan)
        with self.name_scope():
            self.stem = PathConvUnit(stem_channels, prefix='stem_')
            self.body = nn.HybridSequential(prefix='')
            with self.body.name_scope():
                for b, (kin, kout, length) in enumerate(self.plan):
                    self.body.add(path_chain(kin, kout, length, prefix='b%d_' % (b + 1)))
            self.output = head(num_classes)

    def hybrid_forward(self, F, x):
        x = self.stem(x)
        for block in self.body:
            x = relu(F, block(x))   # an empty chain is the identity
        return self.output(x)

    def units(self):
        """The conv units in path order (stem first)."""
        return [self.stem] + [unit for block in self.body for unit in block]


def _unit_arrays(unit, copy):
    """(weight, gamma, beta, running mean, running var) Parameters of a conv unit."""
    if isinstance(unit, PathConvUnit):
        return (unit.conv.weight, unit.bn.gamma, unit.bn.beta) + unit.bn.stats(copy)
    conv, bn = unit[0], unit[1]
    return conv.weight, bn.gamma, bn.beta, bn.running_mean, bn.running_var


def _channels(unit):
    """Output channels of a conv unit."""
    return _unit_arrays(unit, 0)[0].shape[0]


def _strided(unit):
    """Whether a conv unit's convolution has a stride above 1."""
    conv = unit.conv if isinstance(unit, PathConvUnit) else unit[0]
    return max(conv._kwargs['stride']) > 1


def _source_paths(net, choices):
    """[(units on the chosen path of each block, statistics set)] for `choices`."""
    if len(choices) != num_blocks(net):
        raise ValueError('%s has %d blocks; %d choices given'
                         % (type(net).__name__, num_blocks(net), len(choices)))
    if isinstance(net, EnsembleNet):
        return [(list(group.right) if right else [group.left], stats_index(_index(choices), g))
                for g, (group, right) in enumerate(zip(net.groups, choices))]
    if isinstance(net, SkipNet):
        blocks = [block for group in net.features for block in group]
        return [(list(block.body) if right else
                 ([block.line] if isinstance(block.line, ConvUnit) else []), 0)
                for block, right in zip(blocks, choices)]
    raise _unsupported(net)


def _unsupported(net):
    return ValueError('components exist for the ensemble and the skip networks '
                      '(fuse3, fuse6), not for %s' % type(net).__name__)


def _index(choices):
    return sum(1 << b for b, right in enumerate(choices) if right)


def num_blocks(net):
    """How many blocks a component chooses a path in."""
    if isinstance(net, EnsembleNet):
        return len(net.groups)
    if isinstance(net, SkipNet):
        return sum(len(group) for group in net.features)
    raise _unsupported(net)


def all_choices(net):
    """The choices of every component, component i at position i."""
    n = num_blocks(net)
    return [tuple(bool(i >> b & 1) for b in range(n)) for i in range(2 ** n)]


def component_depth(net, choices):
    """Convolutions on the component's path (stem included, classifier not)."""
    return 1 + sum(len(units) for units, _ in _source_paths(net, choices))


def build_component(net, choices, ctx=None):
    """A standalone ComponentNet with the trained arrays of `net` (initialised)."""
    ctx = ctx or mx.cpu()
    paths = _source_paths(net, choices)
    plan, kin = [], _channels(net.stem)
    for units, _ in paths:
        kout = _channels(units[0]) if units else kin
        # path_chain strides where the channels change; the ensemble's g1 widens the stem
        # with stride 1 (w > 1), so a first unit of stride 1 is planned from kout
        plan.append((kin if units and _strided(units[0]) else kout, kout, len(units)))
        kin = kout
    component = ComponentNet(_channels(net.stem), plan, net.output[-1].weight.shape[0])
    pairs = [(component.stem, net.stem, 0)]
    for block, (units, copy) in zip(component.body, paths):
        pairs += [(mine, theirs, copy) for mine, theirs in zip(block, units)]
    params = [(a, b) for mine, theirs, copy in pairs
              for a, b in zip(_unit_arrays(mine, 0), _unit_arrays(theirs, copy))]
    params += [(component.output[-1].weight, net.output[-1].weight),
               (component.output[-1].bias, net.output[-1].bias)]
    for mine, theirs in params:
        mine.shape = theirs.shape
    component.initialize(mx.init.Zero(), ctx=ctx)
    for mine, theirs in params:
        mine.set_data(theirs.data(ctx))
    return component


def reestimate_statistics(component, batches):
    """Replace the component's BatchNorm running statistics by the average of the batch
    statistics over `batches` (an iterable of input arrays); returns how many were used.

    The component must not be hybridized: the momentum of each step, (t - 1) / t, turns
    the operator's moving average into the running mean of the t batches seen so far.
    The gradients of the component's parameters are overwritten; its weights are not."""
    return reestimate_together([component], batches)


def reestimate_together(components, batches):
    """reestimate_statistics for several components in one pass over `batches` (each
    component sees every batch, in order: the same statistics as one by one)."""
    norms = [block for component in components for block in walk(component)
             if isinstance(block, PathBatchNorm)]
    saved = [bn.momentum for bn in norms]
    count = 0
    try:
        for count, x in enumerate(batches, 1):
            for bn in norms:
                bn.momentum = (count - 1) / count
            for component in components:
                # MXNet's BatchNorm updates its running statistics in the backward pass
                with autograd.record():
                    out = component(x)
                out.backward()
    finally:
        for bn, momentum in zip(norms, saved):
            bn.momentum = momentum
    return count
