"""Quantize a trained network to INT8 for the CPU, calibrated on training records
(tools/quantize.py)."""
import os
import time
from dataclasses import dataclass
from typing import Callable

from common.errors import ArgumentParser, UserError
from inference import cli

DEFAULT_CALIB_BATCHES = 10
DEFAULT_BATCH_SIZE = 64
# Kept in fp32 unless --keep-fp32 says otherwise: the first convolution (its input, the
# normalised pixels, lost most in INT8); measured in docs/int8.md.
DEFAULT_KEEP_FP32 = 'first'
# oneDNN's convolution + sum fusion in the INT8 graph: on, INT8 ran 2.4x (cross d26) and
# 3.2x (resnet d26) the fastest fp32 path at batch 256, against 1.5x and 1.7x off; it cost
# cross_d26 0.12 points of top-1 more (docs/int8.md measures both settings).
DEFAULT_SUM_FUSION = 'on'


def build_parser():
    parser = ArgumentParser(
        prog='tools/quantize.py',
        description="Quantize a trained network to INT8 with MXNet's oneDNN post-training "
                    "quantization, calibrated on training records; write MXNet's symbol + "
                    "params and a JSON of the settings beside them.")
    cli.add_checkpoint_args(parser)
    parser.add_argument('--out-dir', default=None,
                        help="where the files go; default <the run's weights folder>/export")
    group = parser.add_argument_group('calibration')
    group.add_argument('--data-dir', default=None,
                       help="record folder whose training records calibrate; default the run's")
    group.add_argument('--calib-batches', type=int, default=DEFAULT_CALIB_BATCHES,
                       help='batches of training records (from the first) to calibrate on')
    group.add_argument('--batch-size', type=int, default=DEFAULT_BATCH_SIZE,
                       help='images per calibration batch')
    group.add_argument('--calib-mode', choices=('naive', 'entropy'), default='naive',
                       help='each layer\'s INT8 range: the observed min and max (naive) or '
                            'the range of least KL divergence (entropy)')
    group.add_argument('--keep-fp32', default=DEFAULT_KEEP_FP32,
                       help='layers left in fp32: none, or some of first (the first '
                            'convolution), classifier, separated by commas')
    group.add_argument('--sum-fusion', choices=('on', 'off'), default=DEFAULT_SUM_FUSION,
                       help="oneDNN's convolution + sum fusion: each block's addition folded "
                            "into the INT8 convolution before it; default %(default)s")
    return parser


@dataclass
class Fp32Source:
    """A trained fp32 network: where it comes from and how to build it."""
    name: str            # the base of the exported files' names
    flags: dict          # the run's flags (network, data set, how images are read)
    kind: str            # 'checkpoint' or 'pretrained'
    path: str            # its weights file
    sha256: str
    load: Callable       # () -> the network with its weights, not hybridized
    out_dir: str = None  # the default output folder, if it has one


def checkpoint_source(args):
    from inference.exported import file_sha256
    from inference.model import load_net
    checkpoint = cli.checkpoint_of(args)
    kind = 'pretrained' if hasattr(checkpoint, 'entry') else 'checkpoint'
    return Fp32Source(name=checkpoint.name, flags=checkpoint.flags, kind=kind,
                      path=checkpoint.params_path, sha256=file_sha256(checkpoint.params_path),
                      load=lambda: load_net(checkpoint),
                      out_dir=os.path.join(os.path.dirname(checkpoint.prefix), 'export'))


def keep_list(text):
    from inference.quantizing import KEEPABLE
    names = [name.strip() for name in text.split(',') if name.strip()]
    if names == ['none']:
        return []
    unknown = sorted(set(names) - set(KEEPABLE))
    if unknown or not names:
        raise UserError('--keep-fp32 takes none, or some of %s separated by commas, not %r'
                        % (', '.join(KEEPABLE), text))
    return sorted(set(names), key=list(KEEPABLE).index)


def check_args(args):
    for flag in ('calib_batches', 'batch_size'):
        if getattr(args, flag) < 1:
            raise UserError('--%s must be at least 1 (got %d)'
                            % (flag.replace('_', '-'), getattr(args, flag)))
    return keep_list(args.keep_fp32)


def output_base(source, out_dir):
    """The exported files' base path (made when missing): <out dir>/<name>-int8."""
    out_dir = out_dir or source.out_dir
    if out_dir is None:
        raise UserError('name the output folder: --out-dir DIR')
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as err:
        raise UserError('cannot create %s (%s)' % (out_dir, err.strerror))
    return os.path.join(out_dir, source.name + '-int8')


def calibration_records(args, flags):
    """(the record file, its validation-style batches): the run's training records, read
    and normalised as evaluation reads its test records."""
    from data.datasets import DATASETS
    from inference.records import record_batches
    data_dir = args.data_dir or flags['data_dir']
    rec_path = os.path.join(data_dir, flags.get('train_dataset')
                            or DATASETS[flags['dataset']]['train_rec'])
    batches = record_batches(flags, rec_path, args.batch_size)
    if batches.num_examples < args.batch_size:
        raise UserError('%s holds %d images, fewer than one calibration batch of %d: lower '
                        '--batch-size' % (rec_path, batches.num_examples, args.batch_size))
    return rec_path, batches


def write_checked(quantized, base, first, description):
    """The INT8 files at `base` and the largest difference of their re-import from the
    quantized network on `first`; all or none written (exporting.write_staged)."""
    import json

    from inference.exported import description_path
    from inference.exporting import max_difference, outputs_of, import_mxnet, write_staged

    def produce(staging):
        staged = os.path.join(staging, os.path.basename(base))
        quantized.export(staged, epoch=0)
        files = dict(symbol=staged + '-symbol.json', params=staged + '-0000.params',
                     description=description_path(staged))
        with open(files['description'], 'w') as handle:
            json.dump(description, handle, indent=1, sort_keys=True)
        reloaded = import_mxnet(files['symbol'], files['params'])
        return files, max_difference(outputs_of(quantized(first)), outputs_of(reloaded(first)))
    return write_staged(os.path.dirname(base), produce)


def quantize_source(source, args, keep):
    """Calibrate and quantize `source`; write and check the files; print what was done."""
    import mxnet as mx

    from inference.exported import describe
    from inference.model import input_shape
    from inference.quantizing import (CalibrationBatches, agreement, predictions, quantize,
                                      quantized_layers)
    from inference.records import first_and_all
    rec_path, batches = calibration_records(args, source.flags)
    base = output_base(source, args.out_dir)
    first, stream = first_and_all(batches)
    shape = (args.batch_size,) + tuple(input_shape(source.flags))
    calibration = CalibrationBatches(stream, args.calib_batches, shape)
    net = source.load()
    tic = time.perf_counter()
    quantized = quantize(net, calibration, args.calib_mode, keep)
    seconds = time.perf_counter() - tic
    share = agreement(predictions(net, first), predictions(quantized, first))
    description = describe(
        source.flags, 'int8', dict(kind=source.kind, path=source.path, sha256=source.sha256),
        calibration=dict(mode=args.calib_mode, batches=calibration.images // args.batch_size,
                         batch_size=args.batch_size, images=calibration.images,
                         records=rec_path, first_batch_agreement=share),
        keep_fp32=keep, quantized_layers=quantized_layers(quantized),
        quantization=dict(api='mxnet.contrib.quantization.quantize_net_v2',
                          quantized_dtype='auto', quantize_mode='full',
                          granularity='tensor-wise', sum_fusion=args.sum_fusion,
                          mxnet=mx.__version__))
    files, difference = write_checked(quantized, base, first, description)
    print('%s %s (%s, depth %s, widen %s; %s) quantized to INT8 in %.1f s: %d INT8 '
          'operators, fp32 kept: %s' % (source.kind, source.path, source.flags['network'],
                                       source.flags.get('depth'), source.flags.get('widen_factor'),
                                       source.flags['dataset'], seconds,
                                       description['quantized_layers'], ', '.join(keep) or 'none'))
    print('calibration: %s, %d batches of %d training images from %s; convolution + sum '
          'fusion %s' % (args.calib_mode, calibration.images // args.batch_size,
                         args.batch_size, rec_path, args.sum_fusion))
    print('INT8 and fp32 predict the same class for %.1f%% of the first calibration batch'
          % (100 * share))
    print('MXNet:  %s, %s (re-imported: largest difference %.3g)'
          % (files['symbol'], files['params'], difference))
    print('settings: %s' % files['description'])
    return files


def main(argv=None):
    args = build_parser().parse_args(argv)
    cli.prepare_mxnet(sum_fusion=args.sum_fusion == 'on')   # before MXNet starts
    keep = check_args(args)
    os.environ.setdefault('MXNET_SUBGRAPH_VERBOSE', '0')   # not "backend MKLDNN is activated"
    from inference.quantizing import check_backend
    check_backend()
    quantize_source(checkpoint_source(args), args, keep)
    return 0
