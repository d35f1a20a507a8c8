"""Top-k classes of image files, folders of images or a record file (tools/predict.py)."""
import csv
import io
import json
import os
import sys
import tempfile

import numpy as np

from common.atomic import write_whole_text
from common.errors import ArgumentParser, UserError, add_old_spelling
from common.text import csv_cell, readable
from inference import cli


def build_parser():
    parser = ArgumentParser(
        prog='tools/predict.py',
        description='Top-k classes, with probabilities, of image files, folders of images or '
                    'a .rec file; images are prepared, decoded and normalised as in training.')
    cli.add_exported_arg(cli.add_checkpoint_args(parser))
    parser.add_argument('--input', '-i', nargs='+', required=True,
                        help='image files, folders of images, or one .rec file')
    parser.add_argument('--top', '-k', type=int, default=3, help='classes per image')
    parser.add_argument('--format', choices=('table', 'csv', 'json'), default='table')
    parser.add_argument('--out', default=None, help='write to this file, not to stdout')
    add_old_spelling(parser, '--output', '-o', dest='out')
    parser.add_argument('--data-dir', default=None,
                        help="where dataset.json names the classes; default the run's")
    cli.add_inference_args(parser)
    return parser


def softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def top_k(probabilities, names, k):
    """[[(class name, probability), ...] per image], best first."""
    order = np.argsort(-probabilities, axis=1, kind='stable')[:, :k]
    return [[(names[c], float(row[c])) for c in best] for row, best in zip(probabilities, order)]


def render(rows, fmt):
    """rows: [(image, true class or None, [(class, probability), ...])] -> text. Names
    are escaped by the format's rules (common/text.py): JSON escapes every character it
    must itself, a CSV cell never starts a formula, and a table shows undecodable bytes
    and control characters as \\xNN."""
    if fmt == 'json':
        return json.dumps([dict(image=image, **({'label': label} if label is not None else {}),
                                top=[dict(name=n, probability=p) for n, p in best])
                           for image, label, best in rows], indent=1) + '\n'
    k = len(rows[0][2])
    if fmt == 'csv':
        out = io.StringIO()
        writer = csv.writer(out, lineterminator='\n')
        writer.writerow(['image', 'label'] + ['%s%d' % (what, i + 1) for i in range(k)
                                              for what in ('class', 'probability')])
        for image, label, best in rows:
            writer.writerow([csv_cell(image), '' if label is None else csv_cell(label)]
                            + [v for name, p in best for v in (csv_cell(name), '%.6f' % p)])
        return out.getvalue()
    rows = [(readable(image), label, best) for image, label, best in rows]
    width = max(len(image) for image, _, _ in rows)
    lines = []
    for image, label, best in rows:
        guesses = '  '.join('%s %.4f' % (readable(name), p) for name, p in best)
        lines.append('%-*s  %s%s' % (width, image, guesses,
                                     '' if label is None else '  (true: %s)' % readable(label)))
    return '\n'.join(lines) + '\n'


def records_of(paths, dataset, scratch):
    """(record file, a name per image, whether its labels are real) for the inputs."""
    from inference.records import list_images, write_image_records
    if any(path.endswith('.rec') for path in paths):
        if len(paths) > 1:
            raise UserError('a .rec file is read alone: pass it as the only --input')
        return paths[0], None, True
    images = list_images(paths)
    return write_image_records(images, dataset, os.path.join(scratch, 'images.rec')), images, False


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.top < 1:
        raise UserError('--top must be at least 1 (got %d)' % args.top)
    if args.out:
        cli.check_output(args.out, '--out')
    cli.prepare_mxnet()
    checkpoint = cli.checkpoint_of(args)
    flags = checkpoint.flags
    from inference.records import (capped_batch_size, first_and_all, logits_of, padded,
                                   record_batches)
    names = cli.class_names_of(args, checkpoint)
    with tempfile.TemporaryDirectory(prefix='predict-') as scratch:
        rec_path, images, labelled = records_of(args.input, flags['dataset'], scratch)
        batch_size = capped_batch_size(rec_path, cli.batch_size_of(args, checkpoint))
        batches = record_batches(flags, rec_path, batch_size)
        first, stream = first_and_all(batches)
        log = lambda line: print(line, file=sys.stderr)  # noqa: E731 (stdout is the result)
        net, ctx = cli.ready_net(args, checkpoint, padded(first, batch_size), log)
        logits, labels = logits_of(net, stream, batch_size, ctx)
    if images is None:
        images = ['%s#%d' % (os.path.basename(rec_path), i) for i in range(len(labels))]
    best = top_k(softmax(logits), names, min(args.top, len(names)))
    truth = [names[label] for label in labels] if labelled else [None] * len(labels)
    text = render(list(zip(images, truth, best)), args.format)
    if args.out:
        write_whole_text(args.out, text)
        print('%d predictions written to %s' % (len(best), args.out), file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
