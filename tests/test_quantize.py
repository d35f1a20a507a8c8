"""INT8 quantization (tools/quantize.py, inference/quantizing.py): every network family,
a trained tiny run end to end, and the refusals."""
import json
import os

import mxnet as mx
import numpy as np
import pytest

import network
from common.errors import UserError
from helpers import assert_one_line_error
from inference import quantizing
from inference.checkpoint import find_checkpoint
from inference.exported import file_sha256, find_exported, load_exported
from inference.model import load_net
from inference.records import logits_of, record_batches
from inference_helpers import TEST, run_tool, tiny_run
from mxnet.gluon import nn

SHAPE = (1, 16, 16)
# the smallest depth each network accepts (as tests/test_export.py)
DEPTHS = dict(plain=5, resnet=8, half=14, side=14, cross=14, fuse3=5, fuse6=8, ensemble=5)
CIFAR_NETS = [name for name in network.list_nets() if name not in network.IMAGENET_NETS]
# Measured: the tiny cross d14 run's INT8 export (4 calibration batches of 32, naive, the
# first convolution in fp32, the sums in INT8 and folded into the convolutions) predicts
# the fp32 class for 191 of its 200 test images on this machine (a barely trained network:
# cross_d26 of the model zoo agrees on 98.63% of the 10,000 test images). One image of slack
# for another CPU's INT8 arithmetic.
TINY_AGREEMENT = 0.95


def random_batch(shape, seed):
    return mx.nd.array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def calibration(shape, count=2):
    batches = [(random_batch(shape, seed), None) for seed in range(count)]
    return quantizing.CalibrationBatches(batches, count, shape)


def test_every_cifar_network_has_a_depth_here():
    assert sorted(DEPTHS) == sorted(CIFAR_NETS)


@pytest.mark.slow
@pytest.mark.parametrize('name', CIFAR_NETS)
def test_every_cifar_network_quantizes_with_all_its_outputs(name):
    net = network.get_net(name, num_classes=10, depth=DEPTHS[name])
    network.initialize(net, SHAPE)
    shape = (8,) + SHAPE
    quantized = quantizing.quantize(net, calibration(shape), 'naive', ['first'])
    assert quantizing.quantized_layers(quantized) > 0
    batch = random_batch(shape, seed=10)
    expected, got = network.outputs_of(net(batch)), network.outputs_of(quantized(batch))
    assert len(got) == len(expected) == (8 if name == 'ensemble' else 1)
    assert all(o.shape == (8, 10) and np.isfinite(o.asnumpy()).all() for o in got)


@pytest.mark.parametrize('name', CIFAR_NETS)
def test_the_int8_graph_computes_the_same_function_without_add_n(name):
    net = network.get_net(name, num_classes=10, depth=DEPTHS[name])
    network.initialize(net, SHAPE)
    rewritten = quantizing.int8_graph(net)
    batch = random_batch((4,) + SHAPE, seed=3)
    for a, b in zip(network.outputs_of(net(batch)), network.outputs_of(rewritten(batch))):
        assert np.abs(a.asnumpy() - b.asnumpy()).max() <= 1e-6 * max(1, np.abs(a.asnumpy()).max())
    before = json.loads(network.to_symbol(net).tojson())['nodes']
    after = json.loads(network.to_symbol(rewritten).tojson())['nodes']
    sums = sum(len(node['inputs']) - 1 for node in before if node['op'] == 'add_n')
    assert [node['op'] for node in after].count('elemwise_add') == sums
    assert 'add_n' not in [node['op'] for node in after]
    assert not any(node['op'] == '_mul_scalar' and float(node['attrs']['scalar']) == 1.0
                   for node in after)


def test_a_network_without_weighted_layers_is_refused_in_one_line():
    net = nn.HybridSequential()
    net.add(nn.GlobalAvgPool2D(), nn.Flatten())
    net.initialize()
    with pytest.raises(UserError) as caught:
        quantizing.quantize(net, calibration((4, 1, 8, 8)), 'naive')
    assert 'nothing to quantize' in str(caught.value) and '\n' not in str(caught.value)


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory)


@pytest.fixture(scope='module')
def quantized(run, tmp_path_factory):
    """The tiny run quantized by the tool: (its output folder, the process)."""
    out = tmp_path_factory.mktemp('int8')
    proc = run_tool('quantize', run['log'], '--data-dir', run['data'], '--out-dir', out,
                    '--calib-batches', 4, '--batch-size', 32)
    return out, proc


@pytest.mark.slow
def test_the_tool_writes_the_int8_files_and_their_settings(run, quantized):
    out, proc = quantized
    assert proc.returncode == 0, proc.stderr
    base = os.path.join(str(out), 'cross_d14w1_exp1-0002-int8')
    for suffix in ('-symbol.json', '-0000.params', '-export.json'):
        assert os.path.isfile(base + suffix)
    assert sorted(os.listdir(str(out))) == sorted(
        os.path.basename(base) + s for s in ('-symbol.json', '-0000.params', '-export.json'))
    with open(base + '-export.json') as handle:
        description = json.load(handle)
    checkpoint = run['prefix'] + '-0002.params'
    assert description['precision'] == 'int8'
    assert description['source'] == dict(kind='checkpoint', path=checkpoint,
                                         sha256=file_sha256(checkpoint))
    assert description['calibration']['mode'] == 'naive'
    assert description['calibration']['images'] == 4 * 32
    assert description['calibration']['records'].endswith('train.rec')
    assert description['keep_fp32'] == ['first']
    assert description['quantization']['sum_fusion'] == 'on'
    assert description['flags']['network'] == 'cross' and description['flags']['depth'] == 14
    assert 're-imported: largest difference 0' in proc.stdout


@pytest.mark.slow
def test_int8_predicts_as_fp32_on_the_test_images(run, quantized):
    out, _ = quantized
    exported = find_exported(os.path.join(str(out), 'cross_d14w1_exp1-0002-int8'))
    assert exported.precision == 'int8' and exported.epoch == 0
    int8 = load_exported(exported)
    checkpoint = find_checkpoint(run['log'])
    fp32 = load_net(checkpoint)
    rec = os.path.join(run['data'], 'test.rec')
    expected, labels = logits_of(fp32, record_batches(checkpoint.flags, rec, 50), 50, mx.cpu())
    got, _ = logits_of(int8, record_batches(checkpoint.flags, rec, 50), 50, mx.cpu())
    assert len(labels) == TEST
    assert quantizing.agreement(expected, got) >= TINY_AGREEMENT
    assert not np.array_equal(expected, got)   # it is another network's arithmetic


def graph_ops(prefix):
    with open(prefix + '-symbol.json') as handle:
        return [node['op'] for node in json.load(handle)['nodes']]


@pytest.mark.slow
def test_sum_fusion_folds_the_sums_into_the_convolutions_unless_switched_off(run, quantized,
                                                                            tmp_path):
    # Whatever MXNet would do unasked: the tool once started MXNet before setting the
    # switch, so its graphs were fused whatever the tools meant.
    out, _ = quantized
    name = 'cross_d14w1_exp1-0002-int8'
    proc = run_tool('quantize', run['log'], '--data-dir', run['data'], '--out-dir', tmp_path,
                    '--calib-batches', 4, '--batch-size', 32, '--sum-fusion', 'off')
    assert proc.returncode == 0, proc.stderr
    with open(os.path.join(str(tmp_path), name + '-export.json')) as handle:
        assert json.load(handle)['quantization']['sum_fusion'] == 'off'
    adds_on = graph_ops(os.path.join(str(out), name)).count('_contrib_quantized_elemwise_add')
    adds_off = graph_ops(os.path.join(str(tmp_path), name)).count(
        '_contrib_quantized_elemwise_add')
    assert adds_on < adds_off
    proc = run_tool('evaluate', '--exported', tmp_path / name, '--data-dir', run['data'])
    assert proc.returncode == 0, proc.stderr
    assert 'inference path: INT8' in proc.stdout


def test_a_sum_fusion_setting_mxnet_did_not_start_with_is_refused():
    from inference import cli
    started_off = os.environ.get(cli.FUSE_SUM_ENV, '0') != '0'
    with pytest.raises(UserError) as caught:
        cli.prepare_mxnet(sum_fusion=started_off)
    assert cli.FUSE_SUM_ENV in str(caught.value)
    cli.prepare_mxnet(sum_fusion=not started_off)   # the one it started with: accepted


@pytest.mark.slow
def test_int8_weights_are_stored_as_int8(quantized):
    out, _ = quantized
    weights = mx.nd.load(os.path.join(str(out), 'cross_d14w1_exp1-0002-int8-0000.params'))
    kinds = {array.dtype for name, array in weights.items() if name.endswith('weight_quantize')}
    assert kinds == {np.int8}


@pytest.mark.slow
@pytest.mark.parametrize('flags, words', [
    (['--keep-fp32', 'stem'], ['--keep-fp32', 'first, classifier']),
    (['--calib-batches', '0'], ['--calib-batches']),
    (['--batch-size', '100000'], ['fewer than one calibration batch']),
    (['--calib-mode', 'minmax'], ['--calib-mode']),
])
def test_bad_settings_are_one_line_and_write_nothing(run, tmp_path, flags, words):
    out = tmp_path / 'out'
    proc = run_tool('quantize', run['log'], '--data-dir', run['data'], '--out-dir', out, *flags)
    assert_one_line_error(proc, *words)
    assert not out.exists()


@pytest.fixture(scope='module')
def int8_logits(run, quantized):
    """(INT8 logits, labels) of the tiny run's test images, computed here."""
    out, _ = quantized
    int8 = load_exported(find_exported(os.path.join(str(out), 'cross_d14w1_exp1-0002-int8')))
    flags = find_checkpoint(run['log']).flags
    rec = os.path.join(run['data'], 'test.rec')
    return logits_of(int8, record_batches(flags, rec, 50), 50, mx.cpu())


@pytest.mark.slow
def test_evaluate_scores_the_int8_export_as_loaded_here(run, quantized, int8_logits, tmp_path):
    out, _ = quantized
    prefix = os.path.join(str(out), 'cross_d14w1_exp1-0002-int8')
    figures = tmp_path / 'figures.json'
    proc = run_tool('evaluate', '--exported', prefix, '--batch-size', 50, '--png',
                    tmp_path / 'c.png', '--json', figures)
    assert proc.returncode == 0, proc.stderr
    assert 'int8 export' in proc.stdout and 'inference path: INT8' in proc.stdout
    result = json.loads(figures.read_text())
    logits, labels = int8_logits
    assert result['count'] == TEST
    assert result['top1'] == float((logits.argmax(axis=1) == labels).mean())


@pytest.mark.slow
def test_predict_gives_the_int8_exports_classes(run, quantized, int8_logits):
    out, _ = quantized
    prefix = os.path.join(str(out), 'cross_d14w1_exp1-0002-int8')
    proc = run_tool('predict', '--exported', prefix, '--input',
                    os.path.join(run['data'], 'test.rec'), '--batch-size', 50, '--top', 1,
                    '--format', 'json')
    assert proc.returncode == 0, proc.stderr
    names = json.load(open(os.path.join(run['data'], 'dataset.json')))['classes']
    logits, _ = int8_logits
    assert [row['top'][0]['name'] for row in json.loads(proc.stdout)] == \
        [names[c] for c in logits.argmax(axis=1)]


@pytest.mark.slow
def test_an_fp32_export_evaluates_as_its_checkpoint(run, tmp_path):
    exported = run_tool('export', run['log'], '--out-dir', tmp_path / 'fp32', '--no-onnx')
    assert exported.returncode == 0, exported.stderr
    scores = {}
    for name, source in (('checkpoint', [run['log']]),
                         ('export', ['--exported', tmp_path / 'fp32' / 'cross_d14w1_exp1'])):
        proc = run_tool('evaluate', *source, '--path', 'plain', '--png', tmp_path / 'c.png',
                        '--json', tmp_path / (name + '.json'))
        assert proc.returncode == 0, proc.stderr
        scores[name] = json.loads((tmp_path / (name + '.json')).read_text())
    for key in ('count', 'top1', 'confusion'):
        assert scores['export'][key] == scores['checkpoint'][key]
    assert scores['export']['loss'] == pytest.approx(scores['checkpoint']['loss'], abs=1e-6)


@pytest.mark.slow
def test_exported_is_refused_beside_a_checkpoint_or_without_its_description(run, quantized,
                                                                             tmp_path):
    out, _ = quantized
    prefix = os.path.join(str(out), 'cross_d14w1_exp1-0002-int8')
    assert_one_line_error(run_tool('evaluate', run['log'], '--exported', prefix),
                          'not both')
    for suffix in ('-symbol.json', '-0000.params'):
        os.link(prefix + suffix, str(tmp_path / ('bare' + suffix)))
    assert_one_line_error(run_tool('predict', '--exported', tmp_path / 'bare', '--input',
                                   os.path.join(run['data'], 'test.rec')),
                          'bare-export.json is missing')
    assert_one_line_error(run_tool('predict', '--exported', tmp_path / 'none', '--input',
                                   os.path.join(run['data'], 'test.rec')),
                          'no exported network')
