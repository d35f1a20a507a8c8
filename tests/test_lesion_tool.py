"""tools/lesion.py on tiny checkpoints and tiny synthetic records."""
import csv
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

import network
from common.errors import UserError
from data.iterators import get_iterators
from data.synthetic import smooth_images, write_record_dataset
from engine import checkpoint
from helpers import assert_one_line_error
from inference.lesion import lesion_plan, parse_ks, random_subsets
from network import lesion

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_IMAGES = 40
pytestmark = pytest.mark.filterwarnings('ignore:Parameter .* is not used by any computation')


def records(folder):
    rng = np.random.RandomState(0)
    images = smooth_images(48 + TEST_IMAGES, 28, 28, channels=1, seed=1)
    labels = rng.randint(0, 10, len(images)).astype(np.uint8)
    write_record_dataset(folder, 'fashion-mnist', (images[:48], labels[:48]),
                         (images[48:], labels[48:]))
    return folder


def fake_run(root, data, name, depth, seed=7):
    """A run folder as train_model.py leaves it: the log's flags line and one checkpoint
    (weights and the .state that holds the run's flags), of a network with random weights
    and random BatchNorm statistics."""
    run = '%s_d%dw1_exp1' % (name, depth)
    folder = os.path.join(root, name)
    os.makedirs(os.path.join(folder, 'weights', run))
    mx.random.seed(seed)
    net = network.initialize(network.get_net(name, depth=depth, num_classes=10), (1, 28, 28))
    rng = np.random.RandomState(seed)
    for param in net.collect_params().values():
        if param.name.endswith(('_running_mean', '_beta')):
            param.set_data(mx.nd.array(rng.randn(*param.shape).astype('float32') * 0.3))
    net.save_parameters(os.path.join(folder, 'weights', run, run + '-0001.params'))
    flags = dict(network=name, depth=depth, widen_factor=1, dataset='fashion-mnist',
                 num_classes=10, data_dir=data, train_dataset='train.rec',
                 val_dataset='test.rec', data_shape=28, aug_type=1, batch_size=16,
                 test_batch_size=16)
    state = dict(version=checkpoint.STATE_VERSION, epoch=1, num_update=3, rand_seed=seed,
                 run=dict(network=name, rand_seed=seed), args=flags, omp_num_threads='1',
                 optimizer_update_counts=dict(num_update=3, per_index={}))
    with open(checkpoint.state_file(os.path.join(folder, 'weights', run, run), 1), 'w') as out:
        json.dump(state, out)
    log = os.path.join(folder, run + '.txt')
    with open(log, 'w') as handle:
        handle.write('2026-01-01 00:00:00,000 %s\n2026-01-01 00:00:00,000 start with arguments '
                     'Namespace(%s)\n' % (log, ', '.join('%s=%r' % item for item in flags.items())))
    return log


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('lesion-runs'))
    data = records(os.path.join(root, 'data'))
    return dict(data=data, cross=fake_run(root, data, 'cross', 26),
                resnet=fake_run(root, data, 'resnet', 14), half=fake_run(root, data, 'half', 14))


def tool(*argv):
    return subprocess.run([sys.executable, os.path.join(ROOT, 'tools', 'lesion.py')]
                          + [str(a) for a in argv], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def read_csv(path):
    with open(path, newline='') as stream:
        return list(csv.DictReader(stream))


def reference_errors(log, name, depth, data, subsets):
    """The test error of the checkpoint with each subset deleted, computed here (not
    hybridized, batches of 16, as the tool reads the records)."""
    net = network.initialize(network.get_net(name, depth=depth, num_classes=10), (1, 28, 28))
    prefix = os.path.join(os.path.dirname(log), 'weights', os.path.basename(log)[:-4])
    net.load_parameters(os.path.join(prefix, os.path.basename(prefix) + '-0001.params'))
    _, val_it = get_iterators('fashion-mnist', data, 16, 16)
    test = list(val_it)
    labels = np.concatenate([y.asnumpy() for _, y in test])
    errors = {}
    for subset in subsets:
        lesion.set_deleted(net, subset)
        logits = np.concatenate([net(x).asnumpy() for x, _ in test])
        errors[subset] = float((logits.argmax(axis=1) != labels).mean())
    return errors


@pytest.mark.slow
@pytest.mark.parametrize('name, depth', [('cross', 26), ('resnet', 14)])
def test_the_tables_hold_the_lesioned_networks_errors(runs, tmp_path, name, depth):
    out = tmp_path / 'lesion'
    proc = tool(runs[name], '--ks', '2-4', '--draws', 2, '--out-dir', out)
    assert proc.returncode == 0, proc.stderr
    # both layouts [2, 2, 2]: the first blocks of g2 and g3 change the channels
    assert '4 blocks can be deleted (g1_b1 g1_b2 g2_b2 g3_b2), 2 cannot (g2_b1 g3_b1)' \
        in proc.stdout
    rows = read_csv(out / 'lesion.csv')
    # the whole network, 4 single deletions, 2 draws of 2 and of 3 blocks, the one set of 4
    assert [(r['kind'], r['deleted']) for r in rows] == (
        [('none', '0')] + [('single', '1')] * 4 + [('random', '2')] * 2
        + [('random', '3')] * 2 + [('random', '4')])
    subsets = [tuple(r['blocks'].split()) for r in rows]
    assert subsets[1:5] == [('g1_b1',), ('g1_b2',), ('g2_b2',), ('g3_b2',)]
    assert len(set(subsets[5:7])) == 2 and len(set(subsets[7:9])) == 2
    expected = reference_errors(runs[name], name, depth, runs['data'], subsets)
    assert [float(r['test_error']) for r in rows] == \
        pytest.approx([expected[s] for s in subsets], abs=1e-6)
    assert len(set(expected.values())) > 2   # the lesions change the predictions
    summary = read_csv(out / 'lesion_summary.csv')
    assert [(s['deleted'], s['networks']) for s in summary] == \
        [('0', '1'), ('1', '4'), ('2', '2'), ('3', '2'), ('4', '1')]
    singles = [float(r['test_error']) for r in rows[1:5]]
    assert float(summary[1]['mean_error']) == pytest.approx(np.mean(singles), abs=1e-6)
    assert float(summary[1]['std_error']) == pytest.approx(np.std(singles), abs=1e-6)
    assert float(summary[4]['fraction']) == 1.0
    assert (out / 'lesion.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


@pytest.mark.slow
def test_the_same_seed_draws_the_same_subsets_and_images_limits_the_test_set(runs, tmp_path):
    first, second, other = (tmp_path / n for n in ('a', 'b', 'c'))
    for out, seed in ((first, 1), (second, 1), (other, 2)):
        proc = tool(runs['cross'], '--ks', '2', '--draws', 3, '--seed', seed, '--images', 20,
                    '--out-dir', out)
        assert proc.returncode == 0, proc.stderr
        assert 'on 20 test images' in proc.stdout
    assert (first / 'lesion.csv').read_bytes() == (second / 'lesion.csv').read_bytes()
    drawn = [[r['blocks'] for r in read_csv(out / 'lesion.csv') if r['kind'] == 'random']
             for out in (first, other)]
    assert drawn[0] != drawn[1]
    # 20 images: every error is a multiple of 1/20
    assert all(abs(float(r['test_error']) * 20 - round(float(r['test_error']) * 20)) < 1e-6
               for r in read_csv(first / 'lesion.csv'))


def test_random_subsets_are_distinct_and_all_when_few():
    names = ['a', 'b', 'c', 'd', 'e']
    drawn = random_subsets(names, 2, 4, seed=1)
    assert len(set(drawn)) == 4 and all(len(s) == 2 for s in drawn)
    assert all(list(s) == sorted(s) for s in drawn)   # network order
    assert random_subsets(names, 4, 5, seed=1) == [('a', 'b', 'c', 'd'), ('a', 'b', 'c', 'e'),
                                                   ('a', 'b', 'd', 'e'), ('a', 'c', 'd', 'e'),
                                                   ('b', 'c', 'd', 'e')]
    # a k's subsets do not depend on the other ks asked for
    assert [s for _, _, s in lesion_plan(names, [3], 2, 1) if len(s) == 3] == \
        [s for _, _, s in lesion_plan(names, [2, 3, 5], 2, 1) if len(s) == 3]


def test_ks():
    assert parse_ks(None, 4) == [2, 3, 4]
    assert parse_ks('2-3,5', 6) == [2, 3, 5]
    for bad in ('0', '2-9', 'x', '3-'):
        with pytest.raises(UserError):
            parse_ks(bad, 6)


@pytest.mark.slow
@pytest.mark.parametrize('argv, words', [
    (['{half}'], ['resnet and cross', 'half']),
    (['{cross}', '--ks', '5'], ['4 deletable blocks']),
    (['{cross}', '--draws', '0'], ['--draws']),
    (['{cross}', '--out-dir', '{file}'], ['output folder']),
    ([], ['name one checkpoint']),
])
def test_bad_input_is_one_line(runs, tmp_path, argv, words):
    (tmp_path / 'a-file').write_text('in the way')
    argv = [a.format(file=tmp_path / 'a-file', **runs) for a in argv]
    assert_one_line_error(tool(*argv), *words)


def write_summary(folder, errors):
    """A lesion_summary.csv of a network with len(errors) - 1 deletable blocks."""
    os.makedirs(folder, exist_ok=True)
    count = len(errors) - 1
    with open(os.path.join(folder, 'lesion_summary.csv'), 'w') as handle:
        handle.write('deleted,fraction,networks,mean_error,std_error,min_error,max_error\n')
        for k, error in enumerate(errors):
            handle.write('%d,%.4f,1,%f,0.01,%f,%f\n' % (k, k / count, error, error, error))


def test_compare_draws_finished_studies_in_one_picture(tmp_path, capsys):
    from inference.lesion import main
    write_summary(str(tmp_path / 'cross_d26'), [0.07, 0.4, 0.8])
    write_summary(str(tmp_path / 'resnet_d26'), [0.07, 0.1, 0.2, 0.4, 0.9])
    assert main(['--compare', str(tmp_path / 'cross_d26'), str(tmp_path / 'resnet_d26'),
                 '--out-dir', str(tmp_path / 'out')]) == 0
    out = capsys.readouterr().out
    assert 'cross_d26: 0 deleted 7.00%, 1 deleted 40.00%, 2 deleted 80.00%' in out
    assert 'resnet_d26: 0 deleted 7.00%, 1 deleted 10.00%' in out
    with open(str(tmp_path / 'out' / 'lesion_compare.png'), 'rb') as handle:
        assert handle.read(8) == b'\x89PNG\r\n\x1a\n'


@pytest.mark.parametrize('content, words', [
    (None, ['cannot read', 'lesion_summary.csv']),
    ('deleted,networks\n1,2\n', ['is not a lesion summary']),
    ('deleted,fraction,networks,mean_error,std_error,min_error,max_error\n0,x,1,1,1,1,1\n',
     ['is not a lesion summary']),
])
def test_compare_refuses_what_is_not_a_summary_in_one_line(tmp_path, content, words):
    folder = tmp_path / 'study'
    folder.mkdir()
    if content is not None:
        (folder / 'lesion_summary.csv').write_text(content)
    with pytest.raises(UserError) as caught:
        from inference.lesion import main
        main(['--compare', str(folder), '--out-dir', str(tmp_path / 'out')])
    assert all(word in str(caught.value) for word in words)
    assert not (tmp_path / 'out' / 'lesion_compare.png').exists()
