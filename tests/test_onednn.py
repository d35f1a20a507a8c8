"""The fused BatchNorm+ReLU kernel (network/onednn.py) computes exactly what the unfused
network computes, on every network, and the training engine uses it on the CPU only."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

import network
from network import IMAGENET_NETS, get_net, list_nets, onednn

# small depths; the ImageNet networks take no depth
DEPTH = {'plain': 5, 'resnet': 8, 'half': 14, 'side': 14, 'cross': 14, 'fuse3': 5,
         'fuse6': 8, 'ensemble': 5}


def twins(name):
    """The same network twice with the same weights; the second one fused."""
    # 28x28 (Fashion-MNIST): the fused backward of plain's last unit failed there, not at 16x16
    shape = (3, 224, 224) if name in IMAGENET_NETS else (1, 28, 28)
    nets = [get_net(name, depth=DEPTH.get(name), num_classes=10) for _ in range(2)]
    fused = onednn.fuse_bn_relu(nets[1])
    for net in nets:
        mx.random.seed(7)
        network.initialize(net, shape)
    return nets, shape, fused


def step(net, x, labels):
    """Training-mode outputs and gradients of one backward pass, then test-mode outputs."""
    loss = gluon.loss.SoftmaxCrossEntropyLoss()
    with autograd.record():
        outs = network.outputs_of(net(x))
        total = mx.nd.add_n(*[loss(o, labels).mean() for o in outs])
    total.backward()
    params = sorted(net.collect_params().items())
    grads = [p.grad().asnumpy() for _, p in params if p.grad_req != 'null']
    stats = [p.data().asnumpy() for _, p in params if p.grad_req == 'null']
    return ([o.asnumpy() for o in outs], grads, stats,
            [o.asnumpy() for o in network.outputs_of(net(x))])


@pytest.mark.parametrize('name', [  # the 224x224 networks take minutes: the slow tier
    pytest.param(name, marks=pytest.mark.slow) if name in IMAGENET_NETS else name
    for name in list_nets()])
def test_fused_network_computes_the_same_numbers(name):
    (plain, fused), shape, count = twins(name)
    expected_units = 0 if name == 'ensemble' else 1   # the ensemble has its own conv units
    assert (count > 0) == bool(expected_units)
    rng = np.random.RandomState(3)
    batch = 1 if name in IMAGENET_NETS else 4   # 224x224: one image keeps it quick
    x = mx.nd.array(rng.randn(batch, *shape).astype('float32'))
    labels = mx.nd.array(rng.randint(0, 10, batch))
    for net in (plain, fused):
        net.hybridize(static_alloc=True, static_shape=True)
    results = [step(net, x, labels) for net in (plain, fused)]
    for what, a, b in zip(('train outputs', 'gradients', 'running statistics',
                           'test outputs'), *results):
        assert len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b)), what


def test_fused_checkpoint_loads_into_the_unfused_network(tmp_path):
    (plain, fused), shape, _ = twins('cross')
    # the same parameters in the same order: the optimizer's saved states (kept by the
    # parameter's index) go back to the same weights on a resume across versions
    def names(net):   # without the network's own prefix (crossnet0_, crossnet1_)
        return [name.split('_', 1)[1] for name in net.collect_params().keys()]
    assert names(plain) == names(fused)
    assert ([k for k, _ in plain._collect_params_with_prefix().items()]
            == [k for k, _ in fused._collect_params_with_prefix().items()])
    x = mx.nd.array(np.random.RandomState(4).randn(2, *shape).astype('float32'))
    with autograd.record():   # running statistics move away from their initial values
        fused(x)
    path = str(tmp_path / 'fused.params')
    fused.save_parameters(path)
    plain.load_parameters(path)
    for (_, p), (_, q) in zip(sorted(plain.collect_params().items()),
                              sorted(fused.collect_params().items())):
        assert np.array_equal(p.data().asnumpy(), q.data().asnumpy())
    assert np.array_equal(plain(x).asnumpy(), fused(x).asnumpy())


def test_available_only_on_the_cpu_with_onednn(monkeypatch):
    assert onednn.available([mx.cpu(), mx.cpu(1)])
    assert not onednn.available([mx.cpu(), mx.gpu(0)])
    assert onednn.fuse_where_available(get_net('resnet', depth=8), [mx.gpu(0)]) == 0
    assert onednn.fuse_where_available(get_net('resnet', depth=8), [mx.cpu()]) > 0
    monkeypatch.setenv('MXNET_MKLDNN_ENABLED', '0')
    assert not onednn.available([mx.cpu()])
    assert onednn.fuse_where_available(get_net('resnet', depth=8), [mx.cpu()]) == 0
