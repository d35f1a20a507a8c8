"""The opt-in recipe options (engine/recipe.py, schedule.RecipeSchedule, best.py,
tensorboard.py): off they leave the original recipe alone, on they do what they say."""
import argparse
import glob
import json
import math
import struct
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import gluon

import train_model
from common.errors import UserError
from engine import checkpoint, logs, recipe, recipe_flags, schedule
from engine.ema import WeightAverage
from engine.optim import OriginalNAG
from helpers import assert_one_line_error, write_fashion_slice
from test_training import params_of, run_script

TRAIN, TEST, BATCH = 128, 50, 16   # 8 batches an epoch


@pytest.fixture(scope='module')
def small_slice(tmp_path_factory):
    return write_fashion_slice(str(tmp_path_factory.mktemp('recipe-slice')), TRAIN, TEST)


def train(data_dir, log_dir, *extra):
    argv = ['--dataset', 'fashion-mnist', '--data-dir', data_dir, '--log-dir', str(log_dir),
            '--network', 'cross', '--depth', '14', '--cpu', '--batch-size', str(BATCH),
            '--test-batch-size', '50', '--log-iters', '4', '--rand-seed', '7',
            '--no-progress', '--checkpoint-epochs', '1'] + list(extra)
    return train_model.run(train_model.parse(argv))


def final_params(result, epochs):
    return params_of(checkpoint.params_file(result['weights_prefix'], epochs))


def assert_same_params(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def log_text(result):
    with open(result['log_path']) as handle:
        return handle.read()


# ---------------------------------------------------------------- off: the original recipe

@pytest.mark.slow
def test_options_at_their_defaults_never_reach_the_recipe_code(small_slice, tmp_path,
                                                               monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError('the default recipe called into the opt-in code')
    for owner, name in ((recipe, 'soft_training_loss'), (recipe.BatchMixer, 'mix'),
                        (recipe, 'exclude_from_weight_decay'), (recipe, 'cutmix_box'),
                        (schedule.RecipeSchedule, 'lr_at'), (WeightAverage, '__init__'),
                        (mx.nd, 'clip')):
        monkeypatch.setattr(owner, name, forbidden)
    plain = train(small_slice, tmp_path / 'plain', '--num-epochs', '2')
    spelled = train(small_slice, tmp_path / 'spelled', '--num-epochs', '2', '--lr-mode',
                    'step', '--warmup-epochs', '0', '--label-smoothing', '0', '--mixup', '0',
                    '--cutmix', '0', '--ema', '0')
    assert_same_params(final_params(plain, 2), final_params(spelled, 2))
    assert plain['val_acc'] == spelled['val_acc']
    assert not glob.glob(plain['weights_prefix'] + '-best.*')
    assert "lr_mode='step'" in log_text(plain) and 'mixup=0.0' in log_text(plain)


# ---------------------------------------------------------------- learning-rate modes

def test_cosine_rates_follow_the_formula_and_reach_zero_at_the_last_batch():
    epoch_size, epochs, base = 10, 5, 0.4
    sched = schedule.RecipeSchedule('cosine', base, 0.1, [2], epoch_size, epochs)
    last = epochs * epoch_size - 1
    for k in (0, 7, 25, 48):
        assert sched.lr_at(k) == pytest.approx(base * 0.5 * (1 + math.cos(math.pi * k / last)))
    assert sched.lr_at(0) == base and sched.lr_at(last) == 0 and sched.lr_at(last + 3) == 0
    rates = [sched.lr_at(k) for k in range(last + 1)]
    assert all(a > b for a, b in zip(rates, rates[1:]))


def test_warm_up_rises_linearly_then_hands_over():
    epoch_size, base = 8, 0.2
    cosine = schedule.RecipeSchedule('cosine', base, 0.1, [], epoch_size, 4, warmup_epochs=1)
    assert [cosine.lr_at(k) for k in range(8)] == pytest.approx(
        [base * (k + 1) / 8 for k in range(8)])
    # the cosine starts at the full rate after the warm-up and ends at 0 on batch 31
    assert cosine.lr_at(8) == base and cosine.lr_at(31) == 0
    assert cosine.lr_at(20) == pytest.approx(base * 0.5 * (1 + math.cos(math.pi * 12 / 23)))
    step = schedule.RecipeSchedule('step', base, 0.1, [2, 3], epoch_size, 4, warmup_epochs=1)
    assert step.lr_at(3) == pytest.approx(base * 4 / 8)
    assert [step.lr_at(k) for k in (8, 15, 16, 24)] == pytest.approx(
        [base, base, base * 0.1, base * 0.01])


@pytest.mark.slow
def test_cosine_run_logs_what_the_rate_does(small_slice, tmp_path):
    result = train(small_slice, tmp_path, '--num-epochs', '3', '--lr-mode', 'cosine',
                   '--warmup-epochs', '1', '--lr', '0.05')
    text = log_text(result)
    assert ('learning rate per batch: linear warm-up over batches 0-7 to 0.05; cosine from '
            '0.05 at batch 8 to 0 at batch 23') in text
    assert 'Epoch[0] learning rate 0.00625 at batch 0 (batch 0 of the epoch, warm-up)' in text
    expected = 0.05 * 0.5 * (1 + math.cos(math.pi * 8 / 15))
    assert 'Epoch[2] learning rate %g at batch 16 (batch 0 of the epoch, cosine)' % expected \
        in text
    assert result['lr'] == 0.0
    assert logs.parse_log(result['log_path']).unparseable_lines == 0


# ---------------------------------------------------------------- label smoothing, mixup

def test_smoothed_loss_matches_a_hand_computation():
    logits = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    labels = np.array([0, 1])
    eps = 0.2
    mixer = recipe.BatchMixer(3, eps, 0.0)
    _, target, plain, accuracy_labels = mixer.mix(mx.nd.zeros((2, 1)), mx.nd.array(labels))
    objective, reported = recipe.soft_training_loss(mx.nd.array(logits), target, plain)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    hand = [-((1 - eps) * log_p[i, labels[i]] + eps / 3 * log_p[i].sum()) for i in range(2)]
    np.testing.assert_allclose(objective.asnumpy(), hand, rtol=1e-5)
    # what the log reports: the plain cross-entropy, comparable with runs without smoothing
    np.testing.assert_allclose(reported.asnumpy(), [-log_p[0, 0], -log_p[1, 1]], rtol=1e-4)
    np.testing.assert_array_equal(accuracy_labels.asnumpy(), labels)


def test_mixup_mixes_images_and_targets_with_one_seeded_weight():
    data = mx.nd.array(np.arange(8, dtype=np.float32).reshape(4, 2))
    labels = mx.nd.array([0, 1, 2, 1])
    mixer = recipe.BatchMixer(3, 0.0, 0.4)
    mixer.start_epoch(7, 3)
    mixed, target, plain, accuracy_labels = mixer.mix(data, labels)
    lam = np.random.default_rng([7, 3]).beta(0.4, 0.4)
    x = data.asnumpy()
    np.testing.assert_allclose(mixed.asnumpy(), lam * x + (1 - lam) * x[::-1], rtol=1e-5)
    one_hot = np.eye(3)[[0, 1, 2, 1]]
    np.testing.assert_allclose(target.asnumpy(), lam * one_hot + (1 - lam) * one_hot[::-1],
                               rtol=1e-5)
    dominant = [0, 1, 2, 1] if lam >= 0.5 else [1, 2, 1, 0]
    np.testing.assert_array_equal(accuracy_labels.asnumpy(), dominant)


@pytest.mark.slow
def test_mixup_and_smoothing_resume_exactly_and_change_the_training(small_slice, tmp_path):
    # (the cosine curve depends on --num-epochs, so a split run warms up into steps)
    options = ('--mixup', '0.4', '--label-smoothing', '0.1', '--warmup-epochs', '1',
               '--lr-steps', '1', '--lr', '0.05')
    whole = train(small_slice, tmp_path / 'whole', '--num-epochs', '2', *options)
    train(small_slice, tmp_path / 'split', '--num-epochs', '1', *options)
    resumed = train(small_slice, tmp_path / 'split', '--num-epochs', '2', '--resume', *options)
    assert_same_params(final_params(whole, 2), final_params(resumed, 2))
    assert resumed['val_acc'] == whole['val_acc']
    plain = train(small_slice, tmp_path / 'plain', '--num-epochs', '2', '--warmup-epochs', '1',
                  '--lr-steps', '1', '--lr', '0.05')
    a, b = final_params(whole, 2), final_params(plain, 2)
    assert any(not np.array_equal(a[k], b[k]) for k in a)
    state = checkpoint.read_state(whole['weights_prefix'], 2)
    assert state['args']['mixup'] == 0.4 and state['args']['label_smoothing'] == 0.1
    # what a resume must compare (every recipe flag but those it may change) is saved
    parser = argparse.ArgumentParser()
    recipe_flags.add_recipe_args(parser)
    must_match = {a.dest for a in parser._actions if a.dest != 'help'} - \
        recipe_flags.MAY_CHANGE_ON_RESUME
    assert must_match and must_match <= set(state['args'])


# ---------------------------------------------------------------- no weight decay on BN, biases

def test_no_wd_bn_spares_gamma_beta_and_biases_from_decay():
    net = gluon.nn.HybridSequential()
    net.add(gluon.nn.Conv2D(4, 3, use_bias=True), gluon.nn.BatchNorm(), gluon.nn.Dense(3))
    net.initialize(mx.init.Uniform(1.0))
    net(mx.nd.ones((2, 1, 5, 5)))
    spared = recipe.exclude_from_weight_decay(net)
    assert sorted(n.rsplit('_', 1)[1] for n in spared) == ['beta', 'bias', 'bias', 'gamma']
    params = net.collect_params()
    before = {k: p.data().asnumpy().copy() for k, p in params.items()}
    trainer = gluon.Trainer(params, OriginalNAG(learning_rate=0.5, momentum=0.9, wd=0.1))
    with mx.autograd.record():  # fresh gradients, all zero: only the decay moves weights
        zero = net(mx.nd.ones((2, 1, 5, 5))).sum() * 0
    zero.backward()
    trainer.step(1)
    for name, param in params.items():
        after = param.data().asnumpy()
        if param.grad_req == 'null':  # running statistics: moved by the forward pass
            continue
        if name in spared:
            np.testing.assert_array_equal(after, before[name], err_msg=name)
        else:  # decayed: w - lr * (wd w + momentum * wd w) with zero gradients
            np.testing.assert_allclose(after, before[name] * (1 - 0.5 * 0.1 * 1.9), rtol=1e-5,
                                       err_msg=name)


# ---------------------------------------------------------------- best checkpoint, TensorBoard

def read_scalars(path):
    """tag -> [(step, value)] of a TensorBoard event file (TFRecord framing)."""
    from tensorboardX.proto import event_pb2
    scalars = {}
    with open(path, 'rb') as handle:
        while True:
            head = handle.read(12)
            if len(head) < 12:
                return scalars
            length = struct.unpack('<Q', head[:8])[0]
            event = event_pb2.Event.FromString(handle.read(length))
            handle.read(4)
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))


@pytest.mark.slow
def test_best_checkpoint_and_tensorboard_scalars(small_slice, tmp_path):
    board = tmp_path / 'board'
    # explicit --lr-steps: the default ones follow --num-epochs, which the resume below grows
    result = train(small_slice, tmp_path / 'run', '--num-epochs', '3', '--save-best',
                   '--tensorboard', str(board), '--lr', '0.05', '--lr-steps', '2')
    prefix = result['weights_prefix']
    with open(result['log_path'].replace('.txt', '.metrics.jsonl')) as handle:
        val_accs = [json.loads(line)['val_acc'] for line in handle]
    best_epoch = 1 + max(range(3), key=lambda e: (val_accs[e], -e))  # the first best one
    state = checkpoint.read_state(prefix, 'best')
    assert state['best_epoch'] == best_epoch and state['best_val_acc'] == max(val_accs)
    assert_same_params(params_of(checkpoint.params_file(prefix, 'best')),
                       params_of(checkpoint.params_file(prefix, best_epoch)))
    text = log_text(result)
    saves = [line for line in text.splitlines() if 'Saved best checkpoint' in line]
    improvements = [e for e in range(3) if val_accs[e] > max(val_accs[:e], default=-1)]
    assert len(saves) == len(improvements) >= 1
    assert logs.parse_log(result['log_path']).unparseable_lines == 0
    assert checkpoint.checkpoint_epochs(prefix) == [1, 2, 3]  # best is not a periodic one
    (events,) = glob.glob(str(board / 'events.out.tfevents.*'))
    scalars = read_scalars(events)
    assert [value for _, value in scalars['val/top1']] == pytest.approx(val_accs)
    assert [step for step, _ in scalars['val/top1']] == [1, 2, 3]
    assert [step for step, _ in scalars['train/loss']] == [4, 8, 12, 16, 20, 24]
    assert scalars['lr'][0][1] == pytest.approx(0.05)
    # a resumed run keeps the best so far: only a better epoch replaces it
    before = open(checkpoint.params_file(prefix, 'best'), 'rb').read()
    again = train(small_slice, tmp_path / 'run', '--num-epochs', '4', '--resume',
                  '--save-best', '--lr', '0.05', '--lr-steps', '2')
    if again['val_acc'] <= max(val_accs):
        assert open(checkpoint.params_file(prefix, 'best'), 'rb').read() == before
    else:
        assert checkpoint.read_state(prefix, 'best')['best_epoch'] == 4


@pytest.mark.slow
@pytest.mark.parametrize('flags, needles', [
    (['--label-smoothing', '1'], ['--label-smoothing', '[0, 1)']),
    (['--mixup', '-0.5'], ['--mixup']),
    (['--cutmix', '-1'], ['--cutmix must be 0 (off) or positive (got -1)']),
    (['--cutmix', 'inf'], ['--cutmix must be 0 (off) or positive (got inf)']),
    (['--mixup', '0.2', '--cutmix', '1'], ['--mixup and --cutmix cannot be combined']),
    (['--ema', '1'], ['--ema must be a decay in (0, 1)', '(got 1)']),
    (['--ema', '-0.5'], ['--ema must be a decay in (0, 1)']),
    (['--ema', 'nan'], ['--ema must be a decay in (0, 1)']),
    (['--clip-gradient', '0'], ['--clip-gradient must be a positive bound (got 0)']),
    (['--clip-gradient', '-2'], ['--clip-gradient must be a positive bound']),
    (['--warmup-epochs', '-1'], ['--warmup-epochs']),
    (['--lr-mode', 'cosine', '--warmup-epochs', '3'], ['--warmup-epochs 3', 'cosine']),
])
def test_bad_recipe_flags_are_one_line_errors(small_slice, tmp_path, flags, needles):
    proc = run_script('train_model.py', '--dataset', 'fashion-mnist', '--data-dir', small_slice,
                      '--log-dir', str(tmp_path), '--depth', '14', '--cpu', '--num-epochs',
                      '2', *flags)
    assert_one_line_error(proc, *needles)
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_tensorboard_without_tensorboardx_fails_before_writing(small_slice, tmp_path,
                                                               monkeypatch):
    monkeypatch.setitem(sys.modules, 'tensorboardX', None)  # not installed
    with pytest.raises(UserError, match='requirements-tensorboard.txt'):
        train(small_slice, tmp_path / 'logs', '--num-epochs', '1', '--tensorboard',
              str(tmp_path / 'board'))
    assert not list(tmp_path.iterdir())
