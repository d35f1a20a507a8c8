"""The deep-fusion networks as Gluon HybridBlocks.

    net = get_net('cross', num_classes=10, depth=62, widen_factor=1)   # uninitialised
    initialize(net, (3, 32, 32))            # the original's initializer; shapes known

CIFAR-style networks (plain, resnet, half, side, cross, fuse3, fuse6, ensemble) take any
input channel count and size (global average pooling head); `depth` is the depth of the
equivalent plain network. The ImageNet networks (symbol_resnet, symbol_cross) need
3x224x224 inputs and ignore depth and widen factor. The table of networks, one row each
(factory, defaults, aliases, test depths), is SPECS in network/registry.py. Every
network returns logits (the softmax belongs to the loss); `ensemble` returns a tuple of
its 8 components' logits (outputs_of() makes every network's output such a tuple).
The families, the depth rule and the quirks kept from the original: docs/networks.md.

Names (used by show_model.py): every op and parameter name contains `stem_` (stem),
`g1_`.. `g3_` (`g4_` on ImageNet) inside a group, `short` in a shortcut conv unit,
`line_` in a fuse3/fuse6 line conv, `left_` in an ensemble left conv, `fc_` in the
classifier; every other conv is on a main (residual) path.
"""
import mxnet as mx

from mxnet.gluon import nn

from . import ensemble, zoo
from .blocks import blocks_per_group, walk
from .registry import IMAGENET_INPUT, SPECS, NetSpec

__all__ = ['get_net', 'list_nets', 'IMAGENET_NETS', 'ALIASES', 'original_initializer',
           'OriginalInit', 'initialize', 'count_params', 'blocks_per_group', 'resolve_name',
           'SPECS', 'NetSpec', 'IMAGENET_INPUT', 'spec_of', 'to_symbol', 'outputs_of',
           'mean_prediction', 'set_bn_momentum', 'check_bn_momentum', 'list_pretrained',
           'PretrainedError']

list_pretrained = zoo.list_pretrained
PretrainedError = zoo.PretrainedError

# Derived from the table (network/registry.py), never written twice.
IMAGENET_NETS = tuple(sorted(name for name, spec in SPECS.items() if spec.fixed_input))
ALIASES = {alias: name for name, spec in SPECS.items() for alias in spec.aliases}


def list_nets():
    """Canonical network names, sorted."""
    return sorted(SPECS)


def resolve_name(name):
    """The canonical name for `name` or an alias (case-insensitive; '-' and '_' alike)."""
    key = str(name).strip().lower().replace('-', '_')
    for canonical in list_nets():
        if key == canonical:
            return canonical
    for alias, canonical in ALIASES.items():
        if key == alias.replace('-', '_'):
            return canonical
    raise ValueError('unknown network %r; valid names: %s (aliases: %s)'
                     % (name, ', '.join(list_nets()),
                        ', '.join('%s=%s' % item for item in sorted(ALIASES.items()))))


def spec_of(name):
    """The NetSpec of a network name or alias (ValueError for an unknown name)."""
    return SPECS[resolve_name(name)]


def _positive_int(what, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError('%s must be a positive integer, got %r' % (what, value))


def get_net(name, num_classes=None, depth=None, widen_factor=1, bn_momentum=None,
            pretrained=None, **kwargs):
    """An uninitialised network, or with `pretrained` a trained one.

    CIFAR-style nets: `num_classes` defaults to 10, `depth` to 62. ImageNet nets
    (IMAGENET_NETS) default to 1000 classes and ignore `depth` and `widen_factor`.
    `bn_momentum`: the momentum of every BatchNorm's running statistics; default the
    original's for that network (SPECS[name].bn_momentum). Extra keyword arguments go to
    the network's factory (e.g. `prefix`, or `wide_stem=True` for ensemble). Raises
    ValueError for an unknown name, a bad depth or a momentum outside [0, 1).

    `pretrained`: a data set ('fashion-mnist': the entry of this network, depth and widen
    factor) or an entry name ('fashion-mnist/cross_d26'; list_pretrained() has them all).
    The network comes initialised on the CPU with the entry's checked weights (network/zoo.py);
    PretrainedError (a ValueError) when there is no such entry or its file is damaged.
    """
    name = resolve_name(name)
    if pretrained:
        return _pretrained_net(name, num_classes, depth, widen_factor, pretrained, **kwargs)
    spec = SPECS[name]
    num_classes = spec.num_classes if num_classes is None else num_classes
    _positive_int('num_classes', num_classes)
    if spec.fixed_input:
        net = spec.factory(num_classes=num_classes, **kwargs)
    else:
        depth = 62 if depth is None else depth
        _positive_int('widen_factor', widen_factor)
        net = spec.factory(depth=depth, widen_factor=widen_factor, num_classes=num_classes,
                           **kwargs)
    if bn_momentum is not None:
        set_bn_momentum(net, bn_momentum)
    return net


def _pretrained_net(name, num_classes, depth, widen_factor, pretrained, **kwargs):
    entry_name = pretrained if '/' in pretrained else zoo.entry_name(
        pretrained, name, 62 if depth is None else depth, widen_factor)
    entry = zoo.get_entry(entry_name)
    if entry['network'] != name or num_classes not in (None, entry['num_classes']):
        raise zoo.PretrainedError('pretrained %s is a %s with %d classes, not a %s%s'
                                  % (entry_name, entry['network'], entry['num_classes'], name,
                                     '' if num_classes is None else ' with %d' % num_classes))
    net = get_net(name, num_classes=entry['num_classes'], depth=entry['depth'],
                  widen_factor=entry['widen_factor'], **kwargs)
    initialize(net, entry['input_shape'], mx.init.Zero())   # placeholders, all replaced
    return zoo.load_weights(net, entry)


def check_bn_momentum(value):
    """`value` if it is a BatchNorm momentum MXNet can use (a number in [0, 1)), else a
    one-line ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0 <= value < 1:
        raise ValueError('BatchNorm momentum must be a number in [0, 1) (the weight of the '
                         'old running statistics at each batch), got %r' % (value,))
    return float(value)


def set_bn_momentum(net, momentum):
    """Give every BatchNorm of `net` (the ensemble's per-path ones too) the running-
    statistics `momentum`; returns how many it set. Call before the first forward pass: a
    hybridized graph keeps the momentum it was built with."""
    momentum = check_bn_momentum(momentum)
    count = 0
    for block in walk(net):
        if isinstance(block, (nn.BatchNorm, nn.BatchNormReLU)):
            block._kwargs['momentum'] = momentum
        elif isinstance(block, ensemble.PathBatchNorm):
            block.momentum = momentum
        else:
            continue
        count += 1
    return count


@mx.init.register
class OriginalInit(mx.init.Initializer):
    """The original's initialisation: the classifier (Dense, 2-D) weights Xavier uniform
    (fan-in, magnitude 1); every other weight Xavier gaussian (fan-in, magnitude 2).

    Gamma, beta, biases and BN running statistics keep Gluon's per-parameter initialisers
    (gamma 1, beta 0, bias 0, running mean 0, running variance 1); should one reach this
    initialiser, it gives the same values.
    """

    def __init__(self):
        super().__init__()
        self._classifier = mx.init.Xavier('uniform', 'in', 1)
        self._conv = mx.init.Xavier('gaussian', 'in', 2)

    def _init_weight(self, name, arr):
        (self._classifier if len(arr.shape) == 2 else self._conv)._init_weight(name, arr)


def original_initializer():
    """The initializer of the original (see OriginalInit)."""
    return OriginalInit()


def initialize(net, input_shape, init=None, ctx=None):
    """Initialise `net` (default: the original's initializer) on `ctx` (one context or a
    list; default the CPU) and run one zero image of `input_shape` (C, H, W) on each, so that
    every deferred parameter has its shape (needed before loading or counting weights)."""
    contexts = ctx if isinstance(ctx, (list, tuple)) else [ctx or mx.cpu()]
    net.initialize(init or original_initializer(), ctx=contexts)
    for context in contexts:
        net(mx.nd.zeros((1,) + tuple(input_shape), ctx=context))
    return net


def count_params(net, input_shape):
    """Number of learnable parameters of `net` (grad_req != 'null', so BN running
    statistics are excluded; a shared parameter counts once).

    `input_shape` is (C, H, W) or (N, C, H, W). Shapes come from symbolic shape inference:
    nothing is initialised or allocated.
    """
    shape = tuple(input_shape)
    if len(shape) == 3:
        shape = (1,) + shape
    params = net.collect_params()
    known = {}
    if any(0 in (p.shape or (0,)) for p in params.values()):
        sym = to_symbol(net)
        arg_shapes, _, aux_shapes = sym.infer_shape(data=shape)
        known = dict(zip(sym.list_arguments(), arg_shapes))
        known.update(zip(sym.list_auxiliary_states(), aux_shapes))
    total = 0
    seen = set()
    for p in params.values():
        if p.grad_req == 'null' or id(p) in seen:
            continue
        seen.add(id(p))
        shape_p = p.shape if p.shape and 0 not in p.shape else known[p.name]
        n = 1
        for s in shape_p:
            n *= s
        total += n
    return total


def to_symbol(net):
    """The symbol of a Gluon network on input `data`: one head per output."""
    out = net(mx.sym.var('data'))
    return mx.sym.Group(list(out)) if isinstance(out, (list, tuple)) else out


def outputs_of(out):
    """A network's output as a tuple of logits: the ensemble's 8, else just one."""
    return tuple(out) if isinstance(out, (list, tuple)) else (out,)


def mean_prediction(out):
    """One prediction per image: the ensemble averages its components' logits."""
    outs = outputs_of(out)
    return outs[0] if len(outs) == 1 else mx.nd.add_n(*outs) / len(outs)
