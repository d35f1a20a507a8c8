"""Prepare a data set as the record files the training scripts read.

    python -m data.prepare <dataset> [--source PATH] [--out-dir DIR] [--force] [--workers N]

Writes `<out>/train.rec`, `test.rec` and their `.idx` (ImageNet: `imagenet_train.rec`,
`imagenet_val.rec` and im2rec-style `.lst` files), and `dataset.json` beside them: counts,
class names, image shape, per-channel mean and std of the training images. Default output:
data/<dataset>/ under the working directory, where the training scripts look by default. A finished data set is left alone unless --force. Downloads (checked against
the official md5) are kept in <out>/downloads/.
"""
import os
import time

from common.errors import ArgumentParser, UserError, add_old_spelling, run_main
from data.datasets import DATASETS

SOURCES = {
    'fashion-mnist': 'folder with the four official IDX .gz files (default: %s if there, '
                     'else download)',
    'cifar10': 'cifar-10-python.tar.gz or its folder (default: download)',
    'cifar100': 'cifar-100-python.tar.gz or its folder (default: download)',
    'svhn': 'folder with train_32x32.mat, test_32x32.mat, extra_32x32.mat (default: download)',
    'imagenet': 'folder with train/<wnid>/*.JPEG and val/<wnid>/*.JPEG (required)',
}


def default_out_dir(dataset):
    """data/<dataset> relative to the working directory, as the training scripts'
    --data-dir default: run both from the same folder and they meet."""
    return os.path.join('data', dataset)


def parse_args(argv):
    parser = ArgumentParser(prog='python -m data.prepare', description=__doc__.split('\n')[0])
    parser.add_argument('dataset', choices=sorted(SOURCES))
    parser.add_argument('--source', help='; '.join('%s: %s' % item for item in sorted(
        SOURCES.items())).replace('%s', '/usr/share/datasets/fashion-mnist'))
    parser.add_argument('--out-dir', help='output folder (default: data/<dataset>/)')
    add_old_spelling(parser, '--out', dest='out_dir')
    parser.add_argument('--force', action='store_true', help='redo a finished data set')
    parser.add_argument('--workers', type=int, default=None,
                        help='encoding processes (default: one per core but one)')
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        parser.error('--workers must be at least 1')
    if args.source is not None and not os.path.exists(args.source):
        raise UserError('source %s not found; pass an existing %s' % (
            args.source, SOURCES[args.dataset].split(' (')[0]))
    return args


def convert(dataset, source, out_dir, workers):
    # Imported here so that `--help` and flag errors stay fast.
    if dataset == 'fashion-mnist':
        from data import fashion_mnist
        return fashion_mnist.convert(source, out_dir, workers=workers)
    if dataset in ('cifar10', 'cifar100'):
        from data import cifar
        return cifar.convert(dataset, source, out_dir, workers=workers)
    if dataset == 'svhn':
        from data import svhn
        return svhn.convert(source, out_dir, workers=workers)
    from data import imagenet
    return imagenet.convert(source, out_dir, workers=workers)


def already_there(dataset, out_dir):
    """True when `out_dir` holds this data set's finished records; a UserError when it holds
    record files of anything else, which a run would overwrite."""
    # Imported here, as mxnet comes with it, so that Ctrl-C while it loads is caught too.
    from data.recwriter import finished_meta
    meta = finished_meta(out_dir)
    if meta is not None and meta.get('dataset') == dataset:
        return True
    spec = DATASETS[dataset]
    names = [name for rec in (spec['train_rec'], spec['val_rec'])
             for name in (rec, os.path.splitext(rec)[0] + '.idx')]
    found = [name for name in names if os.path.exists(os.path.join(out_dir, name))]
    if meta is not None:
        raise UserError('%s holds the finished records of %s; pass --force to replace them '
                        'with %s, or choose another --out-dir' % (out_dir, meta.get('dataset'),
                                                             dataset))
    if found:
        raise UserError('%s holds %s, not from a finished `data.prepare %s`; pass --force to '
                        'replace it, or choose another --out-dir' % (out_dir, ', '.join(found),
                                                                 dataset))
    return False


def _describe(err):
    where = ' (%s)' % err.filename if err.filename else ''
    return '%s%s' % (err.strerror or err, where)


def main(argv=None):
    args = parse_args(argv)
    out_dir = args.out_dir or default_out_dir(args.dataset)
    if not args.force and already_there(args.dataset, out_dir):
        print('%s is already prepared in %s; pass --force to redo it' % (args.dataset, out_dir))
        return 0
    start = time.time()
    try:
        meta = convert(args.dataset, args.source, out_dir, args.workers)
    except OSError as err:   # a full disk, a quota, a read-only or vanished folder
        raise UserError('cannot write the records in %s: %s; the partial files were '
                        'removed and records prepared there before are kept: free some '
                        'space or choose another --out-dir, and run again'
                        % (out_dir, _describe(err)))
    counts = ', '.join('%d %s' % (n, split) for split, n in meta['counts'].items())
    print('%s: %s records in %s (%.1f s)' % (args.dataset, counts, out_dir,
                                              time.time() - start))
    return 0


if __name__ == '__main__':
    run_main(main)
