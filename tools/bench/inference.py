"""Inference images/s of one exported network: MXNet plain, MXNet optimize_for, onnxruntime.

    python tools/bench_inference.py --network cross --depth 26 --batch-size 64
    python tools/bench_inference.py snapshot/fashion-mnist/cross/cross_d26w1_exp1.txt

The network (a checkpoint, or drawn weights for --network/--depth/--dataset) is exported
once to MXNet's symbol + params and to ONNX; the three runtimes then score the same batch
of the same exported network: the symbol hybridized as it is, the symbol rewritten by
optimize_for(backend='MKLDNN') (MXNet's fused CPU graph), and the ONNX model in
onnxruntime. Prints the best of --repeats timed passes per runtime, and how far each one's
outputs are from the plain MXNet ones; asserts nothing. Needs requirements-export.txt.
"""
import os
import tempfile

from common.errors import ArgumentParser, UserError
from engine.flags import check_network_size
from inference import cli


def build_parser():
    parser = ArgumentParser(prog='tools/bench_inference.py',
                            description=__doc__.split('\n')[0])
    cli.add_checkpoint_args(parser)
    parser.add_argument('--network', default='cross', help='without a checkpoint')
    parser.add_argument('--depth', type=int, default=26, help='without a checkpoint')
    parser.add_argument('--widen-factor', type=int, default=1, help='without a checkpoint')
    parser.add_argument('--dataset', default='fashion-mnist',
                        help='input shape and classes, without a checkpoint')
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=10, help='timed passes per runtime')
    return parser


def network_of(args):
    """(net with weights, its input shape): the checkpoint's, or freshly drawn."""
    import network
    from data.datasets import DATASETS
    from inference.model import build_net, input_shape, load_net
    if args.run or args.checkpoint:
        checkpoint = cli.checkpoint_of(args)
        return load_net(checkpoint), input_shape(checkpoint.flags)
    if args.dataset not in DATASETS:
        raise UserError('--dataset %s is not one of %s' % (args.dataset, ', '.join(DATASETS)))
    spec = DATASETS[args.dataset]
    try:
        canonical = network.resolve_name(args.network)
    except ValueError as err:
        raise UserError(str(err))
    if not network.SPECS[canonical].input_shape:
        check_network_size(args.depth, args.widen_factor, spec['num_classes'],
                           data_shape=spec['data_shape'])   # what train_model.py refuses
    flags = dict(network=args.network, depth=args.depth, widen_factor=args.widen_factor,
                 num_classes=spec['num_classes'], dataset=args.dataset,
                 data_shape=spec['data_shape'])
    net = build_net(flags)
    shape = input_shape(flags)
    return network.initialize(net, shape), shape


def rate(run, batch_size, repeats):
    """Images per second: best of `repeats` timed calls of run() after a warm-up call."""
    import time
    run()
    best = float('inf')
    for _ in range(repeats):
        tic = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - tic)
    return batch_size / best


def main(argv=None):
    args = build_parser().parse_args(argv)
    if min(args.batch_size, args.repeats) < 1:
        raise UserError('--batch-size and --repeats must be at least 1')
    cli.prepare_mxnet()
    import mxnet as mx
    from inference import exporting
    from inference.model import fused
    net, shape = network_of(args)
    batch = exporting.sample_batch(shape, args.batch_size)
    with tempfile.TemporaryDirectory(prefix='bench-inference-') as folder:
        symbol, params = exporting.export_mxnet(net, shape, os.path.join(folder, 'net'))
        session = exporting.onnx_session(exporting.export_onnx(
            symbol, params, shape, os.path.join(folder, 'net.onnx')))
        plain = exporting.import_mxnet(symbol, params)
        plain.hybridize(static_alloc=True, static_shape=True)
        data = mx.nd.array(batch)
        optimized = fused(exporting.import_mxnet(symbol, params), data)
        runtimes = [('MXNet plain', plain), ('MXNet optimize_for', optimized)]
        expected = exporting.outputs_of(plain(data))
        print('%s, input %d x %s, %d threads' % (
            args.run or args.checkpoint or '%s depth %d widen %d (drawn weights)' % (
                args.network, args.depth, args.widen_factor),
            args.batch_size, ' x '.join(map(str, shape)), int(os.environ['OMP_NUM_THREADS'])))
        for name, block in runtimes:
            if block is None:
                print('%-20s  unavailable: MXNet could not build the fused graph' % name)
                continue
            outputs = lambda: exporting.outputs_of(block(data))  # noqa: E731
            print('%-20s %9.1f img/s   max |difference| %.3g' % (
                name, rate(outputs, args.batch_size, args.repeats),
                exporting.max_difference(expected, outputs())))
        run = lambda: exporting.run_onnx(session, batch)  # noqa: E731
        print('%-20s %9.1f img/s   max |difference| %.3g' % (
            'onnxruntime', rate(run, args.batch_size, args.repeats),
            exporting.max_difference(expected, run())))
    return 0

