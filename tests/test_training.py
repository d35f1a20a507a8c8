"""train_model.py end to end on a small slice of the real Fashion-MNIST, on the CPU."""
import json
import os
import re
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

import train_model
from engine import checkpoint, logs, runfiles
from common.errors import UserError
from helpers import assert_one_line_error, write_fashion_slice

pytestmark = pytest.mark.slow   # every test here trains or starts a process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN, TEST = 1024, 256
SHORT_TRAIN, SHORT_TEST = 256, 100   # for what needs steps and epochs, not learning


@pytest.fixture(scope='session')
def fashion_slice(tmp_path_factory):
    """The first 1024 training and 256 test images of the real Fashion-MNIST."""
    return write_fashion_slice(str(tmp_path_factory.mktemp('fashion-slice')), TRAIN, TEST)


@pytest.fixture(scope='session')
def short_slice(tmp_path_factory):
    """The first 256 training and 100 test images: 8 batches of 32 an epoch."""
    return write_fashion_slice(str(tmp_path_factory.mktemp('fashion-short')), SHORT_TRAIN,
                               SHORT_TEST)


def train(data_dir, log_dir, *extra):
    argv = ['--dataset', 'fashion-mnist', '--data-dir', data_dir, '--log-dir', str(log_dir),
            '--network', 'cross', '--depth', '14', '--cpu', '--batch-size', '32',
            '--test-batch-size', '100', '--log-iters', '8', '--rand-seed', '7',
            '--no-progress'] + list(extra)
    args = train_model.parse(argv)
    return train_model.run(args)


def params_of(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(path).items()}


def epochs_of(log_path):
    return logs.parse_log(log_path).records


def test_short_run_learns_and_writes_the_original_files(fashion_slice, tmp_path):
    result = train(fashion_slice, tmp_path, '--num-epochs', '3')
    log = result['log_path']
    assert log == str(tmp_path / 'fashion-mnist' / 'cross' / 'cross_d14w1_exp1.txt')
    records = epochs_of(log)
    assert [r.epoch for r in records] == [0, 1, 2]
    assert records[-1].train_loss < records[0].train_loss
    # chance is 0.1. Not the test accuracy: with the original's BatchNorm momentum (0.99)
    # the running statistics of ~90 batches still hold 40% of their start values.
    assert records[-1].train_acc > 0.5, records[-1]
    assert logs.parse_log(log).complete and logs.parse_log(log).unparseable_lines == 0
    with open(log) as handle:
        lines = handle.read().splitlines()
    assert lines[0].endswith(log) and 'start with arguments Namespace(' in lines[1]
    assert any('Epoch[0] Batch [8]\tSpeed: ' in line for line in lines)
    # metrics beside the log, one JSON object per epoch
    with open(runfiles.metrics_path(log)) as handle:
        metrics = [json.loads(line) for line in handle]
    assert [m['epoch'] for m in metrics] == [0, 1, 2]
    assert metrics[-1]['val_acc'] == pytest.approx(records[-1].val_acc, abs=1e-6)
    # default learning-rate steps at 1/2, 3/4, 7/8 of 3 epochs: epochs 1, 2, 2
    assert [m['lr'] for m in metrics] == pytest.approx([0.1, 0.01, 0.0001])
    # weights: checkpoint every num_epochs/8 -> every epoch, under weights/<log name>/
    prefix = runfiles.weights_prefix(log)
    assert checkpoint.checkpoint_epochs(prefix) == [1, 2, 3]
    # a second run of the same configuration takes the next number and leaves run 1 alone
    before = open(log).read()
    again = train(fashion_slice, tmp_path, '--num-epochs', '1')
    assert again['log_path'].endswith('cross_d14w1_exp2.txt')
    assert open(log).read() == before


def test_learning_rate_changes_at_exactly_the_step_batches(short_slice, tmp_path):
    result = train(short_slice, tmp_path, '--num-epochs', '3', '--lr-steps', '1,2',
                   '--lr', '0.05')
    with open(result['log_path']) as handle:
        changes = [line.split(' ', 2)[2].rstrip() for line in handle if 'learning rate' in line]
    epoch_size = SHORT_TRAIN // 32
    assert changes == [
        'Epoch[1] learning rate 0.005 from batch %d (batch 0 of the epoch)' % epoch_size,
        'Epoch[2] learning rate 0.0005 from batch %d (batch 0 of the epoch)' % (2 * epoch_size)]


def test_resume_ends_with_the_same_parameters(short_slice, tmp_path):
    steps = ('--lr-steps', '1', '--checkpoint-epochs', '1')
    whole = train(short_slice, tmp_path / 'whole', '--num-epochs', '2', *steps)
    first = train(short_slice, tmp_path / 'split', '--num-epochs', '1', *steps)
    resumed = train(short_slice, tmp_path / 'split', '--num-epochs', '2', '--resume', *steps)
    assert resumed['log_path'] == first['log_path']  # the run continues in its own log
    assert [r.epoch for r in epochs_of(resumed['log_path'])] == [0, 1]
    a = params_of(checkpoint.params_file(whole['weights_prefix'], 2))
    b = params_of(checkpoint.params_file(resumed['weights_prefix'], 2))
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert resumed['val_acc'] == whole['val_acc']
    # --load-epoch N starts a new run from the latest run's checkpoint after N epochs; the
    # source run keeps its files, and the new log begins with its epochs before N
    source_log = open(resumed['log_path']).read()
    source_weights = open(checkpoint.params_file(resumed['weights_prefix'], 2), 'rb').read()
    again = train(short_slice, tmp_path / 'split', '--num-epochs', '2', '--load-epoch', '1',
                  *steps)
    assert again['log_path'].endswith('cross_d14w1_exp2.txt')
    assert again['weights_prefix'] != resumed['weights_prefix']
    assert open(resumed['log_path']).read() == source_log
    assert open(checkpoint.params_file(resumed['weights_prefix'], 2), 'rb').read() == \
        source_weights
    copied = logs.parse_log(again['log_path'])
    assert [r.epoch for r in copied.records] == [0, 1] and copied.complete
    assert copied.records[0].val_acc == epochs_of(first['log_path'])[0].val_acc
    c = params_of(checkpoint.params_file(again['weights_prefix'], 2))
    for name in a:
        np.testing.assert_array_equal(a[name], c[name], err_msg=name)


def test_several_cpu_contexts_match_one(fashion_slice, tmp_path):
    one = train(fashion_slice, tmp_path / 'one', '--num-epochs', '1', '--lr', '0.02')
    two = train(fashion_slice, tmp_path / 'two', '--num-epochs', '1', '--lr', '0.02',
                '--cpu-contexts', '2')
    a = params_of(checkpoint.params_file(one['weights_prefix'], 1))
    b = params_of(checkpoint.params_file(two['weights_prefix'], 1))
    # Same data and initial weights; only BatchNorm's statistics over half batches differ,
    # so the learnt weights must agree far more closely than they moved in training.
    conv = [k for k in a if k.endswith('weight')]
    differences = [np.abs(a[k] - b[k]).mean() / (np.abs(a[k]).mean() + 1e-12) for k in conv]
    assert max(differences) < 0.05, max(differences)
    assert abs(one['val_acc'] - two['val_acc']) < 0.05


def run_script(*argv, cwd=ROOT):
    return subprocess.run([sys.executable] + list(argv), cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize('flags, needles', [
    (['--network', 'crossx'], ['unknown network', 'cross']),
    (['--depth', '10'], ['invalid depth 10', '14']),
    (['--gpus', '0'], ['sees none', '--cpu']),
    (['--num-classes', '5'], ['label', '5']),
    (['--data-dir', '/nonexistent/fm'], ['data.prepare fashion-mnist']),
    (['--resume'], ['no checkpoint']),
    (['--load-epoch', '3'], ['no run']),
])
def test_bad_input_is_one_line_and_writes_nothing(fashion_slice, tmp_path, flags, needles):
    argv = ['train_model.py', '--dataset', 'fashion-mnist', '--data-dir', fashion_slice,
            '--log-dir', str(tmp_path), '--network', 'cross', '--depth', '14',
            '--num-epochs', '1'] + flags
    assert_one_line_error(run_script(*argv), *needles)
    assert not os.listdir(tmp_path), 'a failed start left files behind'


def test_without_prepared_data_says_how_to_prepare(tmp_path):
    proc = run_script(os.path.join(ROOT, 'train_model.py'), '--dataset', 'fashion-mnist',
                      '--log-dir', str(tmp_path / 'snap'), cwd=str(tmp_path))
    assert_one_line_error(proc, 'python -m data.prepare fashion-mnist')


def test_unwritable_snapshot_folder(fashion_slice, tmp_path):
    blocker = tmp_path / 'not-a-folder'
    blocker.write_text('')
    proc = run_script('train_model.py', '--dataset', 'fashion-mnist', '--data-dir',
                      fashion_slice, '--log-dir', str(blocker), '--depth', '14', '--cpu')
    assert_one_line_error(proc, 'writable --log-dir')
    assert blocker.read_text() == ''


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(short_slice, tmp_path):
    good = train(short_slice, tmp_path, '--num-epochs', '1')
    last_good = checkpoint.params_file(good['weights_prefix'], 1)
    saved = open(last_good, 'rb').read()
    # --resume refuses another --lr; --load-epoch starts a new run from the checkpoint
    with pytest.raises(UserError, match='non-finite|became (nan|inf)') as err:
        train(short_slice, tmp_path, '--num-epochs', '2', '--load-epoch', '1', '--lr', '1e30')
    assert last_good in str(err.value)
    assert open(last_good, 'rb').read() == saved
    assert checkpoint.checkpoint_epochs(good['weights_prefix']) == [1]
    diverged = good['log_path'].replace('exp1.txt', 'exp2.txt')
    with open(diverged) as handle:
        assert 'became' in handle.read().splitlines()[-1]


def test_dist_sync_two_workers_stay_identical_on_disjoint_halves(fashion_slice, tmp_path):
    """tools/launch.py: 2 workers and 1 server on 127.0.0.1, MXNet's own dist_sync."""
    import signal
    command = [sys.executable, 'tools/launch.py', '-n', '2', '-s', '1', '--launcher', 'local',
               sys.executable, 'train_model.py'] + dist_sync_training_flags(fashion_slice,
                                                                             tmp_path)
    # as a user runs it: dist runs keep MXNet's threaded engine (engine/runtime.py)
    env = {k: v for k, v in os.environ.items() if k != 'MXNET_ENGINE_TYPE'}
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, env=env,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, output[-3000:]
    assert_two_workers_stayed_identical(output, tmp_path)


def dist_sync_training_flags(data_dir, log_dir):
    """train_model.py's flags of the two-worker runs (tools/launch.py adds the rest)."""
    return ['--kv-store', 'dist_sync', '--dataset', 'fashion-mnist', '--data-dir', data_dir,
            '--log-dir', str(log_dir), '--network', 'cross', '--depth', '14', '--cpu',
            '--batch-size', '32', '--test-batch-size', '64', '--num-epochs', '2',
            '--rand-seed', '3', '--log-iters', '4', '--no-progress']


def assert_two_workers_stayed_identical(output, tmp_path):
    """The output of a 2-worker run of the flags above, and its log under tmp_path."""
    # each worker reads its own half of the training records
    parts = dict(re.findall(r'Node\[(\d)\] worker \d of 2: training on part \d of 2, '
                            r'(\d+) images', output))
    assert sorted(parts) == ['0', '1'] and sum(map(int, parts.values())) == TRAIN
    assert output.count('Batch [16]') == 2 * 2  # 512 images / 32 = 16 batches, both epochs
    # after every epoch both workers hold the very same weights
    sums = re.findall(r'Node\[(\d)\] Epoch\[(\d)\] parameter checksum (\S+)', output)
    by_epoch = {}
    for node, epoch, value in sums:
        by_epoch.setdefault(epoch, {})[node] = value
    assert sorted(by_epoch) == ['0', '1']
    for epoch, values in by_epoch.items():
        assert values['0'] == values['1'], (epoch, values)
    # rank 0 writes the log, every line with its rank; test figures cover all 256 images
    log = tmp_path / 'fashion-mnist' / 'cross' / 'cross_d14w1_exp1.txt'
    lines = log.read_text().splitlines()
    assert all(' Node[0] ' in line for line in lines)
    run = logs.parse_log(str(log))
    assert run.complete and run.unparseable_lines == 0
    accuracies = re.findall(r'Node\[(\d)\] Epoch\[1\] Validation-accuracy=(\S+)', output)
    assert len(accuracies) == 2 and accuracies[0][1] == accuracies[1][1]
    assert round(float(accuracies[0][1]) * TEST) == pytest.approx(
        float(accuracies[0][1]) * TEST, abs=1e-3)


def test_train_imagenet_runs_the_imagenet_recipe_on_a_tiny_tree(tmp_path):
    """train_imagenet.py on 6 JPEGs packed by data.prepare: symbol_resnet, top-5, 224x224."""
    import train_imagenet
    from data import imagenet
    from data.synthetic import write_image_tree
    write_image_tree(str(tmp_path / 'tree'), per_class=2)
    imagenet.convert(str(tmp_path / 'tree'), str(tmp_path / 'rec'), workers=1)
    args = train_imagenet.parse([])
    # the original's ImageNet recipe as defaults
    assert (args.network, args.depth, args.batch_size, args.num_epochs, args.lr_step_epochs,
            args.log_iters, args.checkpoint_epochs, args.train_dataset, args.val_dataset,
            args.num_classes, args.data_shape, args.dataset) == (
        'symbol_cross', 50, 256, 120, [30, 60, 90], 10, 5, 'imagenet_train.rec',
        'imagenet_val.rec', 1000, 224, 'imagenet')
    argv = ['--network', 'symbol_resnet', '--data-dir', str(tmp_path / 'rec'), '--cpu',
            '--num-classes', '5',
            '--log-dir', str(tmp_path / 'snap'), '--batch-size', '2', '--test-batch-size', '2',
            '--num-epochs', '1', '--log-iters', '1', '--no-progress', '--rand-seed', '1']
    args = train_imagenet.parse(argv)
    result = train_model.run(args)   # top-5: ImageNet with five classes (logs_top5)
    assert result['log_path'].endswith(
        os.path.join('imagenet', 'symbol_resnet', 'symbol_resnet_d98w1_exp1.txt'))
    assert result['val_top5'] == 1.0  # 5 classes: every label is among the top 5
    text = open(result['log_path']).read()
    assert '\ttop5: ' in text and 'Validation-top_k_accuracy_5=1.000000' in text
    assert logs.parse_log(result['log_path']).records[0].val_top5 == 1.0


def test_train_imagenet_refuses_cifar_networks():
    proc = run_script('train_imagenet.py', '--network', 'cross', '--cpu')
    assert_one_line_error(proc, 'not an ImageNet network', 'symbol_cross')
