"""tools/evaluate.py on a tiny run that train_model.py trained on real Fashion-MNIST."""
import json
import os

import numpy as np
import pytest

from helpers import assert_one_line_error
from inference_helpers import (TEST, TEST_BATCH, TRAIN_BATCH, log_validation_lines, run_tool,
                               tiny_run)

pytestmark = pytest.mark.slow   # every test here trains or starts a process


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    return tiny_run(tmp_path_factory)


def evaluate(*argv):
    proc = run_tool('evaluate', *argv)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def printed_validation_lines(stdout):
    """The log-style lines, less top-5 (which the log has on ImageNet only)."""
    return [line.strip() for line in stdout.splitlines()
            if line.strip().startswith('Validation-') and 'top_k' not in line]


def test_the_plain_graph_prints_the_log_s_figures_for_each_checkpoint(run):
    latest = evaluate(run['log'], '--path', 'plain')
    assert 'cross_d14w1_exp1-0002.params' in latest  # the latest checkpoint by default
    assert printed_validation_lines(latest) == log_validation_lines(run['log'], 1)
    first = evaluate('--checkpoint', run['prefix'], '--epoch', '1', '--path', 'plain')
    assert printed_validation_lines(first) == log_validation_lines(run['log'], 0)
    # the weights folder names the same run
    folder = evaluate(os.path.dirname(run['prefix']), '--path', 'plain')
    assert printed_validation_lines(folder) == printed_validation_lines(latest)


def test_the_ensemble_is_scored_on_its_averaged_components_as_in_training(tmp_path_factory):
    # the summed loss of 8 components takes 8 times the step: a rate that keeps it finite here
    ensemble = tiny_run(tmp_path_factory, 'ensemble', 5, lr=0.0125)
    out = evaluate(ensemble['log'], '--path', 'plain')
    assert printed_validation_lines(out) == log_validation_lines(ensemble['log'], 1)


def test_the_fused_graph_runs_and_predicts_as_the_plain_one(run, tmp_path):
    out = evaluate(run['log'], '--path', 'fused', '--json', tmp_path / 'fused.json')
    assert 'inference path: fused (' in out and 'same predictions: yes' in out, out
    evaluate(run['log'], '--path', 'plain', '--json', tmp_path / 'plain.json')
    fused, plain = (json.loads((tmp_path / name).read_text()) for name in
                    ('fused.json', 'plain.json'))
    assert fused['confusion'] == plain['confusion']
    assert fused['loss'] == pytest.approx(plain['loss'], abs=1e-5)


def test_per_class_figures_and_the_confusion_matrix_agree_with_predict(run, tmp_path):
    png = tmp_path / 'confusion.png'
    out = evaluate(run['log'], '--json', tmp_path / 'figures.json', '--png', png)
    figures = json.loads((tmp_path / 'figures.json').read_text())
    predicted = run_tool('predict', run['log'], '--input',
                         os.path.join(run['data'], 'test.rec'), '--format', 'json', '-k', '1')
    assert predicted.returncode == 0, predicted.stderr
    rows = json.loads(predicted.stdout)
    names = figures['classes']
    confusion = np.zeros((10, 10), int)
    for row in rows:
        confusion[names.index(row['label']), names.index(row['top'][0]['name'])] += 1
    assert figures['count'] == TEST == len(rows)
    assert figures['confusion'] == confusion.tolist()
    assert figures['top1'] == pytest.approx(np.trace(confusion) / TEST)
    assert figures['per_class'] == pytest.approx(list(confusion.diagonal()
                                                      / confusion.sum(axis=1)))
    assert figures['top5'] >= figures['top1']
    assert 'Trouser' in out and 'confusion matrix' in out
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_the_original_subset_is_the_first_training_batch_of_every_test_batch(run, tmp_path):
    evaluate(run['log'], '--original-subset', '--json', tmp_path / 'run.json')
    evaluate(run['log'], '--original-subset', '%d,%d' % (TRAIN_BATCH, TEST_BATCH),
             '--json', tmp_path / 'given.json')
    subset = json.loads((tmp_path / 'run.json').read_text())['original_subset']
    assert subset == json.loads((tmp_path / 'given.json').read_text())['original_subset']
    # 200 images in test batches of 64: 32 + 32 + 32 + the last batch's 8
    assert subset['count'] == 3 * TRAIN_BATCH + (TEST - 3 * TEST_BATCH)
    rows = json.loads(run_tool('predict', run['log'], '--input',
                               os.path.join(run['data'], 'test.rec'), '--format',
                               'json', '-k', '1').stdout)
    scored = [row for i, row in enumerate(rows) if i % TEST_BATCH < TRAIN_BATCH]
    hits = sum(row['label'] == row['top'][0]['name'] for row in scored)
    assert subset['top1'] == pytest.approx(hits / len(scored))


@pytest.mark.parametrize('argv, needles', [
    (['{log}', '--epoch', '7'], ['saved epochs: 1, 2']),
    (['{missing}'], ['no weights']),
    ([], ['name one checkpoint']),
    (['{log}', '--original-subset', '64'], ['--original-subset']),
    (['{log}', '--val-dataset', 'nope.rec'], ['nope.rec']),
    # outputs that cannot be written are refused before the scoring, not after it
    (['{log}', '--json', '{file}/figures.json'], ['--json', 'a file stands where']),
    (['{log}', '--png', '{tmp}'], ['--png', 'is a folder']),
])
def test_bad_input_is_one_line(run, tmp_path, argv, needles):
    (tmp_path / 'a-file').write_text('in the way')
    argv = [a.format(log=run['log'], missing=tmp_path / 'gone.txt', file=tmp_path / 'a-file',
                     tmp=tmp_path) for a in argv]
    proc = run_tool('evaluate', *argv)
    assert_one_line_error(proc, *needles)
    assert 'checkpoint' not in proc.stdout   # nothing was scored


def _damaged_copy(run, tmp_path, damage):
    """A copy of the run (log + weights) whose epoch-2 weights `damage(path)` spoils."""
    import shutil
    folder = os.path.dirname(run['log'])
    copy = tmp_path / 'run'
    shutil.copytree(folder, copy)
    name = os.path.basename(run['prefix'])
    params = copy / 'weights' / name / (name + '-0002.params')
    damage(params)
    return str(copy / os.path.basename(run['log'])), params


@pytest.mark.parametrize('damage, needles', [
    (lambda p: p.write_bytes(p.read_bytes()[:-100]), ['truncated']),
    (lambda p: p.write_bytes(b''), ['empty file']),
    (lambda p: p.write_bytes(os.urandom(4096)), ['not an MXNet parameter file']),
])
def test_damaged_weights_are_one_line_errors(run, tmp_path, damage, needles):
    log, params = _damaged_copy(run, tmp_path, damage)
    for tool in ('evaluate', 'predict', 'export'):
        argv = dict(evaluate=[log], predict=[log, '--input', run['data'] + '/test.rec'],
                    export=[log, '--out-dir', tmp_path / 'export', '--no-onnx'])[tool]
        assert_one_line_error(run_tool(tool, *argv), str(params), *needles)


def test_another_network_s_weights_are_named(run, tmp_path, tmp_path_factory):
    other = tiny_run(tmp_path_factory, network='resnet', depth=8)
    log, params = _damaged_copy(run, tmp_path,
                                lambda p: p.write_bytes(open(other['prefix'] + '-0002.params',
                                                             'rb').read()))
    assert_one_line_error(run_tool('evaluate', log), str(params), 'lack parameter')
