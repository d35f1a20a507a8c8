"""The lesion study of a trained resnet or cross network (tools/lesion.py).

As Veit, Wilber and Belongie (2016): blocks are deleted at test time (network/lesion.py
says what a deleted block computes and which blocks can be deleted), first each deletable
block alone, then k of them at random for each k asked (--draws distinct subsets, drawn
with a generator seeded by (--seed, k); every subset when there are no more than --draws).
The weights and BatchNorm statistics stay as trained. Each lesioned network is scored on
the test records: its test error against the number of deleted blocks.

Writes to --out-dir: lesion.csv (one row per lesioned network: kind none/single/random, blocks
deleted, draw, the blocks, test error), lesion_summary.csv (per number deleted: the
networks scored, mean, population std, min and max of the test error; k = 1 over every
single deletion) and lesion.png (error per deleted block; error against blocks deleted).
"""
import itertools
import math
import os
import random
import re
import sys
import warnings

import numpy as np

from common.atomic import write_whole, write_whole_csv
from common.errors import ArgumentParser, UserError, add_old_spelling
from inference import cli


def build_parser():
    parser = ArgumentParser(
        prog='tools/lesion.py',
        description='Lesion study of a trained resnet or cross checkpoint: delete blocks at '
                    'test time, one at a time and k at random, and score each lesioned network '
                    'on the test records.')
    cli.add_checkpoint_args(parser)
    group = parser.add_argument_group('lesions')
    group.add_argument('--ks', default=None, metavar='K,K-K',
                       help='numbers of blocks to delete at random, e.g. 2-10 or 2,4,8; '
                            'default every one from 2 to all deletable blocks (1: the '
                            'single deletions, always run)')
    group.add_argument('--draws', type=int, default=3,
                       help='random subsets per number deleted; default %(default)s')
    group.add_argument('--seed', type=int, default=1,
                       help='seed of the random subsets; default %(default)s')
    group = parser.add_argument_group('data and output')
    group.add_argument('--data-dir', default=None, help="record folder; default the run's")
    group.add_argument('--val-dataset', default=None,
                       help="record file in --data-dir; default the run's (test.rec)")
    group.add_argument('--images', type=int, default=None,
                       help='score only the first N test images (a quick look); default all')
    group.add_argument('--batch-size', type=int, default=None,
                       help="images per batch; default the run's test batch size")
    group.add_argument('--out-dir', default=None,
                       help='output folder; default <weights prefix>-<epoch>.lesion')
    add_old_spelling(group, '--out', dest='out_dir')
    group.add_argument('--compare', nargs='+', default=None, metavar='DIR',
                       help='instead of a study: draw the studies in these output folders '
                            '(their lesion_summary.csv) in one picture, lesion_compare.png in '
                            '--out-dir, against blocks deleted and against the fraction of '
                            'the deletable blocks')
    return parser


def parse_ks(text, count):
    """The numbers of blocks `--ks` names (sorted, each in 1..count); None: 2..count."""
    if text is None:
        return list(range(2, count + 1))
    ks = set()
    for item in text.split(','):
        match = re.fullmatch(r'\s*(\d+)(?:-(\d+))?\s*', item)
        if not match:
            raise UserError('--ks %s: give numbers and ranges, e.g. 2-10 or 2,4,8' % text)
        ks.update(range(int(match.group(1)), int(match.group(2) or match.group(1)) + 1))
    if not ks or min(ks) < 1 or max(ks) > count:
        raise UserError('--ks %s: this network has %d deletable blocks; ask for 1 to %d'
                        % (text, count, count))
    return sorted(ks)


def random_subsets(names, k, draws, seed):
    """`draws` distinct subsets of `k` of `names` (each in network order), or all of them
    when there are no more; drawn by a generator seeded by (seed, k) alone, so that a k
    gets the same subsets whichever other ks are asked for."""
    if math.comb(len(names), k) <= draws:
        return list(itertools.combinations(names, k))
    rng = random.Random('%d:%d' % (seed, k))
    order = {name: i for i, name in enumerate(names)}
    found = []
    while len(found) < draws:
        subset = tuple(sorted(rng.sample(names, k), key=order.get))
        if subset not in found:
            found.append(subset)
    return found


def lesion_plan(names, ks, draws, seed):
    """[(kind, draw, blocks)]: the whole network, each block alone, then the random ones."""
    plan = [('none', '', ())] + [('single', '', (name,)) for name in names]
    for k in ks:
        if k > 1:
            plan += [('random', d, subset)
                     for d, subset in enumerate(random_subsets(names, k, draws, seed), 1)]
    return plan


def error_rate(net, batches, batch_size, ctx):
    from inference.records import logits_of
    logits, labels = logits_of(net, batches, batch_size, ctx)
    return float((logits.argmax(axis=1) != labels).mean())


def run_plan(net, plan, score):
    """[(kind, number deleted, draw, blocks, test error)]; `score()` scores the network as
    it stands. A subset drawn twice (as a single deletion and at random) is scored once."""
    from network import lesion
    errors, rows = {}, []
    with warnings.catch_warnings():   # the deleted blocks' parameters are unused, on purpose
        warnings.filterwarnings('ignore', 'Parameter .* is not used by any computation')
        for i, (kind, draw, blocks) in enumerate(plan, 1):
            if blocks not in errors:
                lesion.set_deleted(net, blocks)
                errors[blocks] = score()
            rows.append((kind, len(blocks), draw, blocks, errors[blocks]))
            print('  %d/%d %s: test error %.2f%%' % (i, len(plan), ' '.join(blocks) or
                                                     'no block deleted',
                                                     100 * errors[blocks]), file=sys.stderr)
        lesion.set_deleted(net, [])
    return rows


def summary(rows, count):
    """[(k, fraction of the deletable blocks, networks, mean, std, min, max)] per k."""
    by_k = {}
    for _, k, _, blocks, error in rows:
        by_k.setdefault(k, {})[blocks] = error   # a subset counts once
    table = []
    for k in sorted(by_k):
        errors = np.array(list(by_k[k].values()))
        table.append((k, k / count, len(errors), errors.mean(), errors.std(), errors.min(),
                      errors.max()))
    return table


def write_tables(rows, table, out):
    write_whole_csv(os.path.join(out, 'lesion.csv'),
                    ('kind', 'deleted', 'draw', 'blocks', 'test_error'),
                    [(kind, k, draw, ' '.join(blocks), '%.6f' % error)
                     for kind, k, draw, blocks, error in rows])
    write_whole_csv(os.path.join(out, 'lesion_summary.csv'), SUMMARY_COLUMNS,
                    [(k, '%.4f' % fraction, n) + tuple('%.6f' % v for v in values)
                     for k, fraction, n, *values in table])


def lesion_figure(title, rows, table, skipped):
    """Left: the test error with each block deleted alone. Right: the test error against
    the number of blocks deleted (each network a dot, the mean with its std)."""
    from matplotlib.figure import Figure
    figure = Figure(figsize=(11, 4.2), dpi=100)
    left, right = figure.subplots(1, 2)
    baseline = 100 * next(error for kind, _, _, _, error in rows if kind == 'none')
    singles = [(blocks[0], 100 * error) for kind, _, _, blocks, error in rows
               if kind == 'single']
    left.plot(range(len(singles)), [e for _, e in singles], 'o-', markersize=4)
    left.axhline(baseline, color='black', linestyle='--', linewidth=1, label='no deletion')
    left.set_xticks(range(len(singles)), [name for name, _ in singles], rotation=90,
                    fontsize='x-small' if len(singles) > 20 else 'small')
    left.set(xlabel='deleted block' + ('  (not deletable: %s)' % ', '.join(skipped)
                                       if skipped else ''),
             ylabel='test error (%)', title='%s: one block deleted' % title)
    right.scatter([k for _, k, _, _, _ in rows], [100 * e for *_, e in rows], s=10,
                  alpha=0.5, label='one lesioned network')
    ks = [k for k, *_ in table]
    mean, std = (np.array([100 * row[i] for row in table]) for i in (3, 4))
    right.plot(ks, mean, color='tab:red', label='mean')
    right.fill_between(ks, mean - std, mean + std, color='tab:red', alpha=0.2,
                       label='mean +/- std')
    right.set(xlabel='blocks deleted', ylabel='test error (%)',
              title='%s: k blocks deleted at random' % title)
    for axes in (left, right):
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize='small')
    figure.tight_layout()
    return figure


def save_figure(figure, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(figure)
    write_whole(path, lambda temp: figure.savefig(temp, format='png'))


def out_folder(args, checkpoint):
    out = args.out_dir or '%s-%04d.lesion' % (checkpoint.prefix, checkpoint.epoch)
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as err:
        raise UserError('cannot make the output folder %s (%s)' % (out, err.strerror))
    if not os.access(out, os.W_OK | os.X_OK):
        raise UserError('cannot write into the output folder %s' % out)
    return out


def lesion_names(flags):
    """(deletable blocks, blocks that cannot be deleted) of the run's network."""
    import network
    from inference.model import build_net
    from network import lesion
    if network.resolve_name(flags['network']) not in ('resnet', 'cross'):
        raise UserError('the lesion study deletes blocks of resnet and cross networks; this '
                        'run trained %s' % flags['network'])
    net = build_net(flags)
    return lesion.deletable_blocks(net), lesion.skipped_blocks(net)


def test_batches(flags, rec_path, batch_size, limit):
    """The test batches (data, label), in memory, the first `limit` images if given."""
    from inference.records import record_batches
    batches, seen = [], 0
    for data, label in record_batches(flags, rec_path, batch_size):
        if limit is not None and seen + data.shape[0] > limit:
            data, label = data[:limit - seen], label[:limit - seen]
        if data.shape[0]:
            batches.append((data, label))
        seen += data.shape[0]
        if limit is not None and seen >= limit:
            break
    if not batches:
        raise UserError('no test images in %s' % rec_path)
    return batches, seen


SUMMARY_COLUMNS = ('deleted', 'fraction', 'networks', 'mean_error', 'std_error',
                   'min_error', 'max_error')


def read_summary(folder):
    """The rows of `folder`/lesion_summary.csv as tuples of numbers (one line if it is not
    such a table)."""
    import csv
    from common.reading import open_regular
    path = os.path.join(folder, 'lesion_summary.csv')
    try:
        with open_regular(path, 'rb', max_bytes=1 << 20, what='the lesion summary') as handle:
            reader = csv.reader(handle.read().decode('utf-8').splitlines())
            header = next(reader, None)
            rows = [(int(row[0]),) + tuple(float(v) for v in row[1:]) for row in reader]
    except OSError as err:
        raise UserError('cannot read %s (%s)' % (path, err.strerror))
    except (ValueError, IndexError, UnicodeDecodeError) as err:
        raise UserError('%s is not a lesion summary of tools/lesion.py (%s)' % (path, err))
    if tuple(header or ()) != SUMMARY_COLUMNS or not rows:
        raise UserError('%s is not a lesion summary of tools/lesion.py' % path)
    return rows


def compare_figure(studies):
    """The mean test error (+/- std) of each study against blocks deleted (left) and
    against the fraction of its deletable blocks (right)."""
    from matplotlib.figure import Figure
    figure = Figure(figsize=(11, 4.2), dpi=100)
    axes = figure.subplots(1, 2)
    for label, rows in studies.items():
        mean, std = (np.array([100 * row[i] for row in rows]) for i in (3, 4))
        for side, column in zip(axes, (0, 1)):
            x = [row[column] for row in rows]
            line, = side.plot(x, mean, 'o-', markersize=3, label=label)
            side.fill_between(x, mean - std, mean + std, color=line.get_color(), alpha=0.15)
    axes[0].set(xlabel='blocks deleted', ylabel='test error (%)',
                title='mean test error (+/- std) of the lesioned networks')
    axes[1].set(xlabel='fraction of the deletable blocks deleted', ylabel='test error (%)',
                title='the same, against the fraction deleted')
    for side in axes:
        side.grid(True, alpha=0.3)
        side.legend(fontsize='small')
    figure.tight_layout()
    return figure


def compare_main(args):
    labels = [os.path.basename(os.path.normpath(folder)) for folder in args.compare]
    if len(set(labels)) < len(labels):   # same-named folders: label them by their paths
        labels = list(args.compare)
    studies = {label: read_summary(folder) for label, folder in zip(labels, args.compare)}
    out = args.out_dir or '.'
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as err:
        raise UserError('cannot make the output folder %s (%s)' % (out, err.strerror))
    for label, rows in studies.items():
        print('%s: %s' % (label, ', '.join('%d deleted %.2f%%' % (row[0], 100 * row[3])
                                           for row in rows)))
    path = os.path.join(out, 'lesion_compare.png')
    save_figure(compare_figure(studies), path)
    print('wrote %s' % path)
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.compare:
        named = [flag for flag, value in (('a run', args.run), ('--checkpoint', args.checkpoint),
                                          ('--pretrained', args.pretrained)) if value]
        if named:
            raise UserError('--compare draws finished studies: leave out %s' % ', '.join(named))
        return compare_main(args)
    if args.draws < 1 or (args.images is not None and args.images < 1):
        raise UserError('--draws and --images must be positive')
    cli.prepare_mxnet()
    checkpoint = cli.checkpoint_of(args)
    flags = checkpoint.flags
    names, skipped = lesion_names(flags)
    ks = parse_ks(args.ks, len(names))
    out = out_folder(args, checkpoint)
    batch_size = cli.batch_size_of(args, checkpoint)
    rec_path = os.path.join(args.data_dir or flags['data_dir'],
                            args.val_dataset or flags['val_dataset'])
    batches, count = test_batches(flags, rec_path, batch_size, args.images)
    plan = lesion_plan(names, ks, args.draws, args.seed)
    print('checkpoint %s (%s, depth %d): %d blocks can be deleted (%s), %d cannot (%s); '
          '%d lesioned networks on %d test images of %s'
          % (checkpoint.params_path, flags['network'], flags['depth'], len(names),
             ' '.join(names), len(skipped), ' '.join(skipped) or '-', len(plan), count,
             rec_path), flush=True)
    from inference.model import load_net, plain
    from inference.records import padded
    import mxnet as mx
    ctx = mx.cpu()
    net = plain(load_net(checkpoint, ctx), padded(batches[0][0], batch_size))
    rows = run_plan(net, plan, lambda: error_rate(net, batches, batch_size, ctx))
    table = summary(rows, len(names))
    print('%8s %9s %9s %9s %9s' % ('deleted', 'networks', 'mean', 'std', 'max'))
    for k, _, n, mean, std, _, high in table:
        print('%8d %9d %8.2f%% %8.2f%% %8.2f%%' % (k, n, 100 * mean, 100 * std, 100 * high))
    write_tables(rows, table, out)
    save_figure(lesion_figure(checkpoint.name, rows, table, skipped),
                os.path.join(out, 'lesion.png'))
    print('wrote lesion.csv, lesion_summary.csv and lesion.png to %s' % out)
    return 0
