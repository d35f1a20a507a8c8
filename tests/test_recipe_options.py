"""--clip-gradient, --ema and --cutmix (engine/optim.py, engine/ema.py, engine/recipe.py):
their arithmetic against hand computations, and in training runs: recorded in the run's
settings, exact on --resume, and --ema never touching the trained weights."""
import json
import os

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

import network
import train_model
from engine import checkpoint, logs, recipe
from engine.ema import WeightAverage
from engine.evaluate import evaluate
from engine.optim import OriginalNAG
from test_recipe import (assert_same_params, final_params, log_text,  # noqa: F401
                         small_slice, train)
from test_training import params_of


# ---------------------------------------------------------------- --clip-gradient

def test_clipping_bounds_each_element_of_the_rescaled_gradient():
    opt = OriginalNAG(learning_rate=0.1, momentum=0.9, wd=0.01, rescale_grad=0.5,
                      clip_gradient=0.25)
    weight = mx.nd.array([1.0, -2.0, 0.5, 3.0])
    state = opt.create_state(0, weight)
    grads = [np.array([0.3, -2.0, 0.1, 8.0]), np.array([-4.0, 0.2, 0.0, 0.4])]
    w, m = np.array([1.0, -2.0, 0.5, 3.0]), np.zeros(4)
    for grad in grads:
        opt.update(0, weight, mx.nd.array(grad), state)
        # by hand: 0.5 * grad cut to [-0.25, 0.25], then decay, momentum, step
        g = np.clip(0.5 * grad, -0.25, 0.25) + 0.01 * w
        m = 0.9 * m + g
        w = w - 0.1 * (g + 0.9 * m)
    np.testing.assert_allclose(weight.asnumpy(), w, rtol=1e-6)
    assert np.clip(0.5 * grads[0], -0.25, 0.25).tolist() == [0.15, -0.25, 0.05, 0.25]


@pytest.mark.slow
def test_clip_gradient_reaches_the_training_and_is_recorded(small_slice, tmp_path):  # noqa: F811
    plain = train(small_slice, tmp_path / 'plain', '--num-epochs', '1')
    # a bound no gradient reaches: the clipping runs and changes nothing
    loose = train(small_slice, tmp_path / 'loose', '--num-epochs', '1', '--clip-gradient',
                  '1e30')
    tight = train(small_slice, tmp_path / 'tight', '--num-epochs', '1', '--clip-gradient',
                  '0.001')
    assert_same_params(final_params(plain, 1), final_params(loose, 1))
    a, b = final_params(plain, 1), final_params(tight, 1)
    assert any(not np.array_equal(a[k], b[k]) for k in a)
    state = checkpoint.read_state(tight['weights_prefix'], 1)
    assert state['args']['clip_gradient'] == 0.001
    assert 'clip_gradient=0.001' in log_text(tight).splitlines()[1]
    assert 'clip_gradient=None' in log_text(plain).splitlines()[1]


# ---------------------------------------------------------------- --ema

def small_net(contexts):
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Dense(3, in_units=4), gluon.nn.BatchNorm(in_channels=3))
    net.initialize(mx.init.Uniform(1.0), ctx=contexts)
    return net


def test_the_average_follows_the_formula_for_weights_and_running_statistics():
    net = small_net([mx.cpu()])
    params = net._collect_params_with_prefix()
    assert sorted(params) == ['0.bias', '0.weight', '1.beta', '1.gamma', '1.running_mean',
                              '1.running_var']
    rng = np.random.default_rng(3)
    start = {name: p.data().asnumpy() for name, p in params.items()}
    ema = WeightAverage(net, 0.9, mx.cpu())
    hand = {name: value.astype(np.float64) for name, value in start.items()}
    for _ in range(5):   # new weights (as an update would leave), then the average
        for name, param in params.items():
            value = rng.normal(size=param.shape).astype(np.float32)
            param.set_data(mx.nd.array(value))
            hand[name] = 0.9 * hand[name] + 0.1 * value
        ema.update()
    for name, average in ema.state().items():
        np.testing.assert_allclose(average.asnumpy(), hand[name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)
    # one step from known values, exactly: 0.9 * 10 + 0.1 * 20 = 11
    ema.averages['0.bias'][:] = 10.0
    params['0.bias'].set_data(mx.nd.full((3,), 20.0))
    ema.update()
    assert ema.averages['0.bias'].asnumpy().tolist() == pytest.approx([11.0] * 3, abs=1e-5)


def test_swapping_the_average_in_and_out_leaves_every_device_as_it_was():
    contexts = [mx.cpu(0), mx.cpu(1)]
    net = small_net(contexts)
    params = net._collect_params_with_prefix()
    # the devices' running statistics differ, as after training on split batches
    params['1.running_mean'].list_data()[1][:] = 7.0
    before = {name: [a.asnumpy().copy() for a in p.list_data()] for name, p in params.items()}
    ema = WeightAverage(net, 0.5, contexts[0])
    for average in ema.averages.values():
        average[:] = -3.0
    with ema.swapped_in():
        for param in params.values():
            for array in param.list_data():
                assert (array.asnumpy() == -3.0).all()
    for name, param in params.items():
        for array, saved in zip(param.list_data(), before[name]):
            np.testing.assert_array_equal(array.asnumpy(), saved, err_msg=name)


def ema_evaluated_again(result, log_dir, epoch, data_dir):
    """Top-1 hits of the saved averaged weights, loaded into a fresh network."""
    args = train_model.parse(['--dataset', 'fashion-mnist', '--data-dir', data_dir,
                              '--log-dir', str(log_dir), '--network', 'cross', '--depth',
                              '14', '--cpu', '--test-batch-size', '50'])
    _, net = train_model.build_net(args)
    network.initialize(net, train_model.input_shape(args), mx.init.Zero(), [mx.cpu()])
    net.load_parameters(checkpoint.ema_file(result['weights_prefix'], epoch), ctx=mx.cpu())
    _, val_it = train_model.load_data(args, seed=7, num_parts=1, part_index=0)
    sums = evaluate(net, val_it, [mx.cpu()], 50, False)
    return sums['top1'], sums['n']


@pytest.mark.slow
def test_ema_is_evaluated_saved_and_never_changes_the_trained_weights(small_slice,  # noqa: F811
                                                                      tmp_path):
    plain = train(small_slice, tmp_path / 'plain', '--num-epochs', '2')
    averaged = train(small_slice, tmp_path / 'ema', '--num-epochs', '2', '--ema', '0.9')
    assert_same_params(final_params(plain, 2), final_params(averaged, 2))
    assert averaged['val_acc'] == plain['val_acc']
    with open(averaged['log_path'].replace('.txt', '.metrics.jsonl')) as handle:
        metrics = [json.loads(line) for line in handle]
    assert all(0 < m['ema_val_acc'] <= 1 and m['ema_val_loss'] > 0 for m in metrics)
    text = log_text(averaged)
    assert 'Epoch[1] Validation-ema-accuracy=%f' % metrics[1]['ema_val_acc'] in text
    assert logs.parse_log(averaged['log_path']).unparseable_lines == 0
    assert [r.val_acc for r in logs.parse_log(averaged['log_path']).records] == \
        [m['val_acc'] for m in metrics]   # the reader keeps the trained weights' figures
    # a weights file beside each checkpoint, whose evaluation is the logged one
    prefix = averaged['weights_prefix']
    assert os.path.exists(checkpoint.ema_file(prefix, 1))
    ema, raw = params_of(checkpoint.ema_file(prefix, 2)), final_params(averaged, 2)
    assert sorted(ema) == sorted(raw) and any(not np.array_equal(ema[k], raw[k]) for k in raw)
    hits, count = ema_evaluated_again(averaged, tmp_path / 'ema', 2, small_slice)
    assert hits / count == pytest.approx(metrics[1]['ema_val_acc'], abs=1e-9)
    assert not os.path.exists(checkpoint.ema_file(plain['weights_prefix'], 2))


# ---------------------------------------------------------------- --cutmix

class FixedDraws:
    """A generator whose integers() answers from a list."""

    def __init__(self, *values):
        self.values = list(values)

    def integers(self, high):
        value = self.values.pop(0)
        assert 0 <= value < high
        return value


@pytest.mark.parametrize('lam, centre, box, area', [
    # sides 28 * sqrt(0.25) = 14, half 7: rows 3-7..3+7 cut at 0, columns 20-7..20+7
    (0.75, (3, 20), (0, 10, 13, 27), 10 * 14),
    # sides int(28 * sqrt(0.5)) = 19, half 9, inside the image
    (0.5, (14, 14), (5, 23, 5, 23), 18 * 18),
    # lam 1: no box at all
    (1.0, (5, 5), (5, 5, 5, 5), 0),
])
def test_cutmix_box_and_its_area_weight_by_hand(lam, centre, box, area):
    got_box, got_lam = recipe.cutmix_box(lam, 28, 28, FixedDraws(*centre))
    assert got_box == box
    assert got_lam == pytest.approx(1 - area / 784.0)


def test_cutmix_pastes_the_reversed_batch_and_mixes_targets_by_area():
    data = mx.nd.array(np.arange(4 * 1 * 6 * 6, dtype=np.float32).reshape(4, 1, 6, 6))
    labels = mx.nd.array([0, 1, 2, 1])
    mixer = recipe.BatchMixer(3, 0.0, 0.0, cutmix_alpha=1.0)
    mixer.start_epoch(7, 3)
    mixed, target, plain, accuracy_labels = mixer.mix(data, labels)
    # the same draws by hand: lam, then the centre row and column
    rng = np.random.default_rng([7, 3])
    lam = rng.beta(1.0, 1.0)
    side = int(6 * np.sqrt(1 - lam))
    row, col = rng.integers(6), rng.integers(6)
    top, bottom = max(row - side // 2, 0), min(row + side // 2, 6)
    left, right = max(col - side // 2, 0), min(col + side // 2, 6)
    x = data.asnumpy()
    expected = x.copy()
    expected[:, :, top:bottom, left:right] = x[::-1, :, top:bottom, left:right]
    np.testing.assert_array_equal(mixed.asnumpy(), expected)
    weight = 1 - (bottom - top) * (right - left) / 36.0
    one_hot = np.eye(3)[[0, 1, 2, 1]]
    np.testing.assert_allclose(target.asnumpy(), weight * one_hot + (1 - weight) * one_hot[::-1],
                               rtol=1e-6)
    np.testing.assert_allclose(plain.asnumpy(), target.asnumpy())   # no smoothing
    dominant = [0, 1, 2, 1] if weight >= 0.5 else [1, 2, 1, 0]
    np.testing.assert_array_equal(accuracy_labels.asnumpy(), dominant)
    assert (bottom - top) * (right - left) > 0, 'the seed should give a box'


# ---------------------------------------------------------------- resume, refusals

@pytest.mark.slow
def test_the_new_flags_resume_exactly(small_slice, tmp_path):  # noqa: F811
    options = ('--ema', '0.9', '--cutmix', '1.0', '--clip-gradient', '0.5', '--lr-steps', '1',
               '--lr', '0.05')
    whole = train(small_slice, tmp_path / 'whole', '--num-epochs', '2', *options)
    train(small_slice, tmp_path / 'split', '--num-epochs', '1', *options)
    resumed = train(small_slice, tmp_path / 'split', '--num-epochs', '2', '--resume', *options)
    assert_same_params(final_params(whole, 2), final_params(resumed, 2))
    assert_same_params(params_of(checkpoint.ema_file(whole['weights_prefix'], 2)),
                       params_of(checkpoint.ema_file(resumed['weights_prefix'], 2)))
    assert resumed['ema_val_acc'] == whole['ema_val_acc']
    state = checkpoint.read_state(whole['weights_prefix'], 2)
    assert (state['args']['ema'], state['args']['cutmix'], state['args']['clip_gradient']) == \
        (0.9, 1.0, 0.5)
    head = log_text(whole).splitlines()[1]
    assert 'ema=0.9' in head and 'cutmix=1.0' in head and 'clip_gradient=0.5' in head
    # cutmix changed the training: not the run without it
    other = train(small_slice, tmp_path / 'other', '--num-epochs', '2', '--ema', '0.9',
                  '--clip-gradient', '0.5', '--lr-steps', '1', '--lr', '0.05')
    a, b = final_params(whole, 2), final_params(other, 2)
    assert any(not np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.slow
@pytest.mark.parametrize('changed, words', [
    (('--ema', '0.8'), ['--ema 0.9 -> 0.8']),
    (('--ema', '0'), ['--ema 0.9 -> 0.0']),
    (('--cutmix', '0.5'), ['--cutmix 0.0 -> 0.5']),
    (('--clip-gradient', '2'), ['--clip-gradient None -> 2.0']),
])
def test_resume_refuses_another_value(small_slice, tmp_path, changed, words):  # noqa: F811
    from common.errors import UserError
    train(small_slice, tmp_path, '--num-epochs', '1', '--ema', '0.9', '--lr-steps', '1')
    options = ['--ema', '0.9', '--lr-steps', '1'] + list(changed)
    with pytest.raises(UserError) as err:
        train(small_slice, tmp_path, '--num-epochs', '2', '--resume', *options)
    assert str(err.value).endswith('trained with other flags: %s; resume with its flags, or '
                                   'start a new run' % words[0])


def test_a_checkpoint_older_than_the_flags_counts_them_as_off():
    from engine.runfiles import changed_flags
    old = dict(rand_seed=7, args=dict(mixup=0.0, lr=0.1, bn_momentum=0.9),  # before the flags
               run=dict(network='cross', rand_seed=7))
    assert changed_flags(old, dict(mixup=0.0, lr=0.1, ema=0.0, cutmix=0.0,
                                   clip_gradient=None)) == []
    assert changed_flags(old, dict(mixup=0.0, lr=0.1, ema=0.0, cutmix=1.0,
                                   clip_gradient=0.5)) == [
        '--clip-gradient None -> 0.5', '--cutmix 0.0 -> 1.0']


@pytest.mark.slow
def test_resume_without_the_averaged_weights_is_refused(small_slice, tmp_path):  # noqa: F811
    from common.errors import UserError
    first = train(small_slice, tmp_path, '--num-epochs', '1', '--ema', '0.9', '--lr-steps', '1')
    os.remove(checkpoint.ema_file(first['weights_prefix'], 1))
    with pytest.raises(UserError, match='lacks its averaged weights .*-0001.ema.params'):
        train(small_slice, tmp_path, '--num-epochs', '2', '--resume', '--ema', '0.9',
              '--lr-steps', '1')
