"""An ImageNet network end to end on a tiny JPEG tree: train_imagenet.py with two classes
(fewer than top-5 needs), then evaluate, predict and export on its checkpoint."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from inference_helpers import ROOT, run_tool
from test_imagenet_aug import pack_tree

pytestmark = pytest.mark.slow   # every test here trains or starts a process


def tinted(rng, height, width, channel):
    image = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    image[:, :, channel] += 150
    return image


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp('imagenet-run')
    rng = np.random.default_rng(0)
    train = {'n01': [tinted(rng, 300, 400, 0), tinted(rng, 360, 280, 0)],
             'n02': [tinted(rng, 320, 320, 2), tinted(rng, 250, 500, 2)]}
    val = {'n01': [tinted(rng, 333, 444, 0)], 'n02': [tinted(rng, 290, 410, 2)]}
    rec = pack_tree(str(root), train, val)
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'train_imagenet.py'), '--network', 'symbol_resnet',
         '--depth', '50', '--data-dir', rec, '--num-classes', '2', '--batch-size', '2',
         '--test-batch-size', '2', '--num-epochs', '1', '--lr-steps', '1', '--lr', '0.0001',
         '--cpu', '--no-progress', '--log-dir', str(root / 'snapshot')],
        capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = root / 'snapshot' / 'imagenet' / 'symbol_resnet' / 'symbol_resnet_d50w1_exp1.txt'
    jpegs = sorted(str(p) for p in (root / 'src' / 'val').rglob('*.JPEG'))
    return dict(log=str(log), rec=os.path.join(rec, 'imagenet_val.rec'), jpegs=jpegs,
                root=root)


def test_two_classes_train_without_top5_and_evaluate_repeats_the_log(run):
    with open(run['log']) as handle:
        logged = [line.split('] ', 1)[1].strip() for line in handle if 'Validation-' in line]
    assert logged and not any('top_k' in line for line in logged)
    proc = run_tool('evaluate', run['log'], '--path', 'plain')   # the training graph's
    assert proc.returncode == 0, proc.stderr
    printed = [line.strip() for line in proc.stdout.splitlines()
               if line.strip().startswith('Validation-')]
    assert printed == logged


def test_jpeg_files_predict_what_their_records_predict(run):
    def top(argv):
        proc = run_tool('predict', run['log'], '--format', 'json', '--input', *argv)
        assert proc.returncode == 0, proc.stderr
        return [[(c['name'], c['probability']) for c in row['top']]
                for row in json.loads(proc.stdout[proc.stdout.index('['):])]
    from_files, from_records = top(run['jpegs']), top([run['rec']])
    assert from_files == from_records
    assert all(len(row) == 2 for row in from_files)


def test_export_agrees_with_the_checkpoint(run):
    proc = run_tool('export', run['log'], '--out-dir', run['root'] / 'export')
    assert proc.returncode == 0, proc.stderr
    differences = dict(re.findall(r'batch of \d+: (\w+)\s+(\S+)', proc.stdout))
    assert float(differences['mxnet']) == 0
    if 'onnx' in differences:   # onnx and onnxruntime are an optional extra
        assert 'onnx.checker' in proc.stdout
        assert np.isfinite(float(differences['onnx'])) and float(differences['onnx']) < 0.1
