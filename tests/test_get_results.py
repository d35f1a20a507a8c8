"""get_results.py on logs the tests write (tests/logwriters.py: this port's and 2016's).

The final accuracies are chosen so that the expected statistics can be worked out by hand;
they are written below as literals.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import get_results
from engine.logs import parse_log
from logwriters import EPOCHS, STAMP, write_2016_log, write_port_log

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'get_results.py')


def build_snapshot(root):
    """cifar10: cross (this port, 3 complete + 1 incomplete run) and resnet (2016, 4 runs)."""
    cross = os.path.join(root, 'cifar10', 'cross')
    for run, (val, train) in enumerate([(0.9506, 0.9990), (0.9519, 0.9980),
                                        (0.9480, 0.9970)], 1):
        write_port_log(cross, 'cross_d56w1_exp%d.txt' % run, val, train)
    # the best accuracy of all, but stopped after 2 of 4 epochs: must not count
    write_port_log(cross, 'cross_d56w1_exp4.txt', 0.9999, 0.9999, epochs_done=2)
    with open(os.path.join(cross, 'cross_d56w1_exp2.txt'), 'a') as out:
        out.write('this line is garbage\n\x00\x01 binary junk\n'
                  + STAMP + 'Epoch[3] Validation-accura')   # a truncated last line
    resnet = os.path.join(root, 'cifar10', 'resnet')
    for run, (val, top1) in enumerate([(0.9300, 97.5), (0.9320, 98.25), (0.9350, 98.5),
                                       (0.9390, 98.95)], 1):
        write_2016_log(resnet, 'resnet_d56w1_exp%d.txt' % run, val, top1)
    # things that are not logs of a run
    weights = os.path.join(cross, 'weights', 'cross_d56w1_exp1')
    os.makedirs(weights)
    with open(os.path.join(weights, 'notes.txt'), 'w') as out:
        out.write('not a log\n')


CROSS_TEST_ACC = '95.060% (95.017 +/- 0.162, 95.190)'
CROSS_TEST_ERR = '4.940% (4.983 +/- 0.162, 4.810)'
CROSS_TRAIN_ACC = '99.900% (99.800 +/- 0.082, 99.900)'
# even count: the lower middle run's figures (the original's rule), here run 2's
RESNET_TEST_ACC = '93.200% (93.400 +/- 0.339, 93.900)'
RESNET_TEST_ERR = '6.800% (6.600 +/- 0.339, 6.100)'
RESNET_TRAIN_ACC = '98.250% (98.300 +/- 0.526, 98.950)'  # median run = the lower middle one


def run_script(*args):
    return subprocess.run([sys.executable, SCRIPT] + list(args), capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


@pytest.fixture(scope='module')
def snapshot(tmp_path_factory):
    root = str(tmp_path_factory.mktemp('snapshot'))
    build_snapshot(root)
    result = run_script(root + '/')
    assert result.returncode == 0, result.stderr
    return root, result.stdout


# ---------------------------------------------------------------- the printed statistics

@pytest.mark.slow
def test_prints_exact_statistics(snapshot):
    _, out = snapshot
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith('  ')}
    cross, resnet = rows['cross_d56w1_exp'], rows['resnet_d56w1_exp']
    assert cross.split()[1] == '3' and resnet.split()[1] == '4'
    for text in (CROSS_TEST_ACC, CROSS_TEST_ERR, CROSS_TRAIN_ACC):
        assert text in cross
    for text in (RESNET_TEST_ACC, RESNET_TEST_ERR, RESNET_TRAIN_ACC):
        assert text in resnet
    assert 'population std (ddof=0)' in ' '.join(out.split())   # the header states the rules


@pytest.mark.slow
def test_statistics_match_numpy(snapshot):
    root, _ = snapshot
    groups = {g.config: g for g in get_results.collect(root).configurations}
    values = [95.06, 95.19, 94.80]
    summary = groups['cross_d56w1_exp'].test_acc
    assert summary.median == pytest.approx(np.median(values))
    assert summary.mean == pytest.approx(np.mean(values))
    assert summary.std == pytest.approx(np.std(values))   # numpy's default: population
    assert summary.best == pytest.approx(max(values))


def test_sorted_by_dataset_network_depth(tmp_path):
    for name in ('plain_d56w1_exp1.txt', 'cross_d110w1_exp1.txt', 'cross_d56w4_exp1.txt',
                 'cross_d56w1_exp1.txt'):
        write_port_log(str(tmp_path / 'svhn' / name.split('_')[0]), name, 0.9, 0.9)
    write_port_log(str(tmp_path / 'cifar10' / 'plain'), 'plain_d20w1_exp1.txt', 0.9, 0.9)
    order = [(g.dataset, g.config) for g in get_results.collect(str(tmp_path)).configurations]
    assert order == [('cifar10', 'plain_d20w1_exp'), ('svhn', 'cross_d56w1_exp'),
                     ('svhn', 'cross_d56w4_exp'), ('svhn', 'cross_d110w1_exp'),
                     ('svhn', 'plain_d56w1_exp')]


@pytest.mark.slow
def test_incomplete_runs_reported_and_excluded(snapshot):
    root, out = snapshot
    assert ('cifar10/cross/cross_d56w1_exp4.txt: incomplete (2 of 4 epochs), '
            'left out of the statistics') in out
    group = {g.config: g for g in get_results.collect(root).configurations}['cross_d56w1_exp']
    assert [os.path.basename(r.path) for r in group.incomplete] == ['cross_d56w1_exp4.txt']
    assert len(group.counted) == 3 and group.test_acc.best == pytest.approx(95.19)


def test_configuration_with_only_incomplete_runs(tmp_path):
    write_port_log(str(tmp_path / 'cifar10' / 'cross'), 'cross_d56w1_exp1.txt', 0.9, 0.9)
    write_port_log(str(tmp_path / 'cifar10' / 'plain'), 'plain_d56w1_exp1.txt', 0.9, 0.9,
                   epochs_done=1)
    assert get_results.main([str(tmp_path)]) == 0
    report = get_results.collect(str(tmp_path))
    assert get_results.table_text(report).splitlines()[-1].split() == [
        'plain_d56w1_exp', '0', 'n/a', 'n/a', 'n/a']
    assert not (tmp_path / 'cifar10' / 'plain' / 'plain_d56w1_exp_results.txt').exists()
    figure = get_results.curves_figure('cifar10', report.configurations[:1])
    assert len(figure.axes[0].get_lines()) == 1


@pytest.mark.slow
def test_garbage_lines_counted_not_fatal(snapshot):
    root, out = snapshot
    assert 'cifar10/cross/cross_d56w1_exp2.txt: 3 unparseable lines skipped' in out
    run = parse_log(os.path.join(root, 'cifar10', 'cross', 'cross_d56w1_exp2.txt'))
    assert run.unparseable_lines == 3 and run.complete
    assert run.final.val_acc == pytest.approx(0.9519)


@pytest.mark.slow
def test_non_logs_are_ignored(snapshot):
    _, out = snapshot
    assert 'weights' not in out and 'metrics.jsonl' not in out


# ---------------------------------------------------------------- files written

@pytest.mark.slow
def test_result_file_layout(snapshot):
    root, _ = snapshot
    path = os.path.join(root, 'cifar10', 'resnet', 'resnet_d56w1_exp_results.txt')
    with open(path) as stream:
        lines = stream.read().splitlines()
    assert lines[0] == ('resnet_d56w1_exp, runs: 4, testing: %s, training: %s, '
                        'median run: resnet_d56w1_exp2.txt' % (RESNET_TEST_ACC,
                                                               RESNET_TRAIN_ACC))
    assert lines[2].endswith('resnet_d56w1_exp2.txt')          # the head, without timestamp
    assert lines[3].startswith('start with arguments Namespace(')
    assert 'GPU 1: Tesla K80 (UUID: GPU-4e5f6a7b)' in lines
    epochs = [line for line in lines if line.startswith('Epoch[')]
    assert len(epochs) == EPOCHS
    assert epochs[-1] == ('Epoch[004] training loss: 0.600000, acc: 98.250; '
                          'testing loss: 0.250000, acc: 93.200')
    assert not os.path.exists(os.path.join(root, 'cifar10', 'cross',
                                           'cross_d56w1_exp4_results.txt'))


@pytest.mark.slow
def test_csv_and_markdown(snapshot):
    root, _ = snapshot
    with open(os.path.join(root, 'results.csv')) as stream:
        rows = stream.read().splitlines()
    assert rows[0].split(',') == get_results.CSV_COLUMNS
    assert rows[1] == ('cifar10,cross,cross_d56w1_exp,56,1,3,1,0,4,'
                       '95.060,95.017,0.162,95.190,4.940,4.983,0.162,4.810,'
                       '99.900,99.800,0.082,99.900,cifar10/cross/cross_d56w1_exp1.txt')
    assert rows[2].startswith('cifar10,resnet,resnet_d56w1_exp,56,1,4,0,0,4,93.200,93.400,')
    with open(os.path.join(root, 'results.md')) as stream:
        markdown = stream.read()
    assert ('| cifar10 | cross | cross_d56w1_exp | 3 | 1 | 0 | %s | %s | %s |'
            % (CROSS_TEST_ERR, CROSS_TEST_ACC, CROSS_TRAIN_ACC)) in markdown
    assert ('| cifar10 | resnet | resnet_d56w1_exp | 4 | 0 | 0 | %s | %s | %s |'
            % (RESNET_TEST_ERR, RESNET_TEST_ACC, RESNET_TRAIN_ACC)) in markdown


@pytest.mark.slow
def test_curves_figure_draws_every_run_and_labels_the_median(snapshot):
    root, _ = snapshot
    groups = get_results.collect(root).configurations
    figure = get_results.curves_figure('cifar10', groups)
    error_axes, zoom_axes, loss_axes = figure.axes
    for axes in figure.axes:       # a line per counted run: 3 cross, 4 resnet
        assert len(axes.get_lines()) == 7

    def median(axes, config):
        found = [line for line in axes.get_lines() if line.get_label().startswith(config)]
        assert len(found) == 1
        return found[0]
    cross_error = median(error_axes, 'cross_d56w1_exp')
    assert cross_error.get_label() == 'cross_d56w1_exp (median of 3 runs; thin: each run)'
    assert median(error_axes, 'resnet_d56w1_exp').get_label() == \
        'resnet_d56w1_exp (median of 4 runs; thin: each run)'
    assert list(cross_error.get_xdata()) == [1, 2, 3, 4]
    assert cross_error.get_ydata()[-1] == pytest.approx(4.94)
    thin = [line for line in error_axes.get_lines() if line.get_label().startswith('_')]
    assert len(thin) == 5 and all(line.get_linewidth() < cross_error.get_linewidth()
                                  for line in thin)
    # 2016 flavour: the training loss is the last batch line's running mean
    assert list(median(loss_axes, 'resnet_d56w1_exp').get_ydata()) == \
        pytest.approx([0.9, 0.8, 0.7, 0.6])
    assert zoom_axes.get_xlim() == pytest.approx((0.8, 4.2))   # the last 4 of 4 epochs


@pytest.mark.slow
def test_curves_png_has_curves(snapshot):
    from matplotlib.image import imread
    root, _ = snapshot
    pixels = imread(os.path.join(root, 'cifar10_curves.png'))[..., :3]
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100

    def count(rgb):   # pixels close to a line colour of the default cycle
        return int((np.abs(pixels - np.array(rgb) / 255.0).max(axis=-1) < 0.05).sum())
    assert count((31, 119, 180)) > 200    # C0, the first configuration
    assert count((255, 127, 14)) > 200    # C1, the second


def test_unchanged_outputs_kept_and_force_rewrites(tmp_path):
    build_snapshot(str(tmp_path))
    assert get_results.main([str(tmp_path)]) == 0
    csv_path = tmp_path / 'results.csv'
    os.utime(csv_path, (1000, 1000))
    assert get_results.main([str(tmp_path)]) == 0
    assert os.path.getmtime(csv_path) == 1000
    assert get_results.main(['--log-dir', str(tmp_path), '-f']) == 0
    assert os.path.getmtime(csv_path) > 1000


@pytest.mark.slow
def test_function_call_prints_same_table(snapshot, tmp_path, capsys):
    build_snapshot(str(tmp_path))
    assert get_results.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert CROSS_TEST_ACC in out and RESNET_TRAIN_ACC in out
    assert 'wrote: ' in out and 'cifar10_curves.png' in out


# ---------------------------------------------------------------- empty and missing folders

@pytest.mark.slow
def test_empty_folder_message(tmp_path):
    result = run_script(str(tmp_path))
    assert result.returncode == 1
    assert result.stdout.strip().startswith('no training logs under')
    assert len(result.stdout.strip().splitlines()) == 1 and not result.stderr


@pytest.mark.slow
def test_missing_folder_is_a_one_line_error(tmp_path):
    result = run_script(str(tmp_path / 'nowhere'))
    assert result.returncode == 2
    assert result.stderr.startswith('error: ') and len(result.stderr.splitlines()) == 1
    assert 'Traceback' not in result.stderr and not result.stdout


@pytest.mark.slow
def test_help_states_the_rules():
    result = run_script('--help')
    assert result.returncode == 0
    assert 'ddof=0' in result.stdout and '--force' in result.stdout


def test_unknown_num_epochs_taken_as_complete_and_said(tmp_path):
    write_port_log(str(tmp_path / 'cifar10' / 'cross'), 'cross_d56w1_exp1.txt', 0.9, 0.9,
                   num_epochs=None)
    report = get_results.collect(str(tmp_path))
    assert len(report.configurations[0].counted) == 1
    assert any('--num-epochs not found' in note for note in report.notes)


# ---------------------------------------------------------------- the original's statistics

# six runs of the 2016 code (no Train-accuracy lines, as its logs): final test accuracy and
# the running top-1 of the last epoch's `Batch [750]` line
RUNS_2016 = [(0.9421, 98.10), (0.9388, 97.90), (0.9450, 98.40), (0.9402, 98.00),
             (0.9467, 98.60), (0.9395, 97.80)]


@pytest.mark.slow
def test_even_count_of_2016_runs_prints_what_the_original_printed(tmp_path):
    resnet = str(tmp_path / 'cifar10' / 'resnet')
    for run, (val, top1) in enumerate(RUNS_2016, 1):
        write_2016_log(resnet, 'resnet_d56w1_exp%d.txt' % run, val, top1,
                       train_accuracy_lines=False)
    # worked by hand: sorted by accuracy 93.88 93.95 94.02 94.21 94.50 94.67; index
    # (6-1)//2 = 2 is run 4 (94.02), whose [750] line says 98.00
    original = ('testing:  94.020% (94.205 +/-  0.291, 94.670), '
                'training: 98.000% (98.133 +/-  0.281, 98.600)')
    result = run_script(str(tmp_path))
    assert result.returncode == 0, result.stderr
    with open(os.path.join(resnet, 'resnet_d56w1_exp_results.txt')) as stream:
        first = stream.readline()
    ours = first[first.index('testing:'):first.index(', median run')]
    assert ' '.join(ours.split()) == ' '.join(original.split())   # the original padded %6.3f
    assert first.rstrip().endswith('median run: resnet_d56w1_exp4.txt')


@pytest.mark.slow
def test_median_average_is_the_mean_of_the_middle_two(tmp_path):
    resnet = str(tmp_path / 'cifar10' / 'resnet')
    for run, (val, top1) in enumerate(RUNS_2016, 1):
        write_2016_log(resnet, 'resnet_d56w1_exp%d.txt' % run, val, top1,
                       train_accuracy_lines=False)
    group = get_results.collect(str(tmp_path), median_rule='average').configurations[0]
    assert group.test_acc.median == pytest.approx((94.02 + 94.21) / 2)
    assert group.test_err.median == pytest.approx(100 - (94.02 + 94.21) / 2)
    assert group.train_acc.median == pytest.approx((98.00 + 98.10) / 2)
    assert os.path.basename(group.median_run.path) == 'resnet_d56w1_exp4.txt'   # the curve's
    result = run_script(str(tmp_path), '--median', 'average')
    assert result.returncode == 0 and '94.115% (94.205 +/- 0.291, 94.670)' in result.stdout
    assert '--median average' in ' '.join(result.stdout.split())


@pytest.mark.slow
def test_help_states_both_median_rules():
    text = ' '.join(run_script('--help').stdout.split())
    assert '(n-1)//2' in text and 'lower middle run' in text
    assert 'mean of the two middle values' in text


def test_a_sweep_s_summary_file_stays_beside_the_first_seed(tmp_path):
    """Runs of one configuration in seed<S>/ folders (tools/sweep.py): the summary stays
    beside seed1's log as later, better runs finish, instead of moving and leaving a stale
    copy behind."""
    folder = lambda seed: str(tmp_path / ('seed%d' % seed) / 'cifar10' / 'cross')  # noqa: E731
    write_port_log(folder(1), 'cross_d56w1_exp1.txt', 0.90, 0.95)
    assert get_results.main([str(tmp_path)]) == 0
    write_port_log(folder(2), 'cross_d56w1_exp1.txt', 0.93, 0.96)
    write_port_log(folder(3), 'cross_d56w1_exp1.txt', 0.92, 0.96)
    assert get_results.main([str(tmp_path)]) == 0
    found = sorted(os.path.relpath(os.path.join(top, name), str(tmp_path))
                   for top, _, names in os.walk(str(tmp_path)) for name in names
                   if name.endswith('_results.txt'))
    assert found == [os.path.join('seed1', 'cifar10', 'cross', 'cross_d56w1_exp_results.txt')]
    with open(os.path.join(str(tmp_path), found[0])) as summary:
        assert 'runs: 3' in summary.read()
