"""tools/benchmark.py on tiny networks: the figures it reports are there and sane (no timing
assertions), the FLOP count matches a hand count, bad flags end in one error line."""
import json
import os
import subprocess
import sys

import pytest

from helpers import assert_one_line_error

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = ['--network', 'cross', '--depth', '14', '--shape', '1,28,28', '--batch-size', '4',
        '--steps', '1', '--warmup', '1', '--rounds', '1', '--gemm-size', '256']


def run_benchmark(*flags):
    return subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'benchmark.py')]
                          + list(flags), cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def test_graph_flops_match_a_hand_count():
    from tools.bench import lib as benchlib
    options = dict(network='resnet', depth=8, widen_factor=1, num_classes=10, shape=[3, 8, 8])
    conv = lambda k, c, size, kernel: k * size * size * c * kernel * kernel  # noqa: E731
    macs = (conv(16, 3, 8, 3) + 2 * conv(16, 16, 8, 3)              # stem, g1
            + conv(32, 16, 4, 3) + conv(32, 32, 4, 3) + conv(32, 16, 4, 1)   # g2
            + conv(64, 32, 2, 3) + conv(64, 64, 2, 3) + conv(64, 32, 2, 1)   # g3
            + 64 * 10)                                              # classifier
    net = benchlib.build_net(options)
    assert benchlib.graph_flops(net, options['shape']) == 2 * macs


@pytest.mark.slow
def test_benchmark_reports_every_part_in_its_json(tmp_path):
    out = tmp_path / 'bench.json'
    proc = run_benchmark(*TINY, '--loop-images', '16', '--compare', '--calib-batches', '1',
                         '--json', str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report['options']['network'] == 'cross'
    assert report['machine']['omp_threads'] and report['machine']['engine'] == 'NaiveEngine'
    assert report['training_flops_per_image'] == 3 * report['flops_per_image'] > 0
    assert report['peak']['gflops'] > 0 and 'sgemm' in report['peak']['method']
    for kind in ('step', 'loop', 'eval', 'infer', 'fused', 'int8'):
        row = report['results'][kind]
        assert row['img_s'] > 0 and len(row['runs']) == 1
        assert row['peak_share'] > 0 and row['gflops'] > 0
        if kind != 'int8':   # INT8 is not bounded by the fp32 peak it is measured against
            assert row['peak_share'] < 10
        assert 50 < row['peak_rss_mib'] < 64 * 1024
    assert 0 < report['ratios']['loop_over_step']
    # --compare: the PyTorch reference ran, or the report says why not
    assert 'torch_step' in report['results'] or 'torch' in report['skipped']
    assert 'step' in proc.stdout and 'img/s' in proc.stdout
    # INT8 beside both fp32 paths, and (with torch) PyTorch's own INT8
    assert report['ratios']['int8_vs_fastest_fp32'] == pytest.approx(
        report['results']['int8']['img_s'] / max(report['results'][k]['img_s']
                                                 for k in ('infer', 'fused')))
    assert report['options']['keep_fp32'] == ['first']
    if 'torch' not in report['skipped']:
        assert report['results']['torch_int8']['img_s'] > 0
        assert report['ratios']['int8_vs_torch_int8'] > 0


@pytest.mark.slow
def test_profile_lists_operators_and_onednn_counts(tmp_path):
    out = tmp_path / 'profile.json'
    proc = run_benchmark(*TINY, '--profile', '--top', '5', '--json', str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    names = [row['name'] for row in report['operators']]
    assert 'Convolution' in names and '_backward_Convolution' in names
    assert report['onednn']['by_kind'].get('convolution', 0) > 0
    assert 'BatchNorm backward on the reference kernel' in proc.stdout


@pytest.mark.slow
def test_profile_of_the_int8_pass_lists_its_operators(tmp_path):
    out = tmp_path / 'profile.json'
    proc = run_benchmark(*TINY, '--only', 'int8', '--calib-batches', '1', '--profile',
                         '--json', str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    names = [row['name'] for row in json.loads(out.read_text())['operators']]
    assert '_sg_mkldnn_conv' in names and '_contrib_quantize_v2' in names
    assert not any(name.startswith('_backward') for name in names)
    assert 'inference passes (int8)' in proc.stdout


def _has_avx512():
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            return ' avx512f' in cpuinfo.read()
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _has_avx512(), reason="oneDNN's kernel choice checked on AVX-512 only")
def test_resnet_step_runs_no_reference_batchnorm_backward(tmp_path):
    """The head pools from the default layout, so neither the pooling's backward nor any
    BatchNorm backward of the last group runs on oneDNN's reference kernel (before: the
    pooling and one BatchNorm per block of the last group)."""
    out = tmp_path / 'profile.json'
    proc = run_benchmark('--network', 'resnet', '--depth', '20', '--shape', '3,32,32',
                         '--batch-size', '4', '--steps', '1', '--warmup', '1', '--profile',
                         '--json', str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    onednn = json.loads(out.read_text())['onednn']
    assert onednn['by_kind'].get('batch_normalization', 0) > 0
    assert onednn['bn_backward_ref'] == 0
    assert onednn['reference_kernels'] == {}    # the pooling's backward included


@pytest.mark.slow
def test_imagenet_pipeline_per_thread(tmp_path):
    out = tmp_path / 'pipeline.json'
    proc = run_benchmark('--pipeline', 'imagenet', '--threads', '1', '--batch-size', '4',
                         '--pipeline-images', '8', '--json', str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    (result,) = json.loads(out.read_text())['pipeline']
    assert result['threads'] == 1 and result['img_s'] > 0
    assert result['img_s_per_thread'] == pytest.approx(result['img_s'])


@pytest.mark.slow
@pytest.mark.parametrize('flags, words', [
    (['--depth', '13'], ['depth 13']),
    (['--shape', '3,32'], ['--shape']),
    (['--only', 'step,nap'], ['--only']),
    (['--network', 'nonet'], ['nonet']),
    (['--pipeline', 'imagenet', '--threads', '0'], ['--threads']),
    (['--keep-fp32', 'stem'], ['--keep-fp32']),
    (['--calib-batches', '0'], ['--calib-batches']),
])
def test_bad_flags_end_in_one_error_line(flags, words):
    assert_one_line_error(run_benchmark(*flags), *words)
