"""The ensemble view: component networks, path counts and tools/components.py."""
import csv
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

import network
from data.iterators import get_iterators
from data.synthetic import write_record_dataset
from helpers import assert_one_line_error, fill
from inference import components as tool
from network import components
from network.paths import path_depths, summarize
from test_ensemble import fashion_test_set

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'tools', 'components.py')
PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'


def polynomial(*factors):
    """{exponent: coefficient} of a product of polynomials given as {exponent: coefficient}."""
    result = {0: 1}
    for factor in factors:
        product = {}
        for e1, c1 in result.items():
            for e2, c2 in factor.items():
                product[e1 + e2] = product.get(e1 + e2, 0) + c1 * c2
        result = product
    return dict(sorted(result.items()))


# ---- path counts ---------------------------------------------------------------------------

def test_resnet_depth_8_paths_by_hand():
    # blocks [1, 1, 1]. Stem: 1 conv. g1 block (16 -> 16): identity shortcut (0 convs) or
    # the two-conv branch (2). g2 and g3 blocks change channels: 1x1 shortcut conv (1) or
    # the branch (2). Depth 1 + {0, 2} + {1, 2} + {1, 2}: 3 once, 4 twice (0+2+1 twice),
    # 5 twice, 6 twice, 7 once; 2^3 = 8 paths, mean 40 / 8 = 5, median 5.
    depths = path_depths(network.get_net('resnet', depth=8))
    assert depths == {3: 1, 4: 2, 5: 2, 6: 2, 7: 1}
    assert summarize(depths) == (8, 5.0, 5)


def test_cross_depth_14_paths_by_hand():
    # (cross needs depth 14 for one block per group.) Write A, B for the path polynomials
    # (z^depth) of the two streams, S = A + B. Stem: A = B = z, S = 2z.
    # g1 (identity shortcuts): m = 0.5 (x1 + x2) has paths S; x1 = m + two_1(x1):
    #   A1 = S + z^2 A = 2z + z^3 = B1, S1 = 4z + 2z^3.
    # g2 (1x1 shortcut convs): m = z S1; A2 = z S1 + z^2 A1 = 4z^2 + 2z^3 + 2z^4 + z^5 = B2,
    #   S2 = 8z^2 + 4z^3 + 4z^4 + 2z^5.
    # g3, the last block: y = m + two_1(x1) + two_2(x2) = z S2 + z^2 S2 = (z + z^2) S2
    #   = 8z^3 + 12z^4 + 8z^5 + 6z^6 + 2z^7: 36 paths, 162 convs in all, mean 4.5, median 4.
    depths = path_depths(network.get_net('cross', depth=14))
    assert depths == {3: 8, 4: 12, 5: 8, 6: 6, 7: 2}
    assert summarize(depths) == (36, 4.5, 4)


def test_deep_resnet_counts_are_exact_integers():
    # resnet depth 110: 18 blocks per group. Stem z; every identity block (1 + z^2); the
    # first block of g2 and of g3 (z + z^2): 2^54 paths, more than a float counts exactly
    # per depth.
    depths = path_depths(network.get_net('resnet', depth=110))
    expected = polynomial({1: 1}, *([{0: 1, 2: 1}] * 52 + [{1: 1, 2: 1}] * 2))
    assert depths == expected
    assert all(type(n) is int for n in depths.values())
    total, mean, median = summarize(depths)
    assert total == 2 ** 54 and mean == 56.0 and median == 56


@pytest.mark.parametrize('name', ['ensemble', 'fuse3'])
def test_three_group_skip_paths(name):
    # depth 8: each group either one conv or a chain of two: 1 + {1, 2}^3 -> 1, 3, 3, 1
    assert path_depths(network.get_net(name, depth=8)) == {4: 1, 5: 3, 6: 3, 7: 1}


# ---- component networks of a fused network ---------------------------------------------------

def by_hand(net, choices, x):
    """A component of a skip network from the network's own layers."""
    y = net.stem(x)
    blocks = [block for group in net.features for block in group]
    for block, right in zip(blocks, choices):
        y = mx.nd.relu(block.body(y) if right else block.line(y))
    return net.output(y)


@pytest.mark.slow   # re-estimates BatchNorm statistics per component
@pytest.mark.parametrize('name, depth, picks', [('fuse3', 8, (0, 6)),
                                                 ('fuse6', 14, (5, 42, 63))])
def test_reestimated_component_is_the_fused_layers_on_its_path(name, depth, picks):
    """Statistics re-estimated on one batch are that batch's: the component's inference
    output on it equals the fused network's layers on its path in training mode."""
    mx.random.seed(5)
    net = network.get_net(name, depth=depth, num_classes=10)
    net.initialize(network.original_initializer())
    x = mx.nd.array(np.random.RandomState(0).rand(12, 1, 16, 16).astype('float32'))
    net(x)
    everything = components.all_choices(net)
    assert len(everything) == 2 ** components.num_blocks(net)
    for i in picks:
        choices = everything[i]
        with autograd.train_mode():
            expected = by_hand(net, choices, x).asnumpy()
        member = components.build_component(net, choices)
        assert not np.allclose(member(x).asnumpy(), expected, atol=1e-3)  # fused statistics
        assert components.reestimate_statistics(member, [x]) == 1
        np.testing.assert_allclose(member(x).asnumpy(), expected, rtol=1e-3, atol=1e-4)


def test_reestimation_averages_the_batches():
    mx.random.seed(5)
    net = network.get_net('fuse3', depth=8)
    net.initialize(network.original_initializer())
    rng = np.random.RandomState(1)
    batches = [mx.nd.array(rng.rand(6, 1, 8, 8).astype('float32') + k) for k in range(3)]
    net(batches[0])
    member = components.build_component(net, components.all_choices(net)[3])
    components.reestimate_statistics(member, batches)
    batch_means = [member.stem.conv(b).asnumpy().mean(axis=(0, 2, 3)) for b in batches]
    np.testing.assert_allclose(member.stem.bn.stats(0)[0].data().asnumpy(),
                               np.mean(batch_means, axis=0), rtol=1e-5, atol=1e-6)
    assert member.stem.bn.momentum == network.ensemble.ENSEMBLE_BN_MOMENTUM   # restored


def test_reestimating_together_is_reestimating_one_by_one():
    mx.random.seed(5)
    net = network.get_net('fuse3', depth=8)
    net.initialize(network.original_initializer())
    rng = np.random.RandomState(2)
    batches = [mx.nd.array(rng.rand(6, 1, 8, 8).astype('float32')) for _ in range(3)]
    net(batches[0])
    picks = [components.all_choices(net)[i] for i in (1, 6)]
    alone = [components.build_component(net, c) for c in picks]
    together = [components.build_component(net, c) for c in picks]
    for member in alone:
        components.reestimate_statistics(member, batches)
    assert components.reestimate_together(together, iter(batches)) == 3
    for a, b in zip(alone, together):
        for pa, pb in zip(a.collect_params().values(), b.collect_params().values()):
            assert np.array_equal(pa.data().asnumpy(), pb.data().asnumpy()), pa.name


# ---- the evaluator on records ----------------------------------------------------------------

@pytest.fixture(scope='module')
def records(tmp_path_factory):
    """Records of the first 224 official Fashion-MNIST test images: 128 as training
    records, 96 as test records (real images; the small file reads fast)."""
    out = str(tmp_path_factory.mktemp('fashion-view'))
    images, labels = (array[:224] for array in fashion_test_set())
    write_record_dataset(out, 'fashion-mnist', (images[:128], labels[:128]),
                         (images[128:], labels[128:]))
    return out


def tool_args(records, **extra):
    argv = ['--dataset', 'fashion-mnist', '--data-dir', records, '--batch-size', '32',
            '--bn-batches', '2']
    for key, value in extra.items():
        argv += ['--' + key.replace('_', '-'), str(value)]
    return tool.parse(argv)


def data_of(records):
    return dict(dataset='fashion-mnist', data_dir=records, num_classes=10, aug_type=None,
                data_shape=None, train_rec=None, val_rec=None)


@pytest.mark.slow   # evaluates every component, twice
@pytest.mark.parametrize('name', ['ensemble', 'fuse3'])
def test_evaluator_matches_components_run_one_by_one(records, name):
    mx.random.seed(2)
    net = network.get_net(name, depth=8, num_classes=10)
    net.initialize(network.original_initializer())
    net(mx.nd.zeros((1, 1, 28, 28)))
    args = tool_args(records)
    results, n_e, n_f, note, leave_one_out = tool.evaluate(net, name, data_of(records), args)
    # the reference: each component built alone, statistics re-estimated (skip network)
    # on the same first two training batches, run over the test records
    train_it, val_it = get_iterators('fashion-mnist', records, 32, 32)
    first = [x for _, (x, _) in zip(range(2), train_it)]
    test = list(val_it)
    outputs = []
    for choices in components.all_choices(net):
        member = components.build_component(net, choices)
        if name != 'ensemble':
            components.reestimate_statistics(member, first)
        outputs.append(mx.nd.concat(*[member(x) for x, _ in test], dim=0).asnumpy())
    labels = np.concatenate([y.asnumpy() for _, y in test])
    accuracy = [float((o.argmax(axis=1) == labels).mean()) for o in outputs]
    assert [a for _, _, a in results] == pytest.approx(accuracy, abs=1e-12)
    assert [d for _, d, _ in results] == [4, 5, 5, 6, 5, 6, 6, 7]
    assert [n for n, _, _ in results][:3] == ['LLL', 'RLL', 'LRL']
    softmax = [np.exp(o - o.max(axis=1, keepdims=True)) for o in outputs]
    averaged = sum(s / s.sum(axis=1, keepdims=True) for s in softmax) / 8
    assert n_e == pytest.approx(float((averaged.argmax(axis=1) == labels).mean()))
    without = [(sum(softmax[j] / softmax[j].sum(axis=1, keepdims=True)
                    for j in range(8) if j != k) / 7).argmax(axis=1) for k in range(8)]
    assert leave_one_out == pytest.approx([float((w == labels).mean()) for w in without])
    whole = (sum(outputs) / 8 if name == 'ensemble' else
             mx.nd.concat(*[net(x) for x, _ in test], dim=0).asnumpy())
    assert n_f == pytest.approx(float((whole.argmax(axis=1) == labels).mean()))
    assert ('re-estimated on 2 training batches of 32 images' in note) == (name == 'fuse3')


# ---- the command line ------------------------------------------------------------------------

def run(*argv, cwd=ROOT):
    return subprocess.run([sys.executable, SCRIPT] + [str(a) for a in argv], cwd=cwd,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=300)


def read_csv(path):
    with open(path, newline='') as stream:
        return list(csv.DictReader(stream))


def is_png(path):
    with open(path, 'rb') as stream:
        return stream.read(8) == PNG_SIGNATURE


@pytest.mark.slow
def test_cli_on_a_checkpoint_named_by_its_log(records, tmp_path):
    mx.random.seed(4)
    net = network.get_net('ensemble', depth=5, num_classes=10)
    net.initialize(network.original_initializer())
    net(mx.nd.zeros((1, 1, 28, 28)))
    params = str(tmp_path / 'ensemble_d5w1_exp1-0001.params')
    net.save_parameters(params)
    log = tmp_path / 'ensemble_d5w1_exp1.txt'
    log.write_text('2026-01-01 00:00:00,000 %s\n2026-01-01 00:00:00,000 start with arguments '
                   "Namespace(network='ensemble', depth=5, widen_factor=1, "
                   "dataset='fashion-mnist', num_classes=10, data_dir=%r, aug_type=1)\n"
                   % (log, records))
    out = tmp_path / 'view'
    proc = run('--params', params, '--log', log, '--out-dir', out, '--batch-size', 48)
    assert proc.returncode == 0, proc.stderr
    assert 'N_e (averaged components)' in proc.stdout and 'ensemble_d5w1' in proc.stdout
    assert 'test batch 2/2' in proc.stderr            # progress
    rows = read_csv(out / 'components.csv')
    assert [r['kind'] for r in rows] == ['component'] * 8 + ['N_e', 'N_f']
    assert {r['depth'] for r in rows[:8]} == {'4'}   # depth 5: one conv a group either way
    assert read_csv(out / 'paths.csv') == [{'network': 'ensemble_d5w1', 'path_depth': '4',
                                            'paths': '8'}]
    assert is_png(out / 'components.png') and is_png(out / 'paths.png')


@pytest.mark.slow
def test_cli_paths_of_several_networks(tmp_path):
    proc = run('--network', 'resnet', 'cross', '--depth', 8, 14, '--out-dir', tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = read_csv(tmp_path / 'paths_summary.csv')
    assert [(r['network'], r['paths'], r['median_depth']) for r in summary] == \
        [('resnet_d8w1', '8', '5'), ('cross_d14w1', '36', '4')]
    assert is_png(tmp_path / 'paths.png')
    assert not (tmp_path / 'components.csv').exists()


@pytest.mark.slow
@pytest.mark.parametrize('argv, words', [
    (['--network', 'nosuchnet'], ['unknown network']),
    (['--network', 'cross', '--depth', '9'], ['invalid depth 9']),
    (['--network', 'fuse3', '--depth', '8', '--params', 'missing.params'], ['not found']),
    (['--network', 'resnet', 'cross', '--depth', '8', '14', '20'], ['--depth']),
])
def test_bad_input_is_one_line(tmp_path, argv, words):
    proc = run(*(argv + ['--out-dir', str(tmp_path / 'view')]))
    assert_one_line_error(proc, *words)
    assert not (tmp_path / 'view').exists()


@pytest.mark.slow
def test_a_file_that_is_not_a_log_or_the_wrong_checkpoint(tmp_path):
    notes = tmp_path / 'notes.txt'
    notes.write_text('hello\n')
    assert_one_line_error(run('--log', notes, '--out-dir', tmp_path), 'start with arguments')
    net = network.get_net('resnet', depth=8)
    net.initialize()
    net(mx.nd.zeros((1, 3, 8, 8)))
    params = str(tmp_path / 'resnet.params')
    net.save_parameters(params)
    assert_one_line_error(run('--params', params, '--network', 'fuse3', '--depth', 8,
                              '--out-dir', tmp_path), 'does not hold the weights of fuse3_d8w1')


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_leaves_no_partial_file(small_disk):
    fill(small_disk, leave=20000)   # room for the CSV files, not for the picture
    proc = run('--network', 'resnet', 'cross', '--depth', 8, 14, '--out-dir', small_disk)
    assert proc.returncode == 2 and 'Traceback' not in proc.stderr, proc.stderr
    assert proc.stderr.splitlines()[-1] == ('error: cannot write %s (No space left on device)'
                                            % (small_disk / 'paths.png'))
    assert sorted(os.listdir(small_disk)) == ['filler', 'paths.csv', 'paths_summary.csv']
    assert read_csv(small_disk / 'paths.csv')   # whole files, not cut ones


# ---- contributions: leave-one-out, path removal, BatchNorm noise -----------------------------

def test_the_component_plot_names_its_points():
    results = [('LL', 3, 0.5), ('RL', 4, 0.6), ('LR', 4, 0.7), ('RR', 5, 0.8)]
    axes = tool.components_figure('fuse3_d8w1', results, 0.75, 0.8).axes[0]
    assert [(t.get_text(), t.xy) for t in axes.texts] == \
        [(name, (depth, 100 * acc)) for name, depth, acc in results]


def fuse3_checkpoint(path, seed=6):
    """A fuse3 d8 with random BatchNorm shifts and statistics (so removing a path tells)."""
    mx.random.seed(seed)
    net = network.get_net('fuse3', depth=8, num_classes=10)
    net.initialize(network.original_initializer())
    net(mx.nd.zeros((1, 1, 28, 28)))
    rng = np.random.RandomState(seed)
    for param in net.collect_params().values():
        if param.name.endswith(('_beta', '_running_mean')):
            param.set_data(mx.nd.array(rng.randn(*param.shape).astype('float32') * 0.3))
    net.save_parameters(str(path))
    return net


@pytest.mark.slow
def test_cli_contributions_of_a_fuse3_checkpoint(records, tmp_path):
    from network import lesion
    params = tmp_path / 'fuse3_d8w1_exp1-0001.params'
    net = fuse3_checkpoint(params)
    out = tmp_path / 'view'
    proc = run('--params', params, '--network', 'fuse3', '--depth', 8, '--dataset',
               'fashion-mnist', '--data-dir', records, '--batch-size', 32, '--bn-batches', 2,
               '--bn-noise', '1,2,all', '--bn-draws', 2, '--out', out)
    assert proc.returncode == 0, proc.stderr
    table = read_csv(out / 'components.csv')
    n_e, n_f = (float(r['test_accuracy']) for r in table[8:])
    alone = {r['component']: float(r['test_accuracy']) for r in table[:8]}
    # leave-one-out: one row per component, the change measured from N_e
    loo = read_csv(out / 'leave_one_out.csv')
    assert [r['component'] for r in loo] == list(alone)
    assert all(float(r['test_accuracy_alone']) == alone[r['component']] for r in loo)
    assert all(float(r['change_from_N_e']) == pytest.approx(float(r['N_e_without']) - n_e,
                                                            abs=2e-6) for r in loo)
    # path removal: each block's left, then right path; the accuracies of network/lesion's
    # network on the 96 test records
    removal = read_csv(out / 'path_removal.csv')
    assert [(r['block'], r['removed_path'], r['kept_path']) for r in removal] == \
        [(b, removed, kept) for b in ('g1_b1', 'g2_b1', 'g3_b1')
         for removed, kept in (('left', 'right'), ('right', 'left'))]
    test = list(get_iterators('fashion-mnist', records, 32, 32)[1])
    labels = np.concatenate([y.asnumpy() for _, y in test])
    for row in removal:
        lesion.set_removed_paths(net, {row['block']: row['removed_path']})
        logits = np.concatenate([net(x).asnumpy() for x, _ in test])
        assert float(row['test_accuracy']) == pytest.approx(
            float((logits.argmax(axis=1) == labels).mean()), abs=1e-6)
        assert float(row['change_from_N_f']) == pytest.approx(
            float(row['test_accuracy']) - n_f, abs=2e-6)
    # BatchNorm noise: 3 settings x 2 draws x (8 components + N_e); 128 training images
    # in batches of 32 make an epoch of 4 batches ('all')
    noise = read_csv(out / 'bn_noise.csv')
    assert len(noise) == 3 * 2 * 9
    assert sorted({(r['setting'], r['batches'], r['draw'], r['seed']) for r in noise}) == [
        ('1', '1', '1', '0'), ('1', '1', '2', '1'), ('2', '2', '1', '0'),
        ('2', '2', '2', '1'), ('all', '4', '1', '0'), ('all', '4', '2', '1')]
    # draw 1 on --bn-batches batches is the main table's re-estimation
    first = {r['component']: float(r['test_accuracy']) for r in noise
             if (r['setting'], r['draw']) == ('2', '1')}
    assert first == dict(alone, N_e=n_e)
    summary = read_csv(out / 'bn_noise_summary.csv')
    assert len(summary) == 3 * 9 and {r['draws'] for r in summary} == {'2'}
    for row in summary:
        values = [float(r['test_accuracy']) for r in noise
                  if (r['setting'], r['component']) == (row['setting'], row['component'])]
        assert float(row['mean_accuracy']) == pytest.approx(np.mean(values), abs=1e-6)
        assert float(row['std_accuracy']) == pytest.approx(np.std(values), abs=1e-6)
    assert 'N_e without' in proc.stdout and 'path of a block removed' in proc.stdout


def test_noise_draws_read_other_training_batches(records, tmp_path):
    """Draw d re-estimates on the shuffle and augmentation of seed d - 1: other batches,
    other statistics; the same seed, the same statistics."""
    net = fuse3_checkpoint(tmp_path / 'fuse3.params')
    choices = components.all_choices(net)[:1]
    args = tool_args(records)

    def statistics(seed):
        train_it = tool.iterators(data_of(records), args, seed=seed)[0]
        member = tool.fused_components(net, choices, train_it, 2)[0][0]
        return member.stem.bn.stats(0)[0].data().asnumpy()
    assert np.array_equal(statistics(0), statistics(0))
    assert not np.allclose(statistics(0), statistics(1))


@pytest.mark.slow
@pytest.mark.parametrize('argv, words', [
    (['--network', 'fuse3', '--depth', '8', '--bn-noise'], ['--bn-noise', 'fuse3 or fuse6']),
    (['--network', 'fuse3', '--depth', '8', '--params', 'x.params', '--bn-noise', '20,x'],
     ['20,x']),
])
def test_bad_noise_settings_are_one_line(tmp_path, argv, words):
    assert_one_line_error(run(*(argv + ['--out', str(tmp_path / 'view')])), *words)
