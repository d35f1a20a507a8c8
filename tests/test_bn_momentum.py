"""BatchNorm momentum: the original's final value per network, `--bn-momentum` to change it,
and its place in the run's flags (log, checkpoint, resume)."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

import network
from engine import runfiles
from network import onednn
from network.ensemble import PathBatchNorm

# The original's final code: network/base.py (every CIFAR-style network) 0.9, network/
# ensemble.py 0.99, symbol_cross.py and symbol_resnet.py 0.9.
ORIGINAL = {'ensemble': 0.99}


def momenta(net):
    """The momentum of every BatchNorm in `net`."""
    found = []
    for block in network.blocks.walk(net):
        if isinstance(block, (mx.gluon.nn.BatchNorm, mx.gluon.nn.BatchNormReLU)):
            found.append(block._kwargs['momentum'])
        elif isinstance(block, PathBatchNorm):
            found.append(block.momentum)
    return found


def small_net(name, **kwargs):
    """`name` at its smallest valid depth (the ImageNet networks have one size)."""
    for depth in range(3, 40):
        try:
            return network.get_net(name, depth=depth, **kwargs)
        except ValueError as err:
            if 'invalid depth' not in str(err):
                raise
    raise AssertionError('no valid depth below 40 for %s' % name)


@pytest.mark.parametrize('name', network.list_nets())
def test_every_batchnorm_has_the_original_momentum(name):
    expected = ORIGINAL.get(name, 0.9)
    found = momenta(small_net(name))
    assert found and set(found) == {expected}
    assert network.spec_of(name).bn_momentum == expected


@pytest.mark.parametrize('name', ['cross', 'ensemble', 'symbol_resnet'])
def test_bn_momentum_reaches_every_batchnorm_also_once_fused(name):
    net = small_net(name, bn_momentum=0.5)
    assert set(momenta(net)) == {0.5}
    onednn.fuse_bn_relu(net)   # the CPU's BatchNorm+ReLU keeps it (the ensemble has none)
    assert set(momenta(net)) == {0.5}


@pytest.mark.parametrize('name, bn_momentum', [('cross', None), ('resnet', 0.99),
                                               ('ensemble', None), ('plain', 0.5)])
def test_one_step_moves_the_running_mean_by_one_minus_the_momentum(name, bn_momentum):
    """From running mean 0, one training step leaves (1 - momentum) x the batch mean of the
    stem convolution's output: the momentum is what the operator uses."""
    mx.random.seed(0)
    net = small_net(name, bn_momentum=bn_momentum)
    net.initialize(network.original_initializer())
    x = mx.nd.random.uniform(shape=(16, 1, 28, 28))
    with autograd.record():
        loss = sum(y.sum() for y in network.outputs_of(net(x)))
    loss.backward()
    if name == 'ensemble':
        conv, mean = net.stem.conv, net.stem.bn.stats(0)[0]
    else:
        conv, mean = net.stem[0], net.stem[1].running_mean
    momentum = network.spec_of(name).bn_momentum if bn_momentum is None else bn_momentum
    batch_mean = conv(x).asnumpy().mean(axis=(0, 2, 3))
    np.testing.assert_allclose(mean.data().asnumpy(), (1 - momentum) * batch_mean,
                               rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize('value', [1, 1.5, -0.1, float('nan'), '0.9', True])
def test_a_momentum_mxnet_cannot_use_is_refused(value):
    with pytest.raises(ValueError, match=r'momentum must be a number in \[0, 1\)'):
        network.get_net('resnet', depth=8, bn_momentum=value)


def _state(network_name, **flags):
    return {'args': dict(flags), 'run': {'network': network_name, 'rand_seed': 1},
            'rand_seed': 1}


@pytest.mark.parametrize('name, given, change', [
    ('cross', 0.9, ['--bn-momentum 0.99 -> 0.9']),   # trained before the flag, with 0.99
    ('cross', 0.99, []),
    ('ensemble', 0.99, []),
    ('symbol_cross', 0.9, []),                        # the ImageNet networks had 0.9
])
def test_a_checkpoint_from_before_the_flag_resumes_only_with_its_momentum(name, given,
                                                                          change):
    assert runfiles.changed_flags(_state(name), {'bn_momentum': given}) == change


def test_the_momentum_is_kept_with_the_run_flags():
    assert runfiles.changed_flags(_state('cross', bn_momentum=0.5),
                                  {'bn_momentum': 0.9}) == ['--bn-momentum 0.5 -> 0.9']
    assert runfiles.changed_flags(_state('cross', bn_momentum=0.5), {'bn_momentum': 0.5}) == []
