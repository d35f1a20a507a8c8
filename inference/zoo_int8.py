"""fp32 against INT8 for the model zoo's entries (tools/zoo_int8.py).

Each entry is quantized by `tools/quantize.py --pretrained NAME` with its defaults (naive
calibration on the first 10 batches of 64 training records, the first convolution in fp32)
into a temporary folder; the fp32 network (plain graph) and the INT8 export, loaded from
its files as `tools/evaluate.py --exported` loads it, score every test record in order.
Reported: both top-1 accuracies, their difference, and the agreement (the share of test
images whose INT8 class is the fp32 one), on the whole test set and on the manifest's
slice (its first images). `--record` writes these figures into the
entry's `int8` field of the manifest. On records that hold the slice only, the figures are
the slice's: the test suite checks them against the manifest that way.
"""
import json
import os

from common.errors import ArgumentParser, UserError
from inference import quantize as quantize_tool


def build_parser():
    parser = ArgumentParser(
        prog='tools/zoo_int8.py',
        description='Quantize model-zoo entries to INT8 (the defaults of tools/quantize.py) '
                    'and compare them with fp32 on every test record: top-1 and per-image '
                    'agreement.')
    parser.add_argument('names', nargs='*', metavar='NAME',
                        help='entries (default: every entry)')
    parser.add_argument('--data-dir', default=None,
                        help='record folder (training records calibrate, test records score); '
                             "default where data.prepare puts the entry's data set")
    parser.add_argument('--sum-fusion', choices=('on', 'off'),
                        default=quantize_tool.DEFAULT_SUM_FUSION,
                        help="as tools/quantize.py's; default %(default)s")
    parser.add_argument('--record', action='store_true',
                        help="write the figures into the manifest (the entry's int8 field)")
    return parser


def scored(net, batches, batch_size):
    """(predicted classes, labels) of every record."""
    import mxnet as mx
    from inference.records import logits_of
    logits, labels = logits_of(net, batches, batch_size, mx.cpu())
    return logits.argmax(axis=1), labels


def compare(fp32, int8, labels, images=None):
    """Top-1 of both and their agreement, over the first `images` (default all)."""
    part = slice(None, images)
    return dict(fp32_accuracy=float((fp32[part] == labels[part]).mean()),
                int8_accuracy=float((int8[part] == labels[part]).mean()),
                agreement=float((fp32[part] == int8[part]).mean()),
                images=int(len(labels[part])))


def quantized(name, data_dir, sum_fusion, folder):
    """(the INT8 export of entry `name`, as tools/quantize.py writes it into `folder` with
    its defaults, loaded; the quantization settings)."""
    import mxnet as mx
    from inference.exported import find_exported, load_exported
    argv = ['--pretrained', name, '--out-dir', folder, '--sum-fusion', sum_fusion]
    settings = quantize_tool.build_parser().parse_args(
        argv + (['--data-dir', data_dir] if data_dir else []))
    keep = quantize_tool.check_args(settings)
    files = quantize_tool.quantize_source(quantize_tool.checkpoint_source(settings),
                                          settings, keep)
    prefix = files['symbol'][:-len('-symbol.json')]
    with open(files['description']) as handle:
        description = json.load(handle)
    return load_exported(find_exported(prefix, None), mx.cpu()), dict(
        calibration={key: description['calibration'][key]
                     for key in ('mode', 'batches', 'batch_size')},
        keep_fp32=description['keep_fp32'], sum_fusion=sum_fusion)


def measure(name, data_dir, sum_fusion):
    """The figures of entry `name` (a dict ready for the manifest)."""
    import tempfile

    from inference.model import load_net, plain
    from inference.pretrained import find_pretrained
    from inference.records import first_and_all, padded, record_batches
    source = find_pretrained(name)
    flags = dict(source.flags, data_dir=data_dir or source.flags['data_dir'])
    size = flags['test_batch_size']
    test_path = os.path.join(flags['data_dir'], flags['val_dataset'])
    first, stream = first_and_all(record_batches(flags, test_path, size))
    fp32_classes, labels = scored(plain(load_net(source), padded(first, size)), stream, size)
    with tempfile.TemporaryDirectory(prefix='zoo-int8-') as folder:
        int8_net, settings = quantized(name, data_dir, sum_fusion, folder)
        _, stream = first_and_all(record_batches(flags, test_path, size))
        int8_classes, int8_labels = scored(int8_net, stream, size)
    if not (int8_labels == labels).all():
        raise UserError('%s: the test records changed between the two passes' % test_path)
    whole = compare(fp32_classes, int8_classes, labels)
    check_fp32(source.entry, whole, test_path)
    return dict(whole, slice=compare(fp32_classes, int8_classes, labels,
                                     source.entry['slice']['images']),
                test_batch_size=size, **settings)


def check_fp32(entry, figures, test_path):
    """The fp32 top-1 must be the manifest's: on the whole test set, or on its slice (the
    first images) when the records hold just those."""
    expected = {entry['test_images']: entry['test_accuracy'],
                entry['slice']['images']: entry['slice']['accuracy']}
    if figures['images'] not in expected:
        raise UserError('%s holds %d records; %s was measured on %d (the test set) or on its '
                        'first %d' % (test_path, figures['images'], entry['name'],
                                      entry['test_images'], entry['slice']['images']))
    if abs(figures['fp32_accuracy'] - expected[figures['images']]) > 1e-9:
        raise UserError('%s scores %.4f in fp32 on %s, the manifest says %.4f: not the test '
                        'records it was measured on' % (entry['name'], figures['fp32_accuracy'],
                                                        test_path, expected[figures['images']]))


def markdown_row(name, figures):
    return '| %s | %.2f%% | %.2f%% | %+.2f | %.2f%% |' % (
        name, 100 * figures['fp32_accuracy'], 100 * figures['int8_accuracy'],
        100 * (figures['int8_accuracy'] - figures['fp32_accuracy']),
        100 * figures['agreement'])


def record(results):
    """Write each entry's figures into the manifest (rewritten whole)."""
    from inference.zoo_entry import write_manifest
    from network import zoo
    entries = zoo.read_manifest()
    for name, figures in results.items():
        entries[name]['int8'] = figures
    write_manifest(entries)


def main(argv=None):
    args = build_parser().parse_args(argv)
    from inference import cli
    cli.prepare_mxnet(sum_fusion=args.sum_fusion == 'on')
    os.environ.setdefault('MXNET_SUBGRAPH_VERBOSE', '0')
    from inference.quantizing import check_backend
    from network import list_pretrained, zoo
    check_backend()
    names = args.names or list_pretrained()
    results = {}
    print('| entry | fp32 top-1 | INT8 top-1 | difference (points) | agreement |')
    print('|---|---|---|---|---|')
    for name in names:
        results[name] = measure(name, args.data_dir, args.sum_fusion)
        print(markdown_row(name, results[name]), flush=True)
        if args.record and results[name]['images'] != zoo.get_entry(name)['test_images']:
            raise UserError('--record writes figures of the whole test set; these are of the '
                            'first %d images (nothing recorded)' % results[name]['images'])
    if args.record:
        record(results)
        print('recorded in the manifest: %s' % ', '.join(names))
    return 0
