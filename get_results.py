"""Summarise the training runs under a snapshot folder: statistics, result files, curves.

    python get_results.py snapshot/

Reads every log `<DIR>/<dataset>[_noaug]/<network>/<network>_d<depth>w<widen>_<exp><run>.txt`
(this port's and the 2016 code's), groups the runs of one configuration and reports the
final test accuracy and error of the complete runs as `median (mean +/- std, best)`.
Hostile folders are reported, never fatal: only regular files are read (a FIFO would
block), runs with NaN or infinite figures are listed as diverged, undecodable file names
are printed with their bytes escaped.
"""
import argparse
import csv
import io
import math
import os
import statistics
import textwrap
from dataclasses import dataclass, field
from typing import List

from common.atomic import write_whole
from common.errors import ArgumentParser, UserError, run_main
from common.text import csv_cell, encodable, markdown_cell, readable
from engine.logs import Run, parse_log

RESULT_SUFFIX = '_results.txt'
SKIPPED_FOLDERS = {'weights'}   # checkpoints, never logs

MEDIAN_RULES = {
    'run': "the median run's figures: the run at index (n-1)//2 of the runs sorted by final "
           'test accuracy (for an even count the lower middle run), its test accuracy, error '
           'and training accuracy, as the original reported',
    'average': 'each figure\'s own median: for an even count the mean of the two middle '
               "values; the training accuracy's median is over the runs' training accuracies",
}


def statistics_rules(median):
    """The rules behind every printed figure, for the header, results.md and --help."""
    return ('median (mean +/- std, best) over the complete runs, in percent; std: the '
            'population std (ddof=0), as the original; median (--median %s): %s; a run with '
            'a NaN or infinite figure is listed as diverged and left out'
            % (median, MEDIAN_RULES[median]))

EPILOG = '''\
%s.

%s.

outputs: beside the logs <config>%s (the summary line, the median run's head, one line
per epoch with training and testing loss and accuracy); in DIR: results.csv, results.md and
<dataset>_curves.png (test error and training loss against epoch, the median run of each
configuration; in either --median mode). A run with fewer validated epochs than its
--num-epochs is listed as incomplete and left out of the statistics. Only regular files are
read: FIFOs, sockets and broken links are listed as skipped.

rewriting: every number is recomputed from the logs on each call. An output whose content
is unchanged is not rewritten (its modification time keeps telling when it last changed);
--force rewrites every output.

exit status: 0 results printed, 1 no training log found, 2 bad folder.''' % (
    textwrap.fill('statistics: ' + statistics_rules('run'), 92),
    textwrap.fill('--median average: ' + MEDIAN_RULES['average'], 92), RESULT_SUFFIX)


# ---------------------------------------------------------------- finding and grouping

def find_logs(root, notes):
    """Every candidate log under root: *.txt outside weights/, not a result file.

    Only regular files: opening a FIFO would wait forever for a writer. What cannot be
    listed or is not a regular file goes into notes."""
    def unlisted(err):
        notes.append('skipped %s: cannot list it (%s)'
                     % (os.path.relpath(err.filename, root), err.strerror))
    found = []
    for folder, subfolders, files in os.walk(root, onerror=unlisted):
        subfolders[:] = sorted(d for d in subfolders if d not in SKIPPED_FOLDERS)
        for name in sorted(files):
            path = os.path.join(folder, name)
            if not name.endswith('.txt') or name.endswith(RESULT_SUFFIX):
                continue
            if os.path.isfile(path):
                found.append(path)
            else:
                notes.append('skipped %s: not a regular file (a FIFO, socket, device or '
                             'broken link)' % os.path.relpath(path, root))
    return found


@dataclass
class Summary:
    median: float
    mean: float
    std: float
    best: float

    def __str__(self):
        return '%.3f%% (%.3f +/- %.3f, %.3f)' % (self.median, self.mean, self.std, self.best)


def summarize(values, best, median=None):
    """median (mean +/- population std, best) of a non-empty list; `median` given: the
    median run's value, else the list's own median."""
    return Summary(median=statistics.median(values) if median is None else median,
                   mean=statistics.fmean(values), std=statistics.pstdev(values),
                   best=best(values))


# EpochRecord field -> its name in a message
FIGURE_NAMES = {'train_acc': 'training accuracy', 'train_loss': 'training loss',
                'val_loss': 'test loss', 'val_acc': 'test accuracy',
                'val_top5': 'top-5 test accuracy'}


def first_non_finite(run):
    """'test loss nan at epoch 3' for the first NaN or infinite figure of a run, else None."""
    for record in run.records:
        for name, label in FIGURE_NAMES.items():
            value = getattr(record, name)
            if value is not None and not math.isfinite(value):
                return '%s %s at epoch %d' % (label, value, record.epoch + 1)
    return None


@dataclass
class Configuration:
    """The runs of one log name (all but the run number) in one dataset/network folder."""
    dataset: str
    network: str
    config: str
    median_rule: str = 'run'      # a key of MEDIAN_RULES
    runs: List[Run] = field(default_factory=list)

    @property
    def counted(self):
        """The runs the statistics count (complete, every figure finite), by final test
        accuracy; ties by run number, so the median run does not depend on file order."""
        counted = [run for run in self.runs if run.complete and not first_non_finite(run)]
        return sorted(counted, key=lambda run: (run.final.val_acc, run.run_number or 0, run.path))

    @property
    def incomplete(self):
        return [run for run in self.runs if not run.complete and not first_non_finite(run)]

    @property
    def diverged(self):
        return [run for run in self.runs if first_non_finite(run)]

    @property
    def median_run(self):
        ranked = self.counted
        return ranked[(len(ranked) - 1) // 2] if ranked else None

    def _summary(self, figure, best):
        """Summary of figure(run) over the counted runs (None: no counted run)."""
        ranked = self.counted
        if not ranked:
            return None
        median = figure(self.median_run) if self.median_rule == 'run' else None
        return summarize([figure(run) for run in ranked], best, median)

    @property
    def test_acc(self):
        return self._summary(lambda run: 100.0 * run.final.val_acc, max)

    @property
    def test_err(self):
        return self._summary(lambda run: 100.0 - 100.0 * run.final.val_acc, min)

    @property
    def train_acc(self):
        """The training accuracy (median by the median rule, mean, std and best over the
        runs that logged one); None when the median run has none."""
        median_run = self.median_run
        values = [100.0 * run.final.train_acc for run in self.counted
                  if run.final.train_acc is not None]
        if median_run is None or median_run.final.train_acc is None or not values:
            return None
        median = 100.0 * median_run.final.train_acc if self.median_rule == 'run' else None
        return summarize(values, max, median)

    @property
    def sort_key(self):
        run = self.runs[0]
        return (self.dataset, self.network, _or_inf(run.depth), _or_inf(run.widen_factor),
                self.config)


def _or_inf(value):
    return math.inf if value is None else value


def group_runs(runs, median_rule='run'):
    groups = {}
    for run in runs:
        key = (run.dataset, run.network, run.config)
        groups.setdefault(key, Configuration(*key, median_rule=median_rule)).runs.append(run)
    return sorted(groups.values(), key=lambda group: group.sort_key)


@dataclass
class Report:
    root: str
    configurations: List[Configuration]
    notes: List[str]
    median_rule: str = 'run'


def check_root(root):
    if not os.path.exists(root):
        raise UserError('log folder %s does not exist; pass the folder that holds '
                        '<dataset>/<network>/*.txt (train_model.py --log-dir)' % root)
    if not os.path.isdir(root):
        raise UserError('%s is not a folder; pass the folder that holds '
                        '<dataset>/<network>/*.txt' % root)


def collect(root, median_rule='run'):
    """Parse every log under root and group the runs; notes say what was skipped and why."""
    check_root(root)
    runs, notes = [], []
    for path in find_logs(root, notes):
        name = os.path.relpath(path, root)
        try:
            run = parse_log(path)
        except OSError as err:
            notes.append('skipped %s: cannot read it (%s)' % (name, err.strerror))
            continue
        except UserError as err:   # swapped for a FIFO since it was listed
            notes.append('skipped %s: %s' % (name, err))
            continue
        if not run.is_log:
            notes.append('skipped %s: not a training log' % name)
            continue
        notes += run_notes(name, run)
        runs.append(run)
    configurations = group_runs(runs, median_rule)
    for group in configurations:
        counts = sorted({run.num_epochs for run in group.counted if run.epochs_known})
        if len(counts) > 1:
            notes.append('%s/%s/%s: complete runs of different lengths (%s epochs) are '
                         'mixed in its statistics' % (group.dataset, group.network,
                                                      group.config,
                                                      ', '.join(map(str, counts))))
    return Report(root=root, configurations=configurations, notes=notes,
                  median_rule=median_rule)


def run_notes(name, run):
    """What the report should say about one run: skipped lines, nodes, why not counted."""
    notes = []
    if run.unparseable_lines:
        notes.append('%s: %d unparseable line%s skipped (first at line %d)'
                     % (name, run.unparseable_lines,
                        's' if run.unparseable_lines > 1 else '', run.first_unparseable))
    if len(run.nodes) > 1:
        notes.append('%s: lines of nodes %s, used node %d'
                     % (name, ', '.join(map(str, run.nodes)), run.nodes[0]))
    diverged = first_non_finite(run)
    if diverged:
        notes.append('%s: diverged (%s), left out of the statistics' % (name, diverged))
    elif not run.complete:
        notes.append('%s: incomplete (%d of %s epochs), left out of the statistics'
                     % (name, run.epochs_done,
                        run.num_epochs if run.epochs_known else 'unknown'))
    elif not run.epochs_known:
        notes.append('%s: --num-epochs not found in its head, taken as complete after '
                     '%d epochs' % (name, run.epochs_done))
    return notes


# ---------------------------------------------------------------- text outputs

def _fmt(value, pattern):
    return 'n/a' if value is None else pattern % value


def result_file_text(group):
    """The original's layout: summary line, the median run's head, one line per epoch."""
    run = group.median_run
    lines = [summary_line(group), '']
    lines += run.head
    lines.append('')
    for record in run.records:
        line = 'Epoch[%03d] training loss: %s, acc: %s; testing loss: %s, acc: %s' % (
            record.epoch + 1, _fmt(record.train_loss, '%8.6f'),
            _fmt(None if record.train_acc is None else 100.0 * record.train_acc, '%6.3f'),
            _fmt(record.val_loss, '%8.6f'), _fmt(100.0 * record.val_acc, '%6.3f'))
        if record.val_top5 is not None:
            line += ', top5: %6.3f' % (100.0 * record.val_top5)
        lines.append(line)
    return '\n'.join(lines) + '\n'


def summary_line(group):
    return '%s, runs: %d, testing: %s, training: %s, median run: %s' % (
        group.config, len(group.counted), group.test_acc, _fmt(group.train_acc, '%s'),
        os.path.basename(group.median_run.path))


CSV_COLUMNS = ['dataset', 'network', 'config', 'depth', 'widen_factor', 'runs',
               'incomplete_runs', 'diverged_runs', 'epochs',
               'test_acc_median', 'test_acc_mean', 'test_acc_std', 'test_acc_best',
               'test_err_median', 'test_err_mean', 'test_err_std', 'test_err_best',
               'train_acc_median_run', 'train_acc_mean', 'train_acc_std', 'train_acc_best',
               'median_run']


def csv_text(report):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\n')
    writer.writerow(CSV_COLUMNS)
    for group in report.configurations:
        first = group.runs[0]
        median_run = group.median_run
        row = [csv_cell(group.dataset), csv_cell(group.network), csv_cell(group.config),
               _fmt(first.depth, '%d'),
               _fmt(first.widen_factor, '%d'), len(group.counted), len(group.incomplete),
               len(group.diverged), median_run.epochs_done if median_run else '']
        for summary in (group.test_acc, group.test_err, group.train_acc):
            row += (['%.3f' % v for v in (summary.median, summary.mean, summary.std,
                                           summary.best)] if summary else [''] * 4)
        row.append(csv_cell(os.path.relpath(median_run.path, report.root)) if median_run
                   else '')
        writer.writerow(row)
    return out.getvalue()


def markdown_text(report):
    lines = ['Final accuracy and error in percent: ' + statistics_rules(report.median_rule)
             + '.', '',
             '| dataset | network | configuration | runs | incomplete | diverged | test error '
             '| test accuracy | training accuracy |',
             '|---|---|---|---:|---:|---:|---|---|---|']
    for group in report.configurations:
        lines.append('| %s | %s | %s | %d | %d | %d | %s | %s | %s |' % (
            markdown_cell(group.dataset), markdown_cell(group.network),
            markdown_cell(group.config), len(group.counted),
            len(group.incomplete), len(group.diverged), _fmt(group.test_err, '%s'),
            _fmt(group.test_acc, '%s'), _fmt(group.train_acc, '%s')))
    return '\n'.join(lines) + '\n'


def table_text(report):
    """The per-dataset tables printed on the terminal."""
    lines = []
    datasets = sorted({group.dataset for group in report.configurations})
    for dataset in datasets:
        groups = [g for g in report.configurations if g.dataset == dataset]
        rows = [('configuration', 'runs', 'test error', 'test accuracy', 'training accuracy')]
        rows += [(readable(group.config), str(len(group.counted)), _fmt(group.test_err, '%s'),
                  _fmt(group.test_acc, '%s'), _fmt(group.train_acc, '%s'))
                 for group in groups]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines += ['', readable(dataset)]
        for row in rows:
            cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1])]
            cells += [cell.ljust(width) for cell, width in zip(row[2:], widths[2:])]
            lines.append('  ' + '  '.join(cells).rstrip())
    return '\n'.join(lines)


# ---------------------------------------------------------------- curves

def curves_figure(dataset, groups):
    """Test error (all epochs, and the last ones enlarged) and training loss against epoch:
    every finished run of a configuration as a thin line, its median run thick."""
    from matplotlib.figure import Figure   # no pyplot: no global state, Agg via the canvas
    from matplotlib.ticker import MaxNLocator
    figure = Figure(figsize=(15, 4.5), dpi=100)
    error_axes, zoom_axes, loss_axes = figure.subplots(1, 3)
    all_losses, last_epoch = [], 0
    for index, group in enumerate(groups):
        color = 'C%d' % (index % 10)
        runs = group.counted or [group.median_run]
        for run in runs:
            epochs, errors, losses = _curves(run)
            median = run is group.median_run
            style = dict(color=color, linewidth=2.0 if median else 0.8,
                         alpha=1.0 if median else 0.5)
            label = readable('%s (median of %d run%s; thin: each run)') % (
                readable(group.config), len(runs), 's' if len(runs) > 1 else '') \
                if median else None
            for axes, values in ((error_axes, errors), (zoom_axes, errors),
                                 (loss_axes, losses)):
                axes.plot(epochs, values, label=label, **style)
            all_losses += [loss for loss in losses if not math.isnan(loss)]
            last_epoch = max([last_epoch] + epochs)
    if all_losses and min(all_losses) > 0:
        loss_axes.set_yscale('log')   # the loss spans decades once the rate drops
    _zoom_on_last_epochs(zoom_axes, last_epoch)
    dataset = readable(dataset)
    error_axes.set(title='%s: test error' % dataset, xlabel='epoch', ylabel='test error (%)')
    zoom_axes.set(title='%s: test error, last epochs' % dataset, xlabel='epoch',
                  ylabel='test error (%)')
    loss_axes.set(title='%s: training loss' % dataset, xlabel='epoch',
                  ylabel='training cross-entropy')
    for axes in (error_axes, zoom_axes, loss_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))   # epochs are whole
        axes.grid(True, alpha=0.3)
    error_axes.legend(fontsize='small')
    figure.tight_layout()
    return figure


def _curves(run):
    """(epochs from 1, test errors in %, training losses) of a run."""
    epochs = [record.epoch + 1 for record in run.records]
    errors = [100.0 - 100.0 * record.val_acc for record in run.records]
    losses = [math.nan if record.train_loss is None else record.train_loss
              for record in run.records]
    return epochs, errors, losses


def _zoom_on_last_epochs(axes, last_epoch):
    """Show the last quarter of the epochs (at least 4), the y range fitted to them."""
    first = max(1, last_epoch - max(4, last_epoch // 4) + 1)
    shown = [y for line in axes.get_lines() for x, y in zip(line.get_xdata(), line.get_ydata())
             if x >= first and not math.isnan(y)]
    axes.set_xlim(first - 0.2, last_epoch + 0.2)
    if shown:
        pad = max(0.05, 0.1 * (max(shown) - min(shown)))
        axes.set_ylim(min(shown) - pad, max(shown) + pad)


def png_bytes(figure):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(figure)
    out = io.BytesIO()
    # no Software entry: the same curves give the same bytes across matplotlib versions
    figure.savefig(out, format='png', metadata={'Software': None})
    return out.getvalue()


# ---------------------------------------------------------------- writing

def write_output(path, data, force):
    """Write data (bytes) unless the file already holds exactly that; 'written'/'unchanged'."""
    # a link in its place is replaced (write_whole renames over it), never compared or
    # written through
    if not force and os.path.isfile(path) and not os.path.islink(path):
        with open(path, 'rb') as existing:
            if existing.read() == data:
                return 'unchanged'
    def write(temporary):
        with open(temporary, 'wb') as out:
            out.write(data)
    write_whole(path, write)
    return 'written'


def write_outputs(report, force):
    """All files; returns {'written': [...], 'unchanged': [...]} of paths relative to root."""
    outcome = {'written': [], 'unchanged': []}

    def put(path, data):
        outcome[write_output(path, data, force)].append(os.path.relpath(path, report.root))

    reported = [group for group in report.configurations if group.median_run]
    for group in reported:
        folder = os.path.dirname(group.runs[0].path)
        put(os.path.join(folder, group.config + RESULT_SUFFIX),
            encodable(result_file_text(group)).encode('utf-8'))
    put(os.path.join(report.root, 'results.csv'), encodable(csv_text(report)).encode('utf-8'))
    put(os.path.join(report.root, 'results.md'), encodable(markdown_text(report)).encode('utf-8'))
    for dataset in sorted({group.dataset for group in reported}):
        groups = [group for group in reported if group.dataset == dataset]
        put(os.path.join(report.root, '%s_curves.png' % dataset),
            png_bytes(curves_figure(dataset, groups)))
    return outcome


# ---------------------------------------------------------------- command line

def parse_args(argv):
    parser = ArgumentParser(
        description='Summarise the training runs under DIR: final test accuracy and error\n'
                    'per configuration, result files, a CSV, a markdown table and curves.',
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('folder', nargs='?', metavar='DIR',
                        help='the snapshot folder (train_model.py --log-dir); '
                             'default ./snapshot/')
    parser.add_argument('--log-dir', help='the same as DIR (the original\'s flag)')
    parser.add_argument('--median', choices=sorted(MEDIAN_RULES), default='run',
                        help="'run' (default, the original's): the median run's figures; "
                             "'average': each figure's own median, the mean of the two "
                             'middle values for an even count')
    parser.add_argument('-f', '--force', action='store_true',
                        help='rewrite every output, also those whose content is unchanged')
    args = parser.parse_args(argv)
    if args.folder and args.log_dir and \
            os.path.normpath(args.folder) != os.path.normpath(args.log_dir):
        raise UserError('DIR %s and --log-dir %s differ; give one of them'
                        % (args.folder, args.log_dir))
    args.folder = args.folder or args.log_dir or './snapshot/'
    return args


def say(text):
    """print, with undecodable file names escaped (never a UnicodeEncodeError)."""
    print(encodable(text))


def main(argv=None):
    args = parse_args(argv)
    report = collect(args.folder, args.median)
    if not report.configurations:
        for note in report.notes:
            say('note: ' + readable(note))
        say('no training logs under %s (expected %s)' % (
            args.folder, os.path.join(args.folder, '<dataset>', '<network>',
                                      '<network>_d<depth>w<widen>_<exp><run>.txt')))
        return 1
    runs = sum(len(group.runs) for group in report.configurations)
    say('Results under %s: %d configuration%s, %d run%s' % (
        args.folder, len(report.configurations), 's' if len(report.configurations) > 1 else '',
        runs, 's' if runs > 1 else ''))
    say(textwrap.fill('final test error and accuracy: ' + statistics_rules(args.median), 92))
    say(table_text(report))
    if report.notes:
        say('')
        for note in report.notes:
            say('note: ' + readable(note))
    outcome = write_outputs(report, args.force)
    say('')
    if outcome['written']:
        say('wrote: ' + ', '.join(map(readable, outcome['written'])))
    if outcome['unchanged']:
        say('unchanged, kept (--force rewrites): '
            + ', '.join(map(readable, outcome['unchanged'])))
    return 0


if __name__ == '__main__':
    run_main(main, mxnet=False)
