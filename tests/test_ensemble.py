"""The ensemble's BatchNorm as in the original: shared gamma/beta/weights, running statistics
per component (one set per path into a layer); and its component networks. (Its momentum,
0.99: tests/test_bn_momentum.py.)"""
import functools
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

import network
from data.fashion_mnist import read_idx
from network import components

FASHION = '/usr/share/datasets/fashion-mnist'
DEPTH = 8          # right paths of 2 units per group: components of 4 to 7 convs
CLASSES = 10


@functools.lru_cache(maxsize=1)
def fashion_test_set():
    """The official Fashion-MNIST test images and labels (the smaller file: fast to read)."""
    images, _ = read_idx(os.path.join(FASHION, 't10k-images-idx3-ubyte.gz'), 3)
    labels, _ = read_idx(os.path.join(FASHION, 't10k-labels-idx1-ubyte.gz'), 1)
    return images, labels


def fashion_batches(count, size=16):
    """`count` batches of real Fashion-MNIST images, scaled to [0, 1]."""
    images, labels = fashion_test_set()
    images = images[:count * size].reshape(count, size, 1, 28, 28).astype('float32') / 255
    labels = labels[:count * size].reshape(count, size).astype('float32')
    return [(mx.nd.array(x), mx.nd.array(y)) for x, y in zip(images, labels)]


def train_steps(net, batches):
    trainer = gluon.Trainer(net.collect_params(), 'sgd',
                            {'learning_rate': 0.1, 'momentum': 0.9})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    for x, y in batches:
        with autograd.record():
            loss = sum(loss_fn(out, y).mean() for out in net(x))
        loss.backward()
        trainer.step(1)


@pytest.fixture(scope='module')
def trained():
    """A tiny ensemble after 6 SGD steps on real images, and a test batch."""
    mx.random.seed(3)
    net = network.get_net('ensemble', depth=DEPTH, num_classes=CLASSES)
    net.initialize(network.original_initializer())
    batches = fashion_batches(7)
    train_steps(net, batches[:6])
    return net, batches[6][0]


def running_means(bn):
    return [bn.stats(k)[0].data().asnumpy() for k in range(bn.paths)]


def test_statistics_sets_per_layer():
    net = network.get_net('ensemble', depth=DEPTH)
    sets = {'stem': net.stem.bn.paths}
    for g, group in enumerate(net.groups, 1):
        sets['g%d' % g] = {group.left.bn.paths} | {unit.bn.paths for unit in group.right}
    assert sets == {'stem': 1, 'g1': {1}, 'g2': {2}, 'g3': {4}}


@pytest.mark.slow   # trains (the fixture)
def test_components_sharing_a_layer_keep_their_own_statistics(trained):
    net, _ = trained
    # g2's layers see the output of g1's left path (components 0, 2, 4, 6) or of its right
    # path (1, 3, 5, 7): two different sets of running statistics after training
    for bn in [net.groups[1].left.bn] + [unit.bn for unit in net.groups[1].right]:
        first, second = running_means(bn)
        assert not np.allclose(first, second, atol=1e-4), bn.name
    # g3's layers: four sets, all different
    g3 = running_means(net.groups[2].left.bn)
    for a in range(4):
        for b in range(a + 1, 4):
            assert not np.allclose(g3[a], g3[b], atol=1e-4)
    # while gamma, beta and the conv weight are single Parameters that training moved
    # away from their initial values, used by every path
    left = net.groups[1].left
    names = sorted(name[len(left.prefix):] for name in left.collect_params())
    assert names == ['conv0_weight', 'pathbatchnorm0_beta', 'pathbatchnorm0_gamma',
                     'pathbatchnorm0_path0_running_mean', 'pathbatchnorm0_path0_running_var',
                     'pathbatchnorm0_path1_running_mean', 'pathbatchnorm0_path1_running_var']
    assert not np.allclose(left.bn.gamma.data().asnumpy(), 1)
    # components 0 (g1 left) and 1 (g1 right) built alone: same g2-left weights, gamma and
    # beta, different running statistics
    zero, one = (components.build_component(net, components.all_choices(net)[i])
                 for i in (0, 1))
    for mine, theirs in zip(zero.body[1][0].collect_params().values(),
                            one.body[1][0].collect_params().values()):
        same = np.array_equal(mine.data().asnumpy(), theirs.data().asnumpy())
        assert same == (not mine.name.endswith(('running_mean', 'running_var'))), mine.name


@pytest.mark.slow   # trains
def test_hybridized_training_keeps_them_too():
    """As train_model.py trains: hybridized with static memory."""
    mx.random.seed(3)
    net = network.get_net('ensemble', depth=5, num_classes=CLASSES)
    net.initialize(network.original_initializer())
    net.hybridize(static_alloc=True, static_shape=True)
    train_steps(net, fashion_batches(2))
    sets = running_means(net.groups[2].left.bn)
    assert len(sets) == 4
    for a in range(4):
        for b in range(a + 1, 4):
            assert not np.allclose(sets[a], sets[b], atol=1e-5)


@pytest.mark.slow   # trains (the fixture)
def test_each_output_is_its_component_built_alone(trained):
    net, x = trained
    outputs = [y.asnumpy() for y in net(x)]
    for i, choices in enumerate(components.all_choices(net)):
        assert choices == tuple(bool(i >> g & 1) for g in range(3))
        alone = components.build_component(net, choices)
        assert len(alone.units()) == components.component_depth(net, choices)
        np.testing.assert_allclose(alone(x).asnumpy(), outputs[i], rtol=1e-5, atol=1e-5)
    assert not np.allclose(outputs[0], outputs[7])


@pytest.mark.parametrize('wide_stem', [False, True])
def test_each_component_built_alone_at_widen_2(wide_stem):
    """At w = 2 the 16-channel stem is widened in g1 with stride 1: the components follow."""
    mx.random.seed(3)
    net = network.get_net('ensemble', depth=5, widen_factor=2, num_classes=CLASSES,
                          wide_stem=wide_stem)
    net.initialize(network.original_initializer())
    x = mx.nd.random.uniform(shape=(2, 1, 28, 28))
    outputs = [y.asnumpy() for y in net(x)]
    for i, choices in enumerate(components.all_choices(net)):
        alone = components.build_component(net, choices)
        np.testing.assert_allclose(alone(x).asnumpy(), outputs[i], rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings('ignore::UserWarning')
def test_checkpoint_and_export_keep_every_components_statistics(trained, tmp_path):
    net, x = trained
    expected = [y.asnumpy() for y in net(x)]
    path = str(tmp_path / 'ensemble.params')
    net.save_parameters(path)
    saved = mx.nd.load(path)
    # depth 8: 2 right units per group; the stem one set, each of the 3 layers of g1, g2,
    # g3 (left conv and 2 right units) 1, 2 and 4 sets
    assert network.ensemble.layout(DEPTH) == [2, 2, 2]
    assert sum(key.endswith('running_mean') for key in saved) == 1 + 3 * (1 + 2 + 4)
    fresh = network.get_net('ensemble', depth=DEPTH, num_classes=CLASSES)
    fresh.load_parameters(path)
    for a, b in zip(expected, fresh(x)):
        np.testing.assert_allclose(b.asnumpy(), a, rtol=1e-6, atol=1e-6)
    fresh.hybridize()
    fresh(x)
    fresh.export(str(tmp_path / 'net'))
    loaded = gluon.SymbolBlock.imports(str(tmp_path / 'net-symbol.json'), ['data'],
                                       str(tmp_path / 'net-0000.params'))
    got = loaded(x)
    assert len(got) == 8
    for a, b in zip(expected, got):
        np.testing.assert_allclose(b.asnumpy(), a, rtol=1e-5, atol=1e-5)
