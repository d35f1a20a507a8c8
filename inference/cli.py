"""Flags and set-up shared by the scripts that use a trained network."""
import argparse
import os

from common.errors import UserError, add_old_spelling


def add_checkpoint_args(parser):
    group = parser.add_argument_group('checkpoint')
    group.add_argument('run', nargs='?', default=None,
                       help="a run's log (.txt) or its weights folder; default: --checkpoint")
    group.add_argument('--checkpoint', default=None, metavar='PREFIX',
                       help='weights prefix: PREFIX-<epoch:04d>.params')
    group.add_argument('--epoch', type=int, default=None,
                       help='the checkpoint saved after this many epochs; default the latest')
    group.add_argument('--pretrained', default=None, metavar='NAME',
                       help='a trained network that ships with the project, e.g. '
                            'fashion-mnist/cross_d26 (network.list_pretrained() lists them); '
                            'nothing to train')
    return group


def add_exported_arg(group):
    """--exported PREFIX: an exported network (tools/export.py, tools/quantize.py) instead of
    a checkpoint."""
    group.add_argument('--exported', default=None, metavar='PREFIX',
                       help='an exported network, fp32 or INT8: PREFIX-symbol.json, '
                            'PREFIX-<epoch>.params and PREFIX-export.json')


def add_inference_args(parser):
    group = parser.add_argument_group('inference')
    group.add_argument('--batch-size', type=int, default=None,
                       help="images per batch; default the run's test batch size")
    group.add_argument('--path', choices=('auto', 'plain', 'fused'), default='auto',
                       help="CPU graph: MXNet's fused one (optimize_for) where it is faster "
                            "and predicts the same, or always/never; default %(default)s")
    group.add_argument('--gpus', dest='gpu', type=one_gpu, default=None, metavar='ID',
                       help="run on this GPU instead of the CPU (plain graph); as in "
                            "training, '' is the CPU; default the CPU")
    add_old_spelling(group, '--gpu', dest='gpu', type=one_gpu)
    return group


def one_gpu(text):
    """--gpus of an inference tool: one GPU id, or '' for the CPU (None)."""
    ids = [part.strip() for part in text.split(',') if part.strip()]
    if not ids:
        return None
    if len(ids) > 1 or not ids[0].lstrip('-').isdigit():
        raise argparse.ArgumentTypeError('takes one GPU id (inference runs on one device), '
                                         'not %r' % text)
    if int(ids[0]) < 0:
        raise argparse.ArgumentTypeError('GPU ids start at 0, not %s' % ids[0])
    return int(ids[0])


# oneDNN's convolution + sum fusion (a block's addition folded into the convolution before
# it): off ('1') breaks nothing; on, MXNet's fused fp32 merge-and-run graph fails (shape
# errors), while INT8 graphs of every family run with it (tools/quantize.py --sum-fusion).
# MXNet reads it once, when it is imported.
FUSE_SUM_ENV = 'MXNET_DISABLE_MKLDNN_FUSE_CONV_SUM'


def prepare_mxnet(sum_fusion=None):
    """Set MXNet's environment before it is imported: the fused merge-and-run graph needs
    the convolution + sum fusion off. `sum_fusion` True or False (INT8 quantization) asks
    for it on or off for certain: one line when MXNet has already started otherwise."""
    import sys
    if sum_fusion is None:
        os.environ.setdefault(FUSE_SUM_ENV, '1')
    elif 'mxnet' not in sys.modules:
        os.environ[FUSE_SUM_ENV] = '0' if sum_fusion else '1'
    elif (os.environ.get(FUSE_SUM_ENV, '0') == '0') != sum_fusion:
        raise UserError('MXNet has started with the convolution + sum fusion %s: this needs '
                        'it %s (%s is read when MXNet starts)'
                        % ('off' if sum_fusion else 'on', 'on' if sum_fusion else 'off',
                           FUSE_SUM_ENV))
    os.environ.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 1))


def check_output(path, flag):
    """Refuse, before any work, an output file that could not be written (`flag` names it
    in the message); its folder is made when missing."""
    if os.path.isdir(path):
        raise UserError('%s %s is a folder: give a file name' % (flag, path))
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError('%s %s: a file stands where its folder %s would be'
                        % (flag, path, folder))
    except OSError as err:
        raise UserError('%s %s: cannot make its folder %s (%s)'
                        % (flag, path, err.filename or folder, err.strerror))
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError('%s %s: cannot write into %s' % (flag, path, folder))


def checkpoint_of(args):
    from inference.checkpoint import find_checkpoint
    if args.pretrained is not None:
        from inference.pretrained import find_pretrained
        named = [flag for flag, value in (('a run', args.run), ('--checkpoint', args.checkpoint),
                                          ('--exported', getattr(args, 'exported', None)),
                                          ('--epoch', args.epoch)) if value is not None]
        if named:
            raise UserError('--pretrained names the network: leave out %s' % ', '.join(named))
        return find_pretrained(args.pretrained)
    if getattr(args, 'exported', None) is not None:
        from inference.exported import find_exported
        if args.run is not None or args.checkpoint is not None:
            raise UserError('name one network: a checkpoint or --exported PREFIX, not both')
        return find_exported(args.exported, args.epoch)
    if (args.run is None) == (args.checkpoint is None):
        raise UserError("name one checkpoint: a run's log or weights folder, or "
                        "--checkpoint PREFIX (with --epoch N)%s, or --pretrained NAME"
                        % (', or --exported PREFIX' if hasattr(args, 'exported') else ''))
    return find_checkpoint(args.run or args.checkpoint, args.epoch)


def class_names_of(args, checkpoint):
    """The class names: those of `--data-dir`'s dataset.json when given, else a pretrained
    entry's own, else those beside the run's records."""
    from inference.records import class_names
    flags = checkpoint.flags
    if args.data_dir is None and flags.get('classes'):
        return list(flags['classes'])
    return class_names(args.data_dir or flags['data_dir'], flags['num_classes'])


def batch_size_of(args, checkpoint):
    size = args.batch_size
    if size is None:
        size = checkpoint.flags.get('test_batch_size') or 100
    if size < 1:
        raise UserError('--batch-size must be at least 1 (got %d)' % size)
    return size


def context_of(args):
    import mxnet as mx
    if args.gpu is None:
        return mx.cpu()
    if args.gpu >= mx.context.num_gpus():
        raise UserError('--gpus %d: MXNet sees %d GPUs; leave --gpus out to run on the CPU'
                        % (args.gpu, mx.context.num_gpus()))
    return mx.gpu(args.gpu)


def ready_net(args, checkpoint, first_batch, log):
    """The checkpoint's (or export's) network on its device; on the CPU the faster of the
    plain and fused graphs (measured on `first_batch`), reported through `log`. An INT8
    export runs as it is: its graph is already oneDNN's fused INT8 one."""
    from inference.exported import Exported, load_exported
    from inference.model import choose_path, describe, load_net, plain
    ctx = context_of(args)
    batch = first_batch.as_in_context(ctx)
    make_net = (lambda: load_exported(checkpoint, ctx)) if isinstance(checkpoint, Exported) \
        else (lambda: load_net(checkpoint, ctx))
    if isinstance(checkpoint, Exported) and checkpoint.precision == 'int8':
        if args.gpu is not None:
            raise UserError('%s is an INT8 network for the CPU: leave --gpu out'
                            % checkpoint.prefix)
        log('inference path: INT8 (oneDNN, as quantized)')
        return plain(make_net(), batch), ctx
    if args.gpu is not None:
        return plain(make_net(), batch), ctx
    net, report = choose_path(make_net, batch, args.path)
    log(describe(report))
    return net, ctx
