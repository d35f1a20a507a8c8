"""The ensemble view of deep fusion: component accuracies and path-length distributions.

    # paths input -> output of several networks at the same --depth (no checkpoint needed)
    python tools/components.py --network resnet cross half --depth 26 --out-dir view/

    # a trained checkpoint: its path lengths, and for fuse3 / fuse6 / ensemble every
    # component network on the test records; the flags come from the run's log ...
    python tools/components.py --params W-0010.params --log logs/.../fuse3_d20w1_exp1.log
    # ... or are given
    python tools/components.py --params W-0010.params --network fuse3 --depth 20 \\
        --dataset fashion-mnist --data-dir data/fashion-mnist

A component takes the left or the right path in every block (group) of a skip network
(fuse3, fuse6) or of the ensemble, with the trained weights. The ensemble keeps each
component's own BatchNorm statistics; a skip network's describe the fused sum, so each
component's statistics are re-estimated on --bn-batches training batches (the output says
how many). Reported: each component's depth (convolutions on its path, stem included,
classifier not) and test accuracy, N_e (the averaged softmax of the components) and N_f
(the whole network; for the ensemble the average of its 8 outputs, as training scores it),
and N_e without each component (leave-one-out). For fuse3 / fuse6 also the whole network
with one path of a block removed (inference/contribution.py defines it), and with
--bn-noise the components re-estimated on several numbers of training batches, --bn-draws
draws each (draw d reads the training records in the shuffle and augmentation of seed
d - 1; draw 1 is the batches of the main table), so the re-estimation's noise is known.

Path lengths are counted on the network's symbol graph: the number of paths input ->
output of each depth (convolutions on the path), exact integers, with mean and median.

Writes to --out-dir: paths.csv and paths.png (histograms side by side) always; with
--params components.csv, components.png (accuracy against depth, each point named by its
path) and leave_one_out.csv; for fuse3 / fuse6 path_removal.csv; with --bn-noise
bn_noise.csv (every draw) and bn_noise_summary.csv (mean and population std per setting).
"""
import os
import sys
from itertools import islice

from common.atomic import write_whole, write_whole_csv
from common.errors import ArgumentParser, UserError, add_old_spelling
from common.reading import open_regular
from engine.flags import check_network_size, given
from engine.logs import HEAD_LIMIT, parse_namespace
from data.datasets import DATASETS, dataset_names

SKIP_OR_ENSEMBLE = ('fuse3', 'fuse6', 'ensemble')


def parse(argv=None):
    parser = ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--params', help='a checkpoint (<prefix>-<epoch>.params) to evaluate')
    parser.add_argument('--log', help="the run's log: its 'start with arguments' line "
                                      'gives the network, data set and data flags')
    parser.add_argument('--network', nargs='+', help='network name(s); several for paths')
    parser.add_argument('--depth', type=int, nargs='+',
                        help='depth(s): one for every network or one each; default 62')
    parser.add_argument('--widen-factor', type=int, help='default 1')
    parser.add_argument('--dataset', choices=dataset_names(), help='default cifar10')
    parser.add_argument('--num-classes', type=int, help="default: the data set's")
    parser.add_argument('--data-dir', help='folder with the records; default data/<dataset>')
    parser.add_argument('--bn-batches', type=int, default=20,
                        help='training batches that re-estimate a fused component\'s '
                             'BatchNorm statistics; default %(default)s')
    parser.add_argument('--bn-noise', nargs='?', const='20,100,all', metavar='N,N,all',
                        help='fuse3 / fuse6: re-estimate the components on these numbers of '
                             'training batches (all: one epoch), --bn-draws times each; '
                             'alone: %(const)s')
    parser.add_argument('--bn-draws', type=int, default=3,
                        help='draws per --bn-noise setting; default %(default)s')
    parser.add_argument('--batch-size', type=int, default=128,
                        help='images per batch (test and re-estimation); default %(default)s')
    parser.add_argument('--out-dir', default='ensemble_view',
                        help='output folder; default %(default)s')
    add_old_spelling(parser, '--out', dest='out_dir')
    args = parser.parse_args(argv)
    if args.bn_batches < 1 or args.batch_size < 1 or args.bn_draws < 1:
        raise UserError('--bn-batches, --bn-draws and --batch-size must be positive')
    return args


def _log_arguments(path):
    """The fields of a log's 'start with arguments Namespace(...)' line."""
    try:   # its head only: a log of one endless line must not be read whole
        with open_regular(path, what='the log') as stream:
            head = stream.read(HEAD_LIMIT).decode('utf-8', 'replace').splitlines()[:20]
    except OSError as err:
        raise UserError('cannot read the log %s: %s' % (path, err.strerror))
    line = next((h for h in head if 'start with arguments' in h), None)
    if line is None:
        raise UserError("%s has no 'start with arguments' line: not a training log" % path)
    return parse_namespace(line)


def configurations(args):
    """[(network, depth, widen factor)] and the data flags, from the flags and the log."""
    logged = _log_arguments(args.log) if args.log else {}
    names = args.network or ([logged['network']] if 'network' in logged else None)
    if not names:
        raise UserError('say which network: --network NAME, or --log of a training run')
    depths = args.depth or [logged.get('depth', 62)]
    if len(depths) not in (1, len(names)):
        raise UserError('give one --depth for every network or one each (%d networks, %d '
                        'depths)' % (len(names), len(depths)))
    if args.params and len(names) > 1:
        raise UserError('--params is a checkpoint of one network; %d were named' % len(names))
    widen = given(args.widen_factor, logged.get('widen_factor') or 1)
    configs = [(name, depths[0] if len(depths) == 1 else depths[i], widen)
               for i, name in enumerate(names)]
    dataset = args.dataset or logged.get('dataset') or 'cifar10'
    if dataset not in DATASETS:
        raise UserError('unknown data set %r in %s' % (dataset, args.log))
    data = dict(dataset=dataset,
                num_classes=given(args.num_classes, logged.get('num_classes')
                                  or DATASETS[dataset]['num_classes']),
                data_dir=args.data_dir or logged.get('data_dir')
                or os.path.join('data', dataset),
                aug_type=logged.get('aug_type'), data_shape=logged.get('data_shape'),
                train_rec=logged.get('train_dataset'), val_rec=logged.get('val_dataset'))
    return configs, data


def build(name, depth, widen, num_classes):
    import network
    try:
        if not network.SPECS[network.resolve_name(name)].input_shape:
            check_network_size(depth, widen, num_classes)   # what train_model.py refuses
        return network.get_net(name, num_classes=num_classes, depth=depth,
                               widen_factor=widen)
    except ValueError as err:
        raise UserError(str(err))


# ---------------------------------------------------------------- paths

def path_tables(configs, num_classes):
    """{label: {depth: paths}} for each configuration, in order."""
    from network.paths import path_depths
    tables = {}
    for name, depth, widen in configs:
        print('counting paths of %s ...' % label_of(name, depth, widen), file=sys.stderr)
        tables[label_of(name, depth, widen)] = path_depths(build(name, depth, widen,
                                                                 num_classes))
    return tables


def label_of(name, depth, widen):
    import network
    if network.resolve_name(name) in network.IMAGENET_NETS:
        return network.resolve_name(name)
    return '%s_d%dw%d' % (network.resolve_name(name), depth, widen)


def report_paths(tables, out):
    from network.paths import summarize
    print('%-20s %22s %8s %8s' % ('network', 'paths', 'mean', 'median'))
    rows, summary = [], []
    for label, depths in tables.items():
        total, mean, median = summarize(depths)
        print('%-20s %22d %8.2f %8d' % (label, total, mean, median))
        summary.append((label, total, mean, median))
        rows += [(label, depth, count) for depth, count in depths.items()]
    write_csv(os.path.join(out, 'paths.csv'), ('network', 'path_depth', 'paths'), rows)
    write_csv(os.path.join(out, 'paths_summary.csv'),
              ('network', 'paths', 'mean_depth', 'median_depth'),
              [(label, total, '%.4f' % mean, median) for label, total, mean, median in summary])
    save_figure(paths_figure(tables), os.path.join(out, 'paths.png'))


def paths_figure(tables):
    """One histogram per network, side by side: the share of paths of each depth."""
    from matplotlib.figure import Figure
    from network.paths import summarize
    figure = Figure(figsize=(4 * len(tables), 3.6), dpi=100)
    axes_list = figure.subplots(1, len(tables), squeeze=False, sharex=True)[0]
    for axes, (label, depths) in zip(axes_list, tables.items()):
        total, mean, median = summarize(depths)
        axes.bar(list(depths), [100 * count / total for count in depths.values()])
        axes.axvline(mean, color='black', linestyle='--', linewidth=1)
        axes.set(title='%s\n%.3g paths, mean %.1f, median %d' % (label, total, mean, median),
                 xlabel='path depth (convolutions)', ylabel='share of paths (%)')
        axes.grid(True, alpha=0.3)
    figure.tight_layout()
    return figure


# ---------------------------------------------------------------- components

def load_checkpoint(path, name, depth, widen, num_classes, input_shape):
    """The network with the weights of `path`, checked as training checks a checkpoint
    (engine.checkpoint.load_params: an empty, cut, foreign or other network's file is one
    line saying what is wrong), which needs the parameters' shapes: one zero image first."""
    import mxnet as mx
    import network
    from engine.checkpoint import load_params
    if not os.path.exists(path):
        raise UserError('checkpoint %s not found' % path)
    net = build(name, depth, widen, num_classes)
    network.initialize(net, input_shape, mx.init.Zero(), mx.cpu())
    try:
        load_params(net, path, mx.cpu())
    except UserError as err:
        raise UserError('%s does not hold the weights of %s: %s'
                        % (path, label_of(name, depth, widen), err)) from None
    return net


def input_shape_of(data):
    """(channels, height, width) of the images the run's network saw."""
    spec = DATASETS[data['dataset']]
    side = data.get('data_shape') or spec['data_shape']
    return spec['channels'], side, side


def iterators(data, args, seed=0):
    """(training, test) iterators of the run's data at --batch-size; `seed` sets the
    training records' shuffle and augmentation."""
    from data.iterators import get_iterators
    return get_iterators(data['dataset'], data['data_dir'], args.batch_size, args.batch_size,
                         data['aug_type'], data['data_shape'], data['train_rec'],
                         data['val_rec'], seed=seed, num_classes=data['num_classes'])


def component_names(net, choices):
    """(path names such as 'LRL', depths) of the components `choices`."""
    from network import components
    return ([''.join('R' if right else 'L' for right in c) for c in choices],
            [components.component_depth(net, c) for c in choices])


def evaluate(net, name, data, args):
    """[(component name, depth, accuracy)], N_e, N_f on the test records, a note on the
    BatchNorm statistics used, and N_e without each component (leave-one-out)."""
    from network import components
    train_it, val_it = iterators(data, args)
    choices = components.all_choices(net)
    print('evaluating the %d components of %s' % (len(choices), name), file=sys.stderr)
    if name == 'ensemble':
        members, note = None, 'each with its own trained BatchNorm statistics'
    else:
        members, used = fused_components(net, choices, train_it, args.bn_batches)
        note = 'BatchNorm statistics re-estimated on %d training batches of %d images' \
            % (used, args.batch_size)
        if used < args.bn_batches:
            note += ' (all the training records give; %d asked)' % args.bn_batches
    scores = score(net, members, val_it)
    names, depths = component_names(net, choices)
    return (list(zip(names, depths, scores['components'])), scores['N_e'], scores['N_f'],
            note, scores['leave_one_out'])


def fused_components(net, choices, train_it, limit):
    """(the components of a skip network, their statistics re-estimated in one pass over
    the first `limit` batches of `train_it` (None: all), how many batches that was)."""
    from network import components
    members = [components.build_component(net, c) for c in choices]
    used = components.reestimate_together(members,
                                          (x for x, _ in islice(train_it, limit)))
    for member in members:
        member.hybridize()
    print('  statistics of the %d components re-estimated on %d training batches'
          % (len(members), used), file=sys.stderr)
    return members, used


def score(net, members, val_it):
    """Accuracy of each component, of the averaged components' softmax (N_e), of the
    network (N_f) and of N_e without each component. `members` None: the network's own
    outputs are the components."""
    import mxnet as mx
    from inference.contribution import leave_one_out_hits
    correct, seen = None, 0
    for batch, (x, y) in enumerate(val_it, 1):
        whole = net(x)
        outs = list(whole) if members is None else [m(x) for m in members]
        fused = mx.nd.add_n(*outs) / len(outs) if members is None else whole
        probabilities = [mx.nd.softmax(o) for o in outs]
        averaged = mx.nd.add_n(*probabilities) / len(outs)
        hits = [(o.argmax(axis=1) == y).sum().asscalar() for o in outs + [averaged, fused]]
        hits += leave_one_out_hits(probabilities, y)
        correct = hits if correct is None else [a + b for a, b in zip(correct, hits)]
        seen += x.shape[0]
        if batch % 10 == 0 or batch == len(val_it):
            print('  test batch %d/%d' % (batch, len(val_it)), file=sys.stderr)
    if not seen:
        raise UserError('the test records are empty')
    accuracy = [c / seen for c in correct]
    n = len(outs)
    return {'components': accuracy[:n], 'N_e': accuracy[n], 'N_f': accuracy[n + 1],
            'leave_one_out': accuracy[n + 2:]}


def report_components(label, results, n_e, n_f, note, out):
    print('%s: components (L = left, R = right path per block), %s' % (label, note))
    print('%-12s %6s %9s' % ('component', 'depth', 'accuracy'))
    for name, depth, accuracy in results:
        print('%-12s %6d %9.4f' % (name, depth, accuracy))
    print('N_e (averaged components): %.4f' % n_e)
    print('N_f (whole network):       %.4f' % n_f)
    rows = [('component', name, depth, '%.6f' % acc) for name, depth, acc in results]
    rows += [('N_e', 'averaged components', '', '%.6f' % n_e),
             ('N_f', 'whole network', '', '%.6f' % n_f)]
    write_csv(os.path.join(out, 'components.csv'),
              ('kind', 'component', 'depth', 'test_accuracy'), rows)
    save_figure(components_figure(label, results, n_e, n_f),
                os.path.join(out, 'components.png'))


def components_figure(label, results, n_e, n_f):
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator
    figure = Figure(figsize=(6, 4.2), dpi=100)
    axes = figure.subplots()
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))   # depths are whole
    axes.scatter([d for _, d, _ in results], [100 * a for _, _, a in results],
                 label='components')
    for name, depth, accuracy in results:   # the path, e.g. LRL, beside its point
        axes.annotate(name, (depth, 100 * accuracy), xytext=(4, 3),
                      textcoords='offset points', fontsize='x-small')
    axes.axhline(100 * n_e, color='tab:orange', linestyle='--', label='N_e (averaged)')
    axes.axhline(100 * n_f, color='tab:green', linestyle=':', label='N_f (whole network)')
    axes.margins(x=0.1)   # room for the names of the outermost points
    axes.set(title='%s: components (path per block: L left, R right)' % label,
             xlabel='component depth (convolutions)', ylabel='test accuracy (%)')
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize='small')
    figure.tight_layout()
    return figure


# ---------------------------------------------------------------- contributions

def report_leave_one_out(results, n_e, leave_one_out, out):
    print('N_e without one component (leave-one-out):')
    print('%-12s %9s %12s %9s' % ('component', 'alone', 'N_e without', 'change'))
    rows = []
    for (name, depth, alone), without in zip(results, leave_one_out):
        print('%-12s %9.4f %12.4f %+9.4f' % (name, alone, without, without - n_e))
        rows.append((name, depth, '%.6f' % alone, '%.6f' % without,
                     '%.6f' % (without - n_e)))
    write_csv(os.path.join(out, 'leave_one_out.csv'),
              ('component', 'depth', 'test_accuracy_alone', 'N_e_without',
               'change_from_N_e'), rows)


def report_path_removal(net, n_f, data, args):
    """The network with one path of a block removed, on the test records."""
    from inference.contribution import path_removal
    test = list(iterators(data, args)[1])
    print('one path of a block removed (weights and statistics as trained):')
    print('%-8s %8s %8s %9s %9s' % ('block', 'removed', 'kept', 'accuracy', 'change'))
    rows = []
    for block, removed, kept, accuracy in path_removal(net, test):
        print('%-8s %8s %8s %9.4f %+9.4f' % (block, removed, kept, accuracy, accuracy - n_f))
        rows.append((block, removed, kept, '%.6f' % accuracy, '%.6f' % (accuracy - n_f)))
    write_csv(os.path.join(args.out_dir, 'path_removal.csv'),
              ('block', 'removed_path', 'kept_path', 'test_accuracy', 'change_from_N_f'),
              rows)


def bn_noise(net, data, args):
    """[(setting, batches, batch images, draw, seed, component, depth, accuracy)]: the
    components (and N_e) re-estimated on each --bn-noise setting, --bn-draws times."""
    from inference.contribution import parse_bn_settings, setting_name
    from network import components
    choices = components.all_choices(net)
    names, depths = component_names(net, choices)
    test = list(iterators(data, args)[1])
    rows = []
    for setting in parse_bn_settings(args.bn_noise):
        for draw in range(1, args.bn_draws + 1):
            print('BatchNorm noise: %s batches, draw %d/%d' % (setting_name(setting), draw,
                                                                args.bn_draws), file=sys.stderr)
            train_it = iterators(data, args, seed=draw - 1)[0]
            members, used = fused_components(net, choices, train_it, setting)
            scores = score(net, members, test)
            rows += [(setting_name(setting), used, args.batch_size, draw, draw - 1, name,
                      depth, accuracy)
                     for name, depth, accuracy in zip(names + ['N_e'], depths + [''],
                                                      scores['components'] + [scores['N_e']])]
    return rows


def report_bn_noise(rows, out):
    from inference.contribution import noise_summary
    write_csv(os.path.join(out, 'bn_noise.csv'),
              ('setting', 'batches', 'batch_images', 'draw', 'seed', 'component', 'depth',
               'test_accuracy'), [row[:-1] + ('%.6f' % row[-1],) for row in rows])
    summary = noise_summary(rows)
    print('components re-estimated on N training batches, several draws (accuracy):')
    print('%-8s %-12s %6s %9s %9s' % ('batches', 'component', 'draws', 'mean', 'std'))
    for setting, component, draws, mean, std, _, _ in summary:
        print('%-8s %-12s %6d %9.4f %9.4f' % (setting, component, draws, mean, std))
    write_csv(os.path.join(out, 'bn_noise_summary.csv'),
              ('setting', 'component', 'draws', 'mean_accuracy', 'std_accuracy',
               'min_accuracy', 'max_accuracy'),
              [row[:3] + tuple('%.6f' % v for v in row[3:]) for row in summary])


# ---------------------------------------------------------------- files

def write_csv(path, header, rows):
    write_whole_csv(path, header, rows)
    print('wrote %s' % path, file=sys.stderr)


def save_figure(figure, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(figure)
    write_whole(path, lambda temp: figure.savefig(temp, format='png'))
    print('wrote %s' % path, file=sys.stderr)


def main(argv=None):
    import network
    args = parse(argv)
    configs, data = configurations(args)
    for name, depth, widen in configs:
        build(name, depth, widen, data['num_classes'])   # bad names and depths fail first
    if args.bn_noise and (not args.params or network.resolve_name(configs[0][0])
                          not in SKIP_OR_ENSEMBLE[:2]):
        raise UserError('--bn-noise re-estimates the components of a fuse3 or fuse6 '
                        'checkpoint (--params); the ensemble keeps its trained statistics')
    if args.bn_noise:
        from inference.contribution import parse_bn_settings
        parse_bn_settings(args.bn_noise)   # a bad setting fails before the work
    net = load_checkpoint(args.params, *configs[0], data['num_classes'],
                          input_shape_of(data)) if args.params else None
    try:
        os.makedirs(args.out_dir, exist_ok=True)
    except OSError as err:
        raise UserError('cannot make the output folder %s: %s' % (args.out_dir, err.strerror))
    if net is not None:
        name, depth, widen = configs[0]
        fused = network.resolve_name(name) in SKIP_OR_ENSEMBLE[:2]
        if network.resolve_name(name) in SKIP_OR_ENSEMBLE:
            results, n_e, n_f, note, leave_one_out = evaluate(
                net, network.resolve_name(name), data, args)
            report_components(label_of(name, depth, widen), results, n_e, n_f, note,
                              args.out_dir)
            report_leave_one_out(results, n_e, leave_one_out, args.out_dir)
            if fused:
                report_path_removal(net, n_f, data, args)
            if fused and args.bn_noise:
                report_bn_noise(bn_noise(net, data, args), args.out_dir)
        else:
            print('%s has no component networks to evaluate (only fuse3, fuse6 and '
                  'ensemble do); path lengths follow' % name, file=sys.stderr)
    report_paths(path_tables(configs, data['num_classes']), args.out_dir)
    return 0

