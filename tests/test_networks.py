"""Tests of the network package: shapes, gradients, parameter counts, export, errors, init."""
import json
import os
import re

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

import network
from network import (IMAGENET_NETS, SPECS, blocks_per_group, count_params, get_net,
                     list_nets, original_initializer, outputs_of, to_symbol)

CIFAR_NETS = [n for n in list_nets() if n not in IMAGENET_NETS]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_depth(name):
    """The smallest valid depth of a CIFAR network (its registry row says); None for the
    fixed ImageNet networks."""
    return SPECS[name].test_depths[0] if SPECS[name].test_depths else None


def other_depth(name):
    """A somewhat deeper valid depth (None for the fixed ImageNet networks)."""
    return SPECS[name].test_depths[1] if SPECS[name].test_depths else None

# the parameter-count table of docs/networks.md: (name, depth, widen factor, learnable parameters)
PARAM_TABLE = [
    ('cross', 110, 1, 1710426),
    ('cross', 62, 4, 14851402),
    ('cross', 98, 4, 24151882),
    ('cross', 56, 1, 886234),
    ('resnet', 110, 1, 1730714),
    ('resnet', 56, 1, 855770),
    ('half', 26, 1, 346650),
    ('side', 26, 1, 343898),
    ('plain', 26, 1, 366938),
    ('fuse3', 20, 1, 295290),
    ('fuse6', 26, 1, 392506),
    ('ensemble', 20, 1, 295290),
    ('symbol_resnet', None, 1, 45047464),
    ('symbol_cross', None, 1, 46395048),
]


def build(name, depth=None, widen_factor=1, num_classes=None, seed=0, **kwargs):
    mx.random.seed(seed)
    net = get_net(name, num_classes=num_classes, depth=depth, widen_factor=widen_factor,
                  **kwargs)
    net.initialize(original_initializer())
    return net


def data(shape, seed=1):
    return mx.nd.array(np.random.RandomState(seed).randn(*shape).astype('float32'))


def graph_nodes(net):
    return [n for n in json.loads(to_symbol(net).tojson())['nodes'] if n['op'] != 'null']


# ---- registry -----------------------------------------------------------------------------

def test_list_nets():
    names = list_nets()
    assert names == sorted(names)
    # one module per family, named as the network, and one row of the registry
    for name in names:
        assert SPECS[name].factory.__module__ == 'network.' + name
    assert set(IMAGENET_NETS) == {n for n in names if SPECS[n].input_shape}
    assert set(CIFAR_NETS) == {n for n in names if SPECS[n].test_depths}


def test_the_networks_page_lists_every_network():
    """docs/networks.md's table of families names exactly the registry's networks."""
    with open(os.path.join(ROOT, 'docs', 'networks.md')) as page:
        rows = [line for line in page if line.startswith('| `')]
    documented = {name for row in rows
                  for name in re.findall(r'`([a-z0-9_]+)`', row.split('|')[1])
                  if name not in network.ALIASES}
    assert documented == set(list_nets())


@pytest.mark.parametrize('name', CIFAR_NETS)
def test_the_registry_test_depths_are_valid(name):
    small, other = SPECS[name].test_depths
    assert other > small
    with pytest.raises(ValueError, match='none below, %d above' % small):
        get_net(name, depth=small - 1)     # small is the smallest valid depth
    get_net(name, depth=other)


@pytest.mark.parametrize('alias, canonical', [
    ('dfn-mr', 'cross'), ('DFN-MR', 'cross'), ('dfn_mr', 'cross'), ('dfn-il', 'half'),
    ('dfn-mr-50', 'symbol_cross'), ('resnet-98', 'symbol_resnet'), ('symbol-cross', 'symbol_cross'),
])
def test_aliases(alias, canonical):
    assert network.resolve_name(alias) == canonical
    assert type(get_net(alias)) is type(get_net(canonical))


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as err:
        get_net('densenet')
    msg = str(err.value)
    assert "'densenet'" in msg and '\n' not in msg
    for name in list_nets():
        assert name in msg
    assert 'dfn-mr' in msg


@pytest.mark.parametrize('name, depth, below, above', [
    ('cross', 10, None, 14), ('half', 13, None, 14), ('resnet', 7, None, 8),
    ('plain', 4, None, 5), ('fuse3', 3, None, 5), ('fuse6', 7, None, 8),
    ('ensemble', 4, None, 5), ('cross', -3, None, 14),
])
def test_bad_depth_lists_nearest_valid(name, depth, below, above):
    with pytest.raises(ValueError) as err:
        get_net(name, depth=depth)
    msg = str(err.value)
    assert '\n' not in msg and name in msg and 'depth %d' % depth in msg
    assert 'none below' in msg if below is None else '%d below' % below in msg
    assert '%d above' % above in msg
    get_net(name, depth=above)  # the suggestion is valid


def test_depth_must_be_int():
    with pytest.raises(ValueError, match='integer'):
        get_net('cross', depth=62.0)


@pytest.mark.parametrize('kwargs', [{'num_classes': 0}, {'widen_factor': 0},
                                    {'widen_factor': 1.5}])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        get_net('cross', **kwargs)


def test_every_network_has_a_spec():
    assert sorted(SPECS) == list_nets()
    for name in IMAGENET_NETS:
        assert SPECS[name].input_shape == (3, 224, 224) and SPECS[name].paper_depth
    assert (SPECS['symbol_cross'].paper_depth, SPECS['symbol_resnet'].paper_depth) == (50, 98)
    assert all(SPECS[name].input_shape is None for name in CIFAR_NETS)


def test_blocks_per_group():
    assert blocks_per_group(62, 4) == [5, 5, 5]
    assert blocks_per_group(56, 4) == [4, 4, 5]
    assert blocks_per_group(110, 2) == [18, 18, 18]
    assert blocks_per_group(26, 1) == [8, 8, 8]
    with pytest.raises(ValueError, match='14 above'):
        blocks_per_group(13, 4, 'cross')
    assert get_net('cross', depth=56).blocks == [4, 4, 5]
    assert get_net('cross', depth=62).blocks == [5, 5, 5]
    assert get_net('cross').blocks == [5, 5, 5]   # default depth 62
    assert get_net('fuse3', depth=26).block_depth == 8
    assert get_net('fuse6', depth=26).block_depth == 4


def test_defaults_and_uninitialised():
    net = get_net('cross')
    param = next(iter(net.collect_params().values()))
    with pytest.raises(RuntimeError):
        param.data()
    fc = [p for n, p in net.collect_params().items() if n.endswith('fc_weight')][0]
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    assert fc.shape == (10, 64)
    imagenet = get_net('symbol_cross', depth=3, widen_factor=7)  # depth and w ignored
    assert count_params(imagenet, (3, 224, 224)) == 46395048


# ---- parameter counts ----------------------------------------------------------------------

@pytest.mark.parametrize('name, depth, widen, expected', PARAM_TABLE,
                         ids=['%s-d%s-w%d' % row[:3] for row in PARAM_TABLE])
def test_param_table(name, depth, widen, expected):
    shape = (3, 224, 224) if name in IMAGENET_NETS else (3, 32, 32)
    assert count_params(get_net(name, depth=depth, widen_factor=widen), shape) == expected


def test_count_params_initialised_excludes_running_stats():
    net = build('resnet', depth=8)
    net(mx.nd.zeros((1, 3, 32, 32)))
    learnable = sum(p.data().size for p in net.collect_params().values()
                    if p.grad_req != 'null')
    total = sum(p.data().size for p in net.collect_params().values())
    assert count_params(net, (1, 3, 32, 32)) == learnable < total


# ---- forward / backward ------------------------------------------------------------------

FORWARD_CASES = ([(n, small_depth(n), 1, (2, 3, 32, 32)) for n in CIFAR_NETS] +
                 [(n, other_depth(n), 2, (2, 1, 28, 28)) for n in CIFAR_NETS])


@pytest.mark.parametrize('name, depth, widen, shape', FORWARD_CASES,
                         ids=['%s-d%d-w%d-%dx%d' % (c[0], c[1], c[2], c[3][1], c[3][2])
                              for c in FORWARD_CASES])
def test_forward_shape(name, depth, widen, shape):
    net = build(name, depth, widen, num_classes=7)
    ys = outputs_of(net(data(shape)))
    assert len(ys) == (8 if name == 'ensemble' else 1)
    for y in ys:
        assert y.shape == (shape[0], 7)
        assert np.isfinite(y.asnumpy()).all()


@pytest.mark.parametrize('name', CIFAR_NETS)
def test_every_parameter_gets_gradient(name):
    net = build(name, small_depth(name))
    x, label = data((2, 3, 32, 32)), mx.nd.array([3, 5])
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    with autograd.record():
        loss = sum(loss_fn(y, label).sum() for y in outputs_of(net(x)))
    loss.backward()
    for pname, p in net.collect_params().items():
        if p.grad_req == 'null':
            continue
        grad = p.grad().asnumpy()
        assert np.isfinite(grad).all(), pname
        assert np.abs(grad).sum() > 0, '%s got no gradient' % pname


# ---- export / import ---------------------------------------------------------------------

def roundtrip(net, x, path):
    net.hybridize()
    expected = [y.asnumpy() for y in outputs_of(net(x))]
    net.export(str(path / 'net'))
    loaded = gluon.SymbolBlock.imports(str(path / 'net-symbol.json'), ['data'],
                                       str(path / 'net-0000.params'))
    got = [y.asnumpy() for y in outputs_of(loaded(x))]
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    return expected


@pytest.mark.filterwarnings('ignore::UserWarning')
@pytest.mark.parametrize('name', CIFAR_NETS)
def test_export_import_roundtrip(name, tmp_path):
    net = build(name, other_depth(name))
    x = data((2, 3, 32, 32))
    eager = [y.asnumpy() for y in outputs_of(net(x))]
    hybrid = roundtrip(net, x, tmp_path)
    for a, b in zip(eager, hybrid):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.filterwarnings('ignore::UserWarning')
@pytest.mark.slow   # 224x224 networks
@pytest.mark.parametrize('name', IMAGENET_NETS)
def test_imagenet_forward_and_roundtrip(name, tmp_path):
    # the head pools a 7x7 map with a 7x7 kernel: 224x224 inputs are needed
    net = build(name)
    (y,) = roundtrip(net, data((1, 3, 224, 224)), tmp_path)
    assert y.shape == (1, 1000) and np.isfinite(y).all()


# ---- ensemble ----------------------------------------------------------------------------

def separate_component(net, x, i):
    """Component i as its own pass: right path in group g iff bit g of i is set."""
    y = net.stem(x)
    for g, group in enumerate(net.groups):
        y = mx.nd.relu(group.right(y) if (i >> g) & 1 else group.left(y))
    return net.output(y)


@pytest.mark.parametrize('train', [False, True])
def test_ensemble_tree_equals_separate_passes(train):
    net = build('ensemble', 8)
    x = data((2, 3, 32, 32))
    with autograd.record(train_mode=train):
        tree = [y.asnumpy() for y in net(x)]
        single = [separate_component(net, x, i).asnumpy() for i in range(8)]
    assert len(tree) == 8
    for i in range(8):
        np.testing.assert_allclose(tree[i], single[i], rtol=1e-5, atol=1e-6)
    assert not np.allclose(tree[0], tree[7])


def test_ensemble_structure_and_sharing():
    net = get_net('ensemble', depth=26)
    assert net.blocks == [8, 8, 8]
    # the stem has 16 channels whatever w is (quirk); wide_stem=True corrects it. Either
    # way g1 keeps the input's size, as in the original (its strides follow 16w -> 16w)
    for wide, stem_channels in ((False, 16), (True, 32)):
        net = build('ensemble', 8, 2, wide_stem=wide)
        x = mx.nd.zeros((1, 3, 32, 32))
        net(x)
        stem = [p for n, p in net.collect_params().items() if 'stem_' in n and
                n.endswith('weight')][0]
        assert stem.shape[0] == stem_channels
        g1 = net.groups[0](net.stem(x))
        assert [y.shape for y in g1] == [(1, 32, 32, 32)] * 2
    # all weights shared: the 8 components together have the parameters of the one
    # three-block skip network they come from (fuse3 with one block per group)
    for depth in (20, 26):
        assert get_net('fuse3', depth=depth).blocks == [1, 1, 1]
        assert (count_params(get_net('ensemble', depth=depth), (3, 32, 32)) ==
                count_params(get_net('fuse3', depth=depth), (3, 32, 32)))


# ---- names (show_model.py labels the picture from them) -------------------------------------

@pytest.mark.parametrize('name', list_nets())
def test_names(name):
    net = get_net(name, depth=other_depth(name))
    groups = ('g1_', 'g2_', 'g3_', 'g4_') if name in IMAGENET_NETS else ('g1_', 'g2_', 'g3_')
    roles = ('stem_', 'fc_') + groups
    for pname in net.collect_params():
        assert sum(r in pname for r in roles) == 1, pname
    convs = [n for n in graph_nodes(net) if n['op'] == 'Convolution']
    assert sum('stem_' in n['name'] for n in convs) == 1
    for group in groups:
        assert any(group in n['name'] for n in convs)
    for n in convs:
        kernel = n['attrs']['kernel']
        if 'short' in n['name']:
            assert kernel == '(1, 1)' and n['attrs']['stride'] == '(2, 2)', n['name']
        if 'line_' in n['name'] or 'left_' in n['name']:
            assert kernel == '(3, 3)', n['name']
    fcs = [n for n in graph_nodes(net) if n['op'] == 'FullyConnected']
    assert fcs and all('fc_' in n['name'] for n in fcs)
    line = [n['name'] for n in convs if 'line_' in n['name']]
    left = [n['name'] for n in convs if 'left_' in n['name']]
    assert bool(line) == (name in ('fuse3', 'fuse6'))
    assert bool(left) == (name == 'ensemble')
    if name in ('fuse3', 'fuse6'):
        # the very first block of g1 has a line conv although the channels do not change
        assert any('g1_b1_line_' in n for n in line)


def test_cross_conv_order_and_shortcuts():
    net = get_net('cross', depth=26)
    convs = [n['name'] for n in graph_nodes(net) if n['op'] == 'Convolution']
    main = [n for n in convs if not re.search('stem_|short', n)]
    assert len(main) == 24  # R01..R24 of the original picture
    # R01, R02: stream 1 of block 1; R03, R04: stream 2
    assert ['g1_b1_res1_c1', 'g1_b1_res1_c2', 'g1_b1_res2_c1', 'g1_b1_res2_c2'] == \
        [re.search('g1_b1_res[12]_c[12]', n).group(0) for n in main[:4]]
    assert [n for n in convs if 'short' in n] and \
        {re.search('short[12]_', n).group(0) for n in convs if 'short' in n} == \
        {'short1_', 'short2_'}
    # the last block ends with one 3-input sum
    sums = [n for n in graph_nodes(net) if n['op'] == 'add_n' and len(n['inputs']) == 3]
    assert len(sums) == 1 and 'g3_b2_' in sums[0]['name']


def test_half_uses_one_sum_per_block():
    net = get_net('half', depth=26)
    sums = [n for n in graph_nodes(net) if n['op'] == 'add_n']
    assert len(sums) == 6 and all(len(n['inputs']) == 3 for n in sums)


# ---- initialisation -----------------------------------------------------------------------

def test_original_initializer_statistics():
    net = build('resnet', depth=8, widen_factor=4, seed=3)
    net(mx.nd.zeros((1, 3, 32, 32)))
    seen = set()
    for pname, p in net.collect_params().items():
        a = p.data().asnumpy()
        if pname.endswith('fc_weight'):
            # MXNet's Xavier: uniform on [-c, c], c = sqrt(magnitude / fan_in), magnitude 1
            bound = np.sqrt(1.0 / a.shape[1])
            assert np.abs(a).max() <= bound and np.abs(a).max() > 0.95 * bound
            assert abs(a.std() - bound / np.sqrt(3)) < 0.1 * bound / np.sqrt(3)
            seen.add('fc')
        elif pname.endswith('weight'):
            assert a.ndim == 4
            if a.size > 100000:  # gaussian, std sqrt(magnitude / fan_in), magnitude 2
                std = np.sqrt(2.0 / np.prod(a.shape[1:]))
                assert abs(a.std() - std) < 0.02 * std and abs(a.mean()) < 0.02 * std
                seen.add('conv')
        elif pname.endswith(('gamma', 'running_var')):
            assert (a == 1).all(), pname
            seen.add('ones')
        elif pname.endswith(('beta', 'bias', 'running_mean')):
            assert (a == 0).all(), pname
            seen.add('zeros')
        else:
            raise AssertionError('unexpected parameter %s' % pname)
    assert seen == {'fc', 'conv', 'ones', 'zeros'}


def test_original_initializer_is_registered():
    init = original_initializer()
    assert isinstance(mx.init.create(json.loads(init.dumps())[0]), network.OriginalInit)
    assert os.path.basename(network.__file__) == '__init__.py'


def test_head_pools_from_the_default_layout_with_the_same_values():
    """The head hands the last feature map to pooling in NCHW (so oneDNN's fast backward
    kernels run): the pooled values and the gradient are bitwise those of pooling the
    oneDNN-blocked map directly."""
    from mxnet.gluon import nn
    from network.blocks import PlainLayout
    mx.random.seed(5)
    x = mx.nd.random.normal(shape=(8, 16, 8, 8))
    conv = nn.Conv2D(64, 3, padding=1, use_bias=False)   # its output is oneDNN-blocked
    conv.initialize(mx.init.Xavier())
    results = []
    for plain in (False, True):
        net = nn.HybridSequential()
        net.add(conv, nn.Activation('relu'), *([PlainLayout()] if plain else []),
                nn.GlobalAvgPool2D(), nn.Flatten())
        net.hybridize(static_alloc=True, static_shape=True)
        x.attach_grad()
        with mx.autograd.record():
            y = net(x)
        y.backward(mx.nd.arange(y.size).reshape(y.shape) / 7.0)
        results.append((y.asnumpy(), x.grad.asnumpy()))
    assert np.array_equal(results[0][0], results[1][0])
    assert np.array_equal(results[0][1], results[1][1])


# ---- the blocks' sums and ReLUs run on oneDNN (network.blocks.relu / add) ------------------

def _old_forms():
    """The formulations before `relu`/`add`: `F.relu` and `+` (elemwise_add)."""
    from network import cross, half, resnet, side, skip

    def res(self, F, x):
        return F.relu(self.short(x) + self.body(x))

    def crs(self, F, x1, x2):
        m = 0.5 * (self.short1(x1) + self.short2(x2))
        if self.last:
            return F.relu(F.add_n(m, self.body1(x1), self.body2(x2)))
        return F.relu(m + self.body1(x1)), F.relu(m + self.body2(x2))

    def hlf(self, F, x):
        return F.relu(F.add_n(self.short(x), self.body_a(x), self.body_b(x)))

    def sid(self, F, x):
        return F.relu(self.body_a(x) + self.body_b(x))

    def skp(self, F, x):
        return F.relu(self.line(x) + self.body(x))
    return {'resnet': (resnet.ResBlock, res), 'cross': (cross.CrossBlock, crs),
            'half': (half.HalfBlock, hlf), 'side': (side.SideBlock, sid),
            'fuse3': (skip.SkipBlock, skp)}


def _train_and_infer(net, x):
    net.hybridize(static_alloc=True, static_shape=True)
    for _ in range(2):
        with autograd.record():
            y = net(x)
            loss = (y * mx.nd.arange(y.size).reshape(y.shape) / y.size).sum()
        loss.backward()
    grads = [p.grad().asnumpy() for p in net.collect_params().values() if p.grad_req != 'null']
    return [y.asnumpy(), net(x).asnumpy()] + grads


@pytest.mark.slow   # trains each network twice
@pytest.mark.parametrize('name', ['resnet', 'cross', 'half', 'side', 'fuse3'])
def test_onednn_relu_and_sum_keep_the_function_bitwise(name, monkeypatch):
    """`relu(F, add(F, ...))` (oneDNN's Activation and add_n, no layout reorders) gives
    bitwise the outputs (training and inference mode) and the gradients of the original
    `F.relu(a + b)`, on the whole network, hybridized as training runs it."""
    depth = {'resnet': 14, 'cross': 14, 'half': 14, 'side': 14, 'fuse3': 8}[name]
    x = data((8, 3, 32, 32))
    new = _train_and_infer(build(name, depth, num_classes=10, seed=4), x)
    cls, old_forward = _old_forms()[name]
    with monkeypatch.context() as patch:
        patch.setattr(cls, 'hybrid_forward', old_forward)
        old_net = build(name, depth, num_classes=10, seed=4)
        assert any(n['op'] == 'relu' for n in graph_nodes(old_net))   # really the old form
        old = _train_and_infer(old_net, x)
    assert len(new) == len(old)
    for a, b in zip(new, old):
        assert np.array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.parametrize('name', list_nets())
def test_no_relu_or_plus_outside_onednn(name):
    """Every ReLU is `Activation` and every sum `add_n`: `relu` and `elemwise_add` have no
    oneDNN kernel on the blocked layout and cost two reorders each (network.blocks.relu)."""
    ops = {n['op'] for n in graph_nodes(get_net(name, depth=small_depth(name)))}
    assert not ops & {'relu', 'elemwise_add', '_plus', '_Plus', 'broadcast_add'}, ops
