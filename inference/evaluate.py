"""Score a checkpoint on a record set (tools/evaluate.py)."""
import json
import os
import sys

from common.atomic import write_whole, write_whole_text
from common.errors import ArgumentParser, UserError
from inference import cli


def build_parser():
    parser = ArgumentParser(
        prog='tools/evaluate.py',
        description="Score a checkpoint on a record set: loss, top-1/top-5, per-class "
                    "accuracy and the confusion matrix (text and PNG). The network and its "
                    "flags come from the run's log.")
    cli.add_exported_arg(cli.add_checkpoint_args(parser))
    cli.add_inference_args(parser)
    group = parser.add_argument_group('data and output')
    group.add_argument('--data-dir', default=None, help="record folder; default the run's")
    group.add_argument('--val-dataset', default=None,
                       help="record file in --data-dir; default the run's (test.rec)")
    group.add_argument('--original-subset', nargs='?', const='run', default=None,
                       metavar='TRAIN,TEST',
                       help="also score the images the 2016 code scored: the first TRAIN of "
                            "every TEST test images (alone: the run's --batch-size and "
                            "--test-batch-size, e.g. 64,400 on CIFAR)")
    group.add_argument('--png', default=None,
                       help='confusion matrix picture; default <weights>-<epoch>.confusion.png')
    group.add_argument('--json', default=None, help='also write every figure to this file')
    return parser


def subset_sizes(args, flags):
    """--original-subset as (training batch, test batch); None when not asked for."""
    if args.original_subset is None:
        return None
    from inference.scoring import parse_subset
    sizes = parse_subset(args.original_subset, flags)
    if sizes is None:
        raise UserError('--original-subset=%s is not TRAIN,TEST (two positive batch sizes, '
                        'e.g. 64,400)' % args.original_subset)
    return sizes


def subset_figures(sizes, logits, labels):
    from inference.scoring import original_subset
    positions = original_subset(len(labels), *sizes)
    hits = logits[positions].argmax(axis=1) == labels[positions]
    return dict(train_batch=sizes[0], test_batch=sizes[1], count=len(positions),
                top1=float(hits.mean()))


def what_is(checkpoint):
    """'checkpoint', which export ('fp32 export', 'int8 export'), or which pretrained entry."""
    if hasattr(checkpoint, 'entry'):
        return 'pretrained %s:' % checkpoint.entry['name']
    precision = getattr(checkpoint, 'precision', None)
    return 'checkpoint' if precision is None else '%s export' % precision


def main(argv=None):
    args = build_parser().parse_args(argv)
    cli.prepare_mxnet()
    checkpoint = cli.checkpoint_of(args)
    flags = checkpoint.flags
    sizes = subset_sizes(args, flags)   # bad flags and outputs before the work
    png = args.png or '%s-%04d.confusion.png' % (checkpoint.prefix, checkpoint.epoch)
    cli.check_output(png, '--png')
    if args.json:
        cli.check_output(args.json, '--json')
    data_dir = args.data_dir or flags['data_dir']
    rec_path = os.path.join(data_dir, args.val_dataset or flags['val_dataset'])
    from inference.records import (capped_batch_size, first_and_all, logits_of, padded,
                                   record_batches)
    batch_size = capped_batch_size(rec_path, cli.batch_size_of(args, checkpoint))
    from inference.scoring import figures, report_lines, save_confusion_png
    batches = record_batches(flags, rec_path, batch_size)
    print('%s %s (%s, depth %s, widen %s; %s), records %s: %d images'
          % (what_is(checkpoint), checkpoint.params_path, flags['network'], flags.get('depth'),
             flags.get('widen_factor'), flags['dataset'], rec_path, batches.num_examples),
          flush=True)
    first, stream = first_and_all(batches)
    net, ctx = cli.ready_net(args, checkpoint, padded(first, batch_size), print)
    logits, labels = logits_of(net, stream, batch_size, ctx)
    result = figures(logits, labels, flags['num_classes'],
                     flags.get('test_batch_size') or batch_size)
    if sizes is not None:
        result['original_subset'] = subset_figures(sizes, logits, labels)
    names = cli.class_names_of(args, checkpoint)
    print('\n'.join(report_lines(result, names, result.get('original_subset'))))
    title = '%s on %s' % (checkpoint.name, os.path.basename(rec_path))
    write_whole(png, lambda temp: save_confusion_png(result, names, title, temp))
    print('confusion matrix picture: %s' % png)
    if args.json:
        write_whole_text(args.json, json.dumps(dict(
            result, checkpoint=checkpoint.params_path, records=rec_path, classes=names),
            indent=1))
        print('figures: %s' % args.json)
    return 0


if __name__ == '__main__':
    from common.errors import run_main
    sys.exit(run_main(main))
