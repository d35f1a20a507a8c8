"""Exports of every CIFAR-style network: MXNet symbol + params and ONNX, checked to agree."""
import os

import mxnet as mx
import numpy as np
import pytest

import network
from helpers import assert_one_line_error, fill
from inference.exporting import (export_mxnet, export_onnx, import_mxnet, max_difference,
                                 onnx_session, outputs_of, run_onnx, sample_batch)
from inference_helpers import run_tool, tiny_run

SHAPE = (3, 16, 16)
# the smallest depth each network accepts: tiny, and every block kind still present
DEPTHS = dict(plain=5, resnet=8, half=14, side=14, cross=14, fuse3=5, fuse6=8, ensemble=5)
CIFAR_NETS = [name for name in network.list_nets() if name not in network.IMAGENET_NETS]


def trained_looking(name):
    """A network with drawn weights and BatchNorm statistics far from their start (an
    export that dropped them would differ)."""
    net = network.get_net(name, num_classes=10, depth=DEPTHS[name])
    net.initialize(network.original_initializer())
    net(mx.nd.zeros((1,) + SHAPE))
    rng = np.random.default_rng(1)
    for pname, param in net.collect_params().items():
        if pname.endswith('running_mean'):
            param.set_data(mx.nd.array(rng.normal(0, 0.5, param.shape)))
        elif pname.endswith('running_var'):
            param.set_data(mx.nd.array(rng.uniform(0.5, 2, param.shape)))
    return net


def test_every_cifar_network_has_a_depth_here():
    assert sorted(DEPTHS) == sorted(CIFAR_NETS)


@pytest.mark.parametrize('name', CIFAR_NETS)
def test_symbol_export_imports_with_the_same_outputs(name, tmp_path):
    net = trained_looking(name)
    symbol, params = export_mxnet(net, SHAPE, str(tmp_path / name))
    batch = mx.nd.array(sample_batch(SHAPE, 5))
    expected = outputs_of(net(batch))
    assert len(expected) == (8 if name == 'ensemble' else 1)
    assert max_difference(expected, outputs_of(import_mxnet(symbol, params)(batch))) < 1e-6
    names = mx.sym.load(symbol).list_outputs()
    assert len(set(names)) == len(names)  # the ensemble's 8 outputs are told apart


@pytest.mark.parametrize('name', CIFAR_NETS)
def test_onnx_export_runs_in_onnxruntime_for_any_batch_size(name, tmp_path):
    onnx = pytest.importorskip('onnx')
    pytest.importorskip('onnxruntime')
    net = trained_looking(name)
    symbol, params = export_mxnet(net, SHAPE, str(tmp_path / name))
    path = export_onnx(symbol, params, SHAPE, str(tmp_path / (name + '.onnx')))
    batch_dim = onnx.load(path).graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value  # a named, free batch size
    session = onnx_session(path)
    for size in (1, 3):
        batch = sample_batch(SHAPE, size, seed=size)
        expected = outputs_of(net(mx.nd.array(batch)))
        got = run_onnx(session, batch)
        assert max_difference(expected, got) < 1e-4
    if name == 'ensemble':  # eight different components, not one repeated
        assert len(got) == 8 and not np.allclose(got[0], got[1])


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory)


@pytest.mark.slow
def test_export_tool_writes_checked_files_beside_the_untouched_checkpoint(run, tmp_path):
    pytest.importorskip('onnx')
    pytest.importorskip('onnxruntime')
    weights = run['prefix'] + '-0002.params'
    with open(weights, 'rb') as handle:
        before = handle.read()
    proc = run_tool('export', run['log'], '--out-dir', tmp_path)
    assert proc.returncode == 0, proc.stderr
    stem = str(tmp_path / os.path.basename(run['prefix']))
    for path in (stem + '-symbol.json', stem + '-0002.params', stem + '-0002.onnx'):
        assert os.path.getsize(path) > 0, path
    differences = {line.split()[-2]: float(line.split()[-1]) for line in
                   proc.stdout.splitlines() if line.startswith('largest difference')}
    assert set(differences) == {'mxnet', 'onnx'} and max(differences.values()) < 1e-4
    with open(weights, 'rb') as handle:
        assert handle.read() == before
    assert_one_line_error(run_tool('export', run['log'], '--out-dir',
                                   os.path.dirname(run['prefix'])), 'replace')


@pytest.mark.slow
def test_a_full_disk_replaces_no_exported_file(run, small_disk):
    pytest.importorskip('onnx')
    first = run_tool('export', run['log'], '--out-dir', small_disk, '--no-onnx')
    assert first.returncode == 0, first.stderr
    before = {name: (small_disk / name).read_bytes() for name in os.listdir(small_disk)}
    fill(small_disk, leave=200000)   # room for the symbol, not for the weights
    proc = run_tool('export', run['log'], '--out-dir', small_disk)
    assert_one_line_error(proc, 'cannot write the export in %s' % small_disk,
                          'no exported file was written or replaced')
    after = {name: (small_disk / name).read_bytes() for name in os.listdir(small_disk)
             if name != 'filler'}
    assert after == before   # the earlier export as it was, nothing partial beside it


@pytest.mark.slow
def test_the_ensemble_checkpoint_exports_its_eight_outputs(tmp_path_factory, tmp_path):
    pytest.importorskip('onnx')
    pytest.importorskip('onnxruntime')
    ensemble = tiny_run(tmp_path_factory, 'ensemble', 5)
    proc = run_tool('export', ensemble['log'], '--out-dir', tmp_path)
    assert proc.returncode == 0, proc.stderr
    session = onnx_session(str(tmp_path / (os.path.basename(ensemble['prefix'])
                                           + '-0002.onnx')))
    assert len(session.get_outputs()) == 8


@pytest.mark.slow
def test_inference_benchmark_prints_the_three_figures(tmp_path):
    pytest.importorskip('onnxruntime')
    proc = run_tool('bench_inference', '--network', 'cross', '--depth', '14', '--dataset',
                    'fashion-mnist', '--batch-size', '4', '--repeats', '2')
    assert proc.returncode == 0, proc.stderr
    for what in ('MXNet plain', 'MXNet optimize_for', 'onnxruntime'):
        assert any(line.startswith(what) and 'img/s' in line
                   for line in proc.stdout.splitlines()), proc.stdout
