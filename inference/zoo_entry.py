"""Add a finished run to the model zoo (tools/add_pretrained.py): its last checkpoint's
weights into network/pretrained/, and an entry in the manifest.

The entry's test accuracy is measured here, on every test record, by the plain graph at the
run's test batch size (what `tools/evaluate.py --pretrained NAME --path plain` runs), and
must equal the accuracy the run logged for its last epoch; the accuracy on the first
SLICE_IMAGES test images comes from the same pass. The weights are copied byte for byte, and
the manifest is rewritten whole.
"""
import hashlib
import json
import os

from common.atomic import write_whole, write_whole_text
from common.errors import ArgumentParser, UserError

SLICE_IMAGES = 1000


def build_parser():
    parser = ArgumentParser(
        prog='tools/add_pretrained.py',
        description='Add a finished run to the model zoo: copy its last weights into '
                    'network/pretrained/ and write its manifest entry, with the test accuracy '
                    'measured again and checked against the log.')
    parser.add_argument('run', help="the run's log (.txt)")
    parser.add_argument('--commit', required=True,
                        help='the commit of the code that trained the run')
    parser.add_argument('--command', required=True, help='the command that trained it')
    parser.add_argument('--name', default=None,
                        help='entry name; default <dataset>/<network>_d<depth>[w<widen>]')
    return parser


def measure(checkpoint):
    """(accuracy on every test record, on the first SLICE_IMAGES, images, batch size)."""
    import mxnet as mx
    from inference.model import load_net, plain
    from inference.records import first_and_all, logits_of, padded, record_batches
    flags = checkpoint.flags
    size = flags['test_batch_size']
    batches = record_batches(flags, os.path.join(flags['data_dir'], flags['val_dataset']),
                             size)
    first, stream = first_and_all(batches)
    net = plain(load_net(checkpoint, mx.cpu()), padded(first, size))
    logits, labels = logits_of(net, stream, size, mx.cpu())
    hits = logits.argmax(axis=1) == labels
    return float(hits.mean()), float(hits[:SLICE_IMAGES].mean()), len(labels), size


def entry_of(checkpoint, args, data, accuracy):
    from data.datasets import DATASETS
    from inference.records import class_names
    from engine.logs import read_metrics
    from engine.runfiles import metrics_path
    flags = checkpoint.flags
    spec = DATASETS[flags['dataset']]
    full, part, images, batch = accuracy
    logged = read_metrics(metrics_path(args.run))[-1]
    if logged.epoch + 1 != checkpoint.epoch or logged.epoch + 1 != flags['num_epochs']:
        raise UserError('%s is not finished: its last checkpoint is after epoch %d of %d'
                        % (args.run, checkpoint.epoch, flags['num_epochs']))
    if abs(logged.val_acc - full) > 1e-9:
        raise UserError('%s logged test accuracy %.6f for its last epoch, its checkpoint '
                        'scores %.6f: not the checkpoint of that epoch' % (
                            args.run, logged.val_acc, full))
    return dict(
        network=flags['network'], depth=flags['depth'], widen_factor=flags['widen_factor'],
        num_classes=flags['num_classes'], dataset=flags['dataset'],
        input_shape=[spec['channels'], flags['data_shape'], flags['data_shape']],
        mean=list(spec['mean']), std=list(spec['std']),
        classes=class_names(flags['data_dir'], flags['num_classes']),
        file='%s.params' % args.name, bytes=len(data), sha256=hashlib.sha256(data).hexdigest(),
        test_accuracy=full, test_images=images, test_batch_size=batch,
        slice=dict(images=SLICE_IMAGES, accuracy=part),
        trained=dict(commit=args.commit, command=args.command, log=args.run,
                     epochs=checkpoint.epoch, seed=flags.get('rand_seed')))


def write_manifest(entries):
    """The model zoo's manifest with `entries` ({name: entry}), rewritten whole."""
    from network import zoo
    write_whole_text(os.path.join(zoo.ROOT, zoo.MANIFEST),
                     json.dumps(dict(entries=entries), indent=1, sort_keys=True) + '\n')


def main(argv=None):
    args = build_parser().parse_args(argv)
    from inference import cli
    cli.prepare_mxnet()
    from inference.checkpoint import find_checkpoint
    from network import zoo
    checkpoint = find_checkpoint(args.run, None)
    flags = checkpoint.flags
    args.name = args.name or zoo.entry_name(flags['dataset'], flags['network'], flags['depth'],
                                            flags['widen_factor'])
    with open(checkpoint.params_path, 'rb') as handle:
        data = handle.read()
    entry = entry_of(checkpoint, args, data, measure(checkpoint))
    entries = zoo.read_manifest()
    entries[args.name] = entry
    target = os.path.join(zoo.ROOT, entry['file'])
    os.makedirs(os.path.dirname(target), exist_ok=True)
    write_whole(target, lambda temp: open(temp, 'wb').write(data))
    write_manifest(entries)
    print('%s: %s (%d bytes, sha256 %s), test accuracy %.4f on %d images (first %d: %.4f)'
          % (args.name, target, entry['bytes'], entry['sha256'], entry['test_accuracy'],
             entry['test_images'], SLICE_IMAGES, entry['slice']['accuracy']))
    return 0
