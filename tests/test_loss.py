"""The training loss (engine/loss.py): the ensemble's sum against its mean."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

import network
from engine.loss import training_loss


def gradients(net, x, y, mode):
    with autograd.record():
        objective, reported = training_loss(net(x), y, mode)
    objective.backward()
    return ({name: p.grad().asnumpy().copy() for name, p in net.collect_params().items()
             if p.grad_req != 'null'}, reported.asnumpy())


def test_sum_gives_every_component_eight_times_the_mean_gradient():
    mx.random.seed(0)
    net = network.get_net('ensemble', depth=5, num_classes=3)
    net.initialize(network.original_initializer())
    x = mx.nd.array(np.random.RandomState(0).randn(4, 1, 8, 8))
    y = mx.nd.array([0, 1, 2, 1])
    summed, reported_sum = gradients(net, x, y, 'sum')
    mean, reported_mean = gradients(net, x, y, 'mean')
    assert len(network.outputs_of(net(x))) == 8
    for name in mean:
        assert np.abs(mean[name]).max() > 0, name
        np.testing.assert_allclose(summed[name], 8 * mean[name], rtol=1e-4, atol=1e-7)
    # the reported loss is the components' mean cross-entropy in both modes
    np.testing.assert_allclose(reported_sum, reported_mean, rtol=1e-6)


@pytest.mark.parametrize('mode', ['sum', 'mean'])
def test_one_output_networks_ignore_the_mode(mode):
    net = network.get_net('plain', depth=5, num_classes=3)
    net.initialize(network.original_initializer())
    x, y = mx.nd.ones((2, 1, 8, 8)), mx.nd.array([0, 2])
    objective, reported = training_loss(net(x), y, mode)
    expected = mx.gluon.loss.SoftmaxCrossEntropyLoss()(net(x), y)
    assert np.array_equal(objective.asnumpy(), expected.asnumpy())
    assert reported is objective
