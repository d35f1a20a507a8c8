"""Deleting blocks at test time (network/lesion.py): resnet, cross, and the skip networks'
path removal, on tiny networks whose lesioned output is known."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

import network
from network import lesion

# a lesioned network leaves the deleted branches' parameters unused, and Gluon says so
pytestmark = pytest.mark.filterwarnings('ignore:Parameter .* is not used by any computation')


def trained_like(name, depth, seed=3):
    """A network with the original's random weights and random BatchNorm parameters and
    statistics (variances positive), so that no BatchNorm is the identity."""
    mx.random.seed(seed)
    net = network.get_net(name, depth=depth, num_classes=10)
    net.initialize(network.original_initializer())
    net(mx.nd.zeros((1, 1, 8, 8)))
    rng = np.random.RandomState(seed)
    for param in net.collect_params().values():
        if len(param.shape) > 1:   # conv and classifier weights
            continue
        value = rng.randn(*param.shape) * 0.3
        if param.name.endswith('_var'):
            value = 0.5 + np.abs(value)
        elif param.name.endswith('_gamma'):
            value = 1 + value
        param.set_data(mx.nd.array(value.astype('float32')))
    return net


def images(count=4, seed=0):
    return mx.nd.array(np.random.RandomState(seed).rand(count, 1, 8, 8).astype('float32'))


def bits(array):
    return array.asnumpy().view(np.uint32)


def resnet_by_hand(net, x, deleted):
    """The resnet without the blocks `deleted`: their input passes on unchanged."""
    y = net.stem(x)
    for name, block in lesion.lesion_blocks(net):
        y = y if name in deleted else block(y)
    return net.output(y)


def cross_by_hand(net, x, deleted, merge=True):
    """The cross network whose blocks `deleted` pass on the merge of the streams (or, with
    merge=False, each stream unchanged)."""
    x1 = x2 = net.stem(x)
    for name, block in lesion.lesion_blocks(net):
        if name not in deleted:
            out = block(x1, x2)
        elif merge:
            out = mx.nd.relu(0.5 * (x1 + x2))
            out = out if block.last else (out, out)
        else:
            out = x1 if block.last else (x1, x2)
        if block.last:
            return net.output(out)
        x1, x2 = out


def zero_branch(unit):
    """Make a conv unit output exactly 0: its BatchNorm's scale and shift 0."""
    bn = unit[1]
    bn.gamma.set_data(mx.nd.zeros(bn.gamma.shape))
    bn.beta.set_data(mx.nd.zeros(bn.beta.shape))


# ---- which blocks ----------------------------------------------------------------------------

@pytest.mark.parametrize('name, depth', [('resnet', 14), ('cross', 26)])
def test_blocks_that_change_the_channels_are_skipped(name, depth):
    # both: blocks [2, 2, 2]; the first block of g2 and of g3 has a 1x1 shortcut conv
    net = network.get_net(name, depth=depth)
    assert lesion.deletable_blocks(net) == ['g1_b1', 'g1_b2', 'g2_b2', 'g3_b2']
    assert lesion.skipped_blocks(net) == ['g2_b1', 'g3_b1']
    with pytest.raises(ValueError, match='g2_b1 changes the channels'):
        lesion.set_deleted(net, ['g1_b1', 'g2_b1'])
    with pytest.raises(ValueError, match='no block g4_b1'):
        lesion.set_deleted(net, ['g4_b1'])


@pytest.mark.parametrize('name', ['half', 'plain', 'fuse3', 'ensemble'])
def test_other_networks_have_no_deletable_blocks(name):
    with pytest.raises(ValueError, match='resnet and cross'):
        lesion.deletable_blocks(network.get_net(name, depth=14))


# ---- the lesioned function -------------------------------------------------------------------

@pytest.mark.parametrize('deleted', [['g1_b1'], ['g1_b2', 'g2_b2'], ['g1_b1', 'g1_b2',
                                                                     'g2_b2', 'g3_b2']])
def test_resnet_lesion_is_the_network_without_those_blocks(deleted):
    net = trained_like('resnet', 14)
    x = images()
    whole = net(x)
    lesion.set_deleted(net, deleted)
    lesioned = net(x)
    assert np.array_equal(bits(lesioned), bits(resnet_by_hand(net, x, deleted)))
    assert not np.allclose(lesioned.asnumpy(), whole.asnumpy(), atol=1e-3)


@pytest.mark.parametrize('deleted', [['g1_b2'], ['g2_b2', 'g3_b2'], ['g1_b1', 'g1_b2',
                                                                     'g2_b2', 'g3_b2']])
def test_cross_lesion_keeps_the_merge(deleted):
    net = trained_like('cross', 26)
    x = images()
    lesion.set_deleted(net, deleted)
    lesioned = net(x).asnumpy()
    np.testing.assert_allclose(lesioned, cross_by_hand(net, x, deleted).asnumpy(),
                               rtol=1e-5, atol=1e-6)
    # the streams differ after g1_b1, so dropping the merge too would be another function
    if deleted != ['g1_b1', 'g1_b2', 'g2_b2', 'g3_b2']:
        unmerged = cross_by_hand(net, x, deleted, merge=False).asnumpy()
        assert not np.allclose(lesioned, unmerged, atol=1e-3)


@pytest.mark.parametrize('name, depth, block', [('resnet', 14, 'g1_b2'),
                                                ('resnet', 14, 'g3_b2'),
                                                ('cross', 26, 'g2_b2'),
                                                ('cross', 26, 'g3_b2')])   # cross: the last
def test_a_branch_that_outputs_zero_deletes_nothing(name, depth, block):
    """With the last BatchNorm of its branch(es) at scale 0 and shift 0 a block adds exactly
    0 to its shortcut: the whole network then computes what the lesioned one does."""
    net = trained_like(name, depth)
    x = images()
    lesion.set_deleted(net, [block])
    before = net(x).asnumpy()
    target = dict(lesion.lesion_blocks(net))[block]
    for branch in ([target.body] if name == 'resnet' else [target.body1, target.body2]):
        zero_branch(branch[-1])
    assert np.array_equal(net(x).asnumpy(), before)   # deleted: the branch is not read
    lesion.set_deleted(net, [])
    np.testing.assert_allclose(net(x).asnumpy(), before, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name, depth', [('resnet', 14), ('cross', 26)])
def test_restored_network_computes_bitwise_as_before(name, depth):
    """Hybridized as training runs it: after a lesion and its undoing, outputs (inference
    and training mode) and gradients are bitwise those of an untouched twin."""
    x = images(8)

    def run(net):
        net.hybridize(static_alloc=True, static_shape=True)
        inference = net(x)
        with autograd.record():
            training = net(x)
            loss = (training * mx.nd.arange(training.size).reshape(training.shape)).sum()
        loss.backward()
        return [inference, training] + [p.grad() for p in net.collect_params().values()
                                        if p.grad_req != 'null']
    twin, net = trained_like(name, depth), trained_like(name, depth)
    net.hybridize(static_alloc=True, static_shape=True)
    whole = net(x)
    lesion.set_deleted(net, ['g1_b2', 'g3_b2'])
    assert not np.allclose(net(x).asnumpy(), whole.asnumpy(), atol=1e-3)  # graph rebuilt
    lesion.set_deleted(net, [])
    for a, b in zip(run(net), run(twin)):
        assert np.array_equal(bits(a), bits(b))


# ---- path removal in a skip network ----------------------------------------------------------

def skip_by_hand(net, x, block_name, path):
    y = net.stem(x)
    for name, block in lesion.named_blocks(net, type(net.features[0][0])):
        if name != block_name:
            y = block(y)
        else:
            y = mx.nd.relu(block.line(y) if path == 'right' else block.body(y))
    return net.output(y)


@pytest.mark.parametrize('block', ['g1_b1', 'g2_b1', 'g3_b1'])
@pytest.mark.parametrize('path', ['left', 'right'])
def test_removing_a_path_leaves_the_other_path_alone(block, path):
    net = trained_like('fuse3', 8)
    x = images()
    whole = net(x).asnumpy()
    lesion.set_removed_paths(net, {block: path})
    removed = net(x).asnumpy()
    np.testing.assert_allclose(removed, skip_by_hand(net, x, block, path).asnumpy(),
                               rtol=1e-5, atol=1e-6)
    assert not np.allclose(removed, whole, atol=1e-3)
    lesion.set_removed_paths(net, {})
    assert np.array_equal(net(x).asnumpy(), whole)


def test_a_left_path_that_outputs_zero_is_removed_for_free():
    net = trained_like('fuse3', 8)
    x = images()
    lesion.set_removed_paths(net, {'g2_b1': 'left'})
    removed = net(x).asnumpy()
    zero_branch(dict(lesion.named_blocks(net, type(net.features[0][0])))['g2_b1'].line)
    lesion.set_removed_paths(net, {})
    np.testing.assert_allclose(net(x).asnumpy(), removed, rtol=1e-5, atol=1e-6)


def test_bad_path_removals():
    net = network.get_net('fuse3', depth=8)
    with pytest.raises(ValueError, match='left or right'):
        lesion.set_removed_paths(net, {'g1_b1': 'middle'})
    with pytest.raises(ValueError, match='no block g1_b2'):
        lesion.set_removed_paths(net, {'g1_b2': 'left'})
    with pytest.raises(ValueError, match='SkipBlock'):
        lesion.set_removed_paths(network.get_net('resnet', depth=8), {})
