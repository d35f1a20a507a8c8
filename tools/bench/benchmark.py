"""One benchmark for the whole pipeline: training step, training loop, evaluation, inference.

    python tools/benchmark.py                          # cross d110, batch 128, 3x32x32
    python tools/benchmark.py --network resnet --depth 110 --compare --json out.json
    python tools/benchmark.py --network symbol_cross --batch-size 32   # ImageNet net at 224
    python tools/benchmark.py --profile                # top operators, oneDNN fallbacks
    python tools/benchmark.py --pipeline imagenet --threads 1,2,4   # record decoding

Every measurement runs in its own process with the environment train_model.py sets on the
CPU (OMP_NUM_THREADS, NaiveEngine), `--rounds` times, interleaved, and the medians are
reported: img/s, GFLOP/s (FLOPs counted from the network's graph: 2 x the conv and
fully-connected multiply-adds; a training image costs 3 x its forward pass), the share of
the fp32 peak measured with a large MXNet GEMM, and the process's peak RSS.

  step   the port's bare training step: hybridized static net, OriginalNAG, one batch
  loop   train_model.py itself on synthetic records of the official format (data,
         augmentation, metrics, logging): training img/s of its second epoch
  eval   engine.evaluate over the synthetic test records (reading included)
  infer  the hybridized net's forward pass on one batch (the training graph in inference
         mode, BatchNorm+ReLU fused as in training)
  fused  the same in MXNet's fused CPU graph (optimize_for, as tools/evaluate.py runs it)
  int8   the same quantized to INT8 as tools/quantize.py does it, calibrated on
         --calib-batches seeded normal batches (docs/int8.md)
--compare runs a same-architecture PyTorch reference (cross and resnet) right after each
MXNet step and inference process, when torch is installed (requirements-bench.txt): the
eager fp32 network for step and infer, and for int8 PyTorch's own INT8 (FX graph mode
post-training quantization, x86 backend, calibrated on the same batches, the same layers
kept in fp32). Asserts nothing.
"""
import argparse
import json
import os

from common.errors import ArgumentParser
from tools.bench import KINDS


def build_parser():
    parser = ArgumentParser(prog='tools/benchmark.py', description=__doc__.split('\n')[0],
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    net = parser.add_argument_group('network')
    net.add_argument('--network', default='cross')
    net.add_argument('--depth', type=int, default=110)
    net.add_argument('--widen-factor', type=int, default=1)
    net.add_argument('--num-classes', type=int, default=None, help='default: the network\'s')
    net.add_argument('--shape', default=None,
                     help='input C,H,W (default 3,32,32; 3,224,224 for ImageNet networks)')
    net.add_argument('--batch-size', type=int, default=128)
    run = parser.add_argument_group('measurement')
    run.add_argument('--only', default=','.join(KINDS), help='which of %s' % ', '.join(KINDS))
    run.add_argument('--steps', type=int, default=20, help='timed batches per process')
    run.add_argument('--warmup', type=int, default=5, help='untimed batches first')
    run.add_argument('--rounds', type=int, default=3, help='interleaved processes per kind')
    # 64 batches of 128: with 16 (the old default) the epoch's fixed costs (the first batch
    # decoded before any step can run, the iterator's reset) showed as a 6% slower loop on
    # DFN-MR-110 (0.940x the step); with 64 it was 0.984x; a CIFAR epoch has 391
    run.add_argument('--loop-images', type=int, default=8192,
                     help='synthetic training records of the loop (an epoch of them)')
    run.add_argument('--gemm-size', type=int, default=2048,
                     help='side of the square GEMM that measures the fp32 peak')
    run.add_argument('--compare', action='store_true', help='PyTorch eager reference too')
    int8 = parser.add_argument_group('int8')
    int8.add_argument('--calib-batches', type=int, default=10,
                      help='calibration batches (of 64 images) of the INT8 networks')
    int8.add_argument('--calib-mode', choices=('naive', 'entropy'), default='naive')
    int8.add_argument('--keep-fp32', default=None,
                      help="layers the INT8 networks keep in fp32; default tools/quantize.py's")
    int8.add_argument('--sum-fusion', choices=('on', 'off'), default=None,
                      help="oneDNN's convolution + sum fusion in the INT8 networks; default "
                           "tools/quantize.py's")
    run.add_argument('--json', metavar='FILE', help='write every figure to FILE')
    modes = parser.add_argument_group('other modes')
    modes.add_argument('--profile', action='store_true',
                       help='MXNet profiler: top operators of the training step (with --only '
                       'infer, fused or int8: of that inference pass), and oneDNN '
                       'BatchNorm-backward fallbacks and reorders')
    modes.add_argument('--top', type=int, default=15, help='operators --profile prints')
    modes.add_argument('--pipeline', choices=('imagenet', 'cifar'),
                       help='record pipeline only: ImageNet-like JPEG records (480px, '
                       'random-resized crop, HSL jitter) per decoding thread, or the CIFAR '
                       'readers (tools/bench/iterator.py)')
    modes.add_argument('--threads', default='1,2', help='decoding threads for --pipeline')
    modes.add_argument('--pipeline-images', type=int, default=256)
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument('--options', help=argparse.SUPPRESS)
    parser.add_argument('--torch', action='store_true', help=argparse.SUPPRESS)
    return parser


def configure_environment():
    """MXNet's environment as train_model.py sets it on the CPU (before mxnet is imported)."""
    from engine import runtime
    runtime.configure(argparse.Namespace(cpu=True, gpus=None, kv_store='device'))


def worker_main(kind, options, torch=False):
    """Inside a measurement process: one measurement, printed as a JSON line."""
    if torch:   # the PyTorch reference: no MXNet in its process
        from tools.bench import torch_ref
        result = torch_ref.measure(kind, options)
    else:
        from inference import cli
        # before MXNet starts (configure_environment starts it): the fused fp32 graph needs
        # the conv + sum fusion off; INT8 runs as --sum-fusion says
        int8 = 'int8' in (kind, kind == 'profile' and options['profile_kind'])
        cli.prepare_mxnet(options['sum_fusion'] == 'on' if int8 else False)
        configure_environment()
        os.environ.setdefault('MXNET_SUBGRAPH_VERBOSE', '0')
        from tools.bench import lib
        result = lib.MEASURES[kind](options)
    from tools.bench.lib import RESULT_PREFIX, peak_rss_mib
    result['peak_rss_mib'] = peak_rss_mib()
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.worker:
        return worker_main(args.worker, json.loads(args.options), args.torch)
    configure_environment()
    from tools.bench import report
    options = report.options_of(args)
    if args.pipeline:
        return report.pipeline(args, options)
    if args.profile:
        return report.profile(args, options)
    return report.benchmark(args, options)

