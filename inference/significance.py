"""Does one network beat another, over seeds and image by image? (tools/significance.py)

The primary endpoint is each run's final test error. Two tests, both two-sided: Welch's t on
the two groups' errors, and the exact permutation test of the difference of their mean
errors over every split of the runs into groups of the same sizes (p: the share of splits
whose absolute difference is at least the observed one). The secondary test is McNemar's
exact test between the median run of each group (the lower middle by test accuracy, as
get_results.py picks it): a two-sided binomial test on the images exactly one of the two
classifies correctly.

Per-image predictions of every run's final checkpoint are kept in one CSV (`image`,
`label`, then one column per run, named by its log's path below the runs' common folder);
when that file already holds every run
it is read instead of the checkpoints, so the tests can be redone without the weights.
"""
import csv
import io
import itertools
import os

import numpy as np

from common.atomic import write_whole_text
from common.errors import ArgumentParser, UserError
from common.reading import open_regular
from engine.logs import read_metrics
from engine.runfiles import metrics_path


def build_parser():
    parser = ArgumentParser(
        prog='tools/significance.py',
        description='Compare two groups of runs (e.g. the seeds of two networks): Welch\'s t '
                    'and the exact permutation test on their final test errors, McNemar\'s '
                    'exact test between their median runs, from per-image predictions.')
    parser.add_argument('--a', nargs='+', required=True, metavar='LOG',
                        help="the first group's run logs")
    parser.add_argument('--b', nargs='+', required=True, metavar='LOG',
                        help="the second group's run logs")
    parser.add_argument('--predictions', required=True, metavar='CSV',
                        help='per-image predictions of every run: read when it holds them '
                             'all, else computed from the final checkpoints and written')
    parser.add_argument('--batch-size', type=int, default=None,
                        help="images per batch when scoring; default the run's test batch")
    return parser


# ---------------------------------------------------------------- the tests

def welch(a, b):
    """(t, degrees of freedom, two-sided p) of Welch's t-test, mean(a) - mean(b)."""
    from scipy import stats
    result = stats.ttest_ind(a, b, equal_var=False)
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return float(result.statistic), float(df), float(result.pvalue)


def permutation_p(a, b):
    """Exact two-sided permutation p of mean(a) - mean(b) over every split of a + b."""
    values = np.asarray(list(a) + list(b), dtype=np.float64)
    observed = abs(np.mean(a) - np.mean(b))
    count = total = 0
    for chosen in itertools.combinations(range(len(values)), len(a)):
        mask = np.zeros(len(values), dtype=bool)
        mask[list(chosen)] = True
        diff = abs(values[mask].mean() - values[~mask].mean())
        count += diff >= observed - 1e-12 * max(1.0, observed)   # ties count, rounding aside
        total += 1
    return count / total


def mcnemar(correct_a, correct_b):
    """(images only a gets right, images only b gets right, exact two-sided p)."""
    from scipy import stats
    correct_a, correct_b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a = int(np.sum(correct_a & ~correct_b))
    only_b = int(np.sum(correct_b & ~correct_a))
    if only_a + only_b == 0:
        return only_a, only_b, 1.0
    return only_a, only_b, float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def median_index(accuracies):
    """The lower middle run by accuracy (get_results.py's median run)."""
    return int(np.argsort(accuracies, kind='stable')[(len(accuracies) - 1) // 2])


# ---------------------------------------------------------------- predictions

def read_predictions(path, runs):
    """(labels, {run: predictions}) from `path` when it holds every run in `runs`, else
    None."""
    if not os.path.exists(path):
        return None
    try:
        with open_regular(path, 'r', newline='') as handle:   # a FIFO would block
            rows = list(csv.reader(handle))
        header, body = rows[0], np.array(rows[1:], dtype=np.int64)
    except (OSError, IndexError, ValueError) as err:
        raise UserError('--predictions %s cannot be read as image,label,<run>... (%s)'
                        % (path, err))
    if header[:2] != ['image', 'label'] or not set(runs) <= set(header[2:]):
        return None
    return body[:, 1], {run: body[:, header.index(run)] for run in runs}


def predictions_text(labels, predictions):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    writer.writerow(['image', 'label'] + list(predictions))
    columns = list(predictions.values())
    for i, label in enumerate(labels):
        writer.writerow([i, int(label)] + [int(column[i]) for column in columns])
    return out.getvalue()


def run_labels(logs):
    """Each log's path below the logs' common folder, without '.txt': a name per run even
    where seeds share a log name (seed1/.../cross_d110w1_exp1)."""
    paths = [os.path.abspath(log) for log in logs]
    top = os.path.commonpath([os.path.dirname(path) for path in paths])
    return [os.path.splitext(os.path.relpath(path, top))[0] for path in paths]


def score_run(log, batch_size):
    """(labels, predicted classes) of the run's last checkpoint on its test records."""
    import mxnet as mx
    from inference.checkpoint import find_checkpoint
    from inference.model import load_net, plain
    from inference.records import first_and_all, logits_of, padded, record_batches
    checkpoint = find_checkpoint(log, None)
    flags = checkpoint.flags
    size = batch_size or flags.get('test_batch_size') or 100
    batches = record_batches(flags, os.path.join(flags['data_dir'], flags['val_dataset']),
                             size)
    first, stream = first_and_all(batches)
    net = plain(load_net(checkpoint, mx.cpu()), padded(first, size))
    logits, labels = logits_of(net, stream, size, mx.cpu())
    print('scored %s: %d images' % (checkpoint.params_path, len(labels)), flush=True)
    return labels, logits.argmax(axis=1)


def final_accuracy(log):
    """The last epoch's test accuracy in the run's metrics file."""
    try:
        records = read_metrics(metrics_path(log))
    except OSError as err:
        raise UserError('%s: cannot read its metrics %s (%s)'
                        % (log, metrics_path(log), err.strerror))
    if not records:
        raise UserError('%s: no finished epoch in %s' % (log, metrics_path(log)))
    return records[-1].val_acc


# ---------------------------------------------------------------- the report

def main(argv=None):
    args = build_parser().parse_args(argv)
    logs = args.a + args.b
    if len(set(map(os.path.abspath, logs))) != len(logs):
        raise UserError('a run is named twice: give each log once')
    runs = run_labels(logs)
    found = read_predictions(args.predictions, runs)
    if found is None:
        from inference import cli
        cli.prepare_mxnet()
        cli.check_output(args.predictions, '--predictions')
        scored = [score_run(log, args.batch_size) for log in logs]
        labels = scored[0][0]
        if any(not np.array_equal(s[0], labels) for s in scored):
            raise UserError('the runs were scored on different test records')
        found = labels, {run: s[1] for run, s in zip(runs, scored)}
        write_whole_text(args.predictions, predictions_text(*found))
        print('predictions: %s' % args.predictions)
    labels, predictions = found
    named = dict(zip(logs, runs))
    print('\n'.join(report(args.a, args.b, labels,
                           {log: predictions[named[log]] for log in logs}, named)))
    return 0


def report(logs_a, logs_b, labels, predictions, names):
    """The report's lines (`predictions` and `names` by log); checks each run's predictions
    against its logged accuracy."""
    lines = []
    groups = []
    for logs in (logs_a, logs_b):
        accs = []
        for log in logs:
            acc = float(np.mean(predictions[log] == labels))
            logged = final_accuracy(log)
            if abs(acc - logged) > 0.5 / len(labels):
                raise UserError('%s: its predictions give %.4f, its log %.4f: the checkpoint '
                                'is not the run\'s last epoch' % (log, acc, logged))
            accs.append(acc)
        groups.append(accs)
        lines.append('%s: test error %s (mean %.3f%%)' % (
            ', '.join(names[log] for log in logs),
            ', '.join('%.2f%%' % (100 * (1 - a)) for a in accs), 100 * (1 - np.mean(accs))))
    errors = [100 * (1 - np.asarray(accs)) for accs in groups]
    diff = errors[0].mean() - errors[1].mean()
    lines.append('difference of mean test errors (a - b): %+.3f points' % diff)
    if min(len(e) for e in errors) > 1:
        t, df, p = welch(*errors)
        lines.append("Welch's t = %.3f (df %.2f), two-sided p = %.4f" % (t, df, p))
    lines.append('exact permutation test (%d splits), two-sided p = %.4f'
                 % (_splits(*errors), permutation_p(*errors)))
    medians = [logs[median_index(accs)] for logs, accs in zip((logs_a, logs_b), groups)]
    correct = [predictions[log] == labels for log in medians]
    only_a, only_b, p = mcnemar(*correct)
    lines.append("McNemar (exact) between the median runs %s and %s: %d images only the "
                 "first gets right, %d only the second; two-sided p = %.4g"
                 % (names[medians[0]], names[medians[1]], only_a, only_b, p))
    return lines


def _splits(a, b):
    from math import comb
    return comb(len(a) + len(b), len(a))
