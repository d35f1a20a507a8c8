"""What tools/benchmark.py measures, one measurement per worker process.

Each `measure_*` runs in a fresh process started by the benchmark (so its peak RSS is its
own, and MXNet's environment is set before mxnet is imported) and returns a dict of
figures; the benchmark prints and saves them. FLOPs come from the network's graph.
"""
import json
import os
import resource
import statistics
import tempfile
import time

import numpy as np

# How a measurement process marks its one line of figures on stdout.
RESULT_PREFIX = 'BENCH-RESULT '
# And where the profiled steps start and end in oneDNN's verbose log.
PROFILE_START, PROFILE_END = 'BENCH-PROFILE-START', 'BENCH-PROFILE-END'

# Images of the synthetic record sets the loop and evaluation read.
CIFAR_SHAPES = {(3, 32, 32): 'cifar10', (1, 28, 28): 'fashion-mnist'}


def peak_rss_mib():
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def median(values):
    return statistics.median(values) if values else None


# ---------------------------------------------------------------- the network and its FLOPs

def build_net(options, cpu_kernels=True):
    """The named network, initialised as training does, its parameters' shapes known, with
    the CPU kernels that training and inference swap in (network/onednn.py), or without
    them (`cpu_kernels=False`: the graph that optimize_for and the quantization fuse
    themselves)."""
    import mxnet as mx

    import network
    from network import onednn
    net = network.get_net(options['network'], depth=options['depth'],
                          widen_factor=options['widen_factor'],
                          num_classes=options['num_classes'])
    if cpu_kernels:
        onednn.fuse_where_available(net, [mx.cpu()])
    return network.initialize(net, options['shape'])


def graph_flops(net, shape):
    """Forward FLOPs of one image: 2 x the multiply-adds of every Convolution and
    FullyConnected node of the network's symbol, from its inferred shapes (BatchNorm, ReLU,
    pooling and additions are left out: they are a few percent and memory-bound)."""
    import network
    symbol = network.to_symbol(net)
    internals = symbol.get_internals()
    arg_shapes, out_shapes, _ = internals.infer_shape(data=(1,) + tuple(shape))
    args = dict(zip(internals.list_arguments(), arg_shapes))
    outs = dict(zip(internals.list_outputs(), out_shapes))
    nodes = json.loads(symbol.tojson())['nodes']
    macs = 0
    for node in nodes:
        if node['op'] not in ('Convolution', 'FullyConnected'):
            continue
        weight = args[nodes[node['inputs'][1][0]]['name']]
        out = outs[node['name'] + '_output']
        per_output = 1
        for dim in weight[1:]:
            per_output *= dim
        count = 1
        for dim in out[1:]:
            count *= dim
        macs += count * per_output
    return 2 * macs


# ---------------------------------------------------------------- timing

def timed(run, steps, warmup, sync):
    """Seconds per call of run() over `steps` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        run()
    sync()
    tic = time.perf_counter()
    for _ in range(steps):
        run()
    sync()
    return (time.perf_counter() - tic) / steps


def measure_peak(options):
    """Measured fp32 peak: the best of several large single-precision GEMMs through
    oneDNN's sgemm (MXNet's FullyConnected, the library the convolutions run on) with the
    benchmark's threads. Not mx.nd.dot: the pip wheel's dot goes through OpenBLAS, which
    reached a sixth of oneDNN's rate here and made the networks look above 100% of peak."""
    import mxnet as mx
    n = options['gemm_size']
    a, b = mx.nd.random.uniform(shape=(n, n)), mx.nd.random.uniform(shape=(n, n))
    best = min(timed(lambda: mx.nd.FullyConnected(a, b, num_hidden=n, no_bias=True), 1, 1,
                     mx.nd.waitall) for _ in range(5))
    return dict(gflops=2.0 * n ** 3 / best / 1e9,
                method='oneDNN sgemm (FullyConnected) %dx%d x %dx%d, best of 5'
                % (n, n, n, n))


# ---------------------------------------------------------------- MXNet measurements

def _batch(options):
    import mxnet as mx
    shape = (options['batch_size'],) + tuple(options['shape'])
    data = mx.nd.random.normal(shape=shape)
    label = mx.nd.array([i % options['num_classes'] for i in range(options['batch_size'])])
    return data, label


def training_step(options):
    """(net, one-step function): the port's step as fit.py runs it: hybridized static net,
    the original's Nesterov update, the training loss."""
    import mxnet as mx
    from mxnet import autograd, gluon

    from engine.loss import training_loss
    from engine.optim import OriginalNAG
    net = build_net(options)
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(),
                            OriginalNAG(learning_rate=0.01, momentum=0.9, wd=1e-4))
    data, label = _batch(options)

    def step():
        with autograd.record():
            objective, _ = training_loss(net(data), label, 'sum')
        autograd.backward([objective])
        trainer.step(options['batch_size'])
    return net, step, mx.nd.waitall


def measure_step(options):
    _, step, sync = training_step(options)
    seconds = timed(step, options['steps'], options['warmup'], sync)
    return dict(img_s=options['batch_size'] / seconds)


def calibration_arrays(options):
    """The INT8 calibration batches, MXNet's and PyTorch's alike: `calib_batches` seeded
    normal batches (the networks' normalised scale) of `calib_batch_size` images."""
    rng = np.random.default_rng(0)
    shape = (options['calib_batch_size'],) + tuple(options['shape'])
    return [rng.standard_normal(shape).astype(np.float32)
            for _ in range(options['calib_batches'])]


def inference_net(options, kind, data):
    """The network as an inference kind runs it on `data`: 'infer' the training graph in
    inference mode (hybridized, static, BatchNorm+ReLU fused as in training), 'fused'
    MXNet's fused CPU graph (optimize_for), 'int8' quantized by tools/quantize.py's code,
    calibrated on calibration_arrays."""
    import mxnet as mx

    from inference import model, quantizing
    if kind == 'infer':
        net = build_net(options)
        net.hybridize(static_alloc=True, static_shape=True)
        return net
    if kind == 'fused':
        net = model.fused(build_net(options, cpu_kernels=False), data)
        if net is None:
            raise RuntimeError('MXNet could not build the fused graph')
        return net
    arrays = calibration_arrays(options)
    calibration = quantizing.CalibrationBatches([(mx.nd.array(a), None) for a in arrays],
                                                len(arrays), arrays[0].shape)
    net = quantizing.quantize(build_net(options, cpu_kernels=False), calibration,
                              options['calib_mode'], options['keep_fp32'])
    net.hybridize(static_alloc=True, static_shape=True)
    return net


def measure_inference(options, kind):
    import mxnet as mx

    import network
    data, _ = _batch(options)
    net = inference_net(options, kind, data)
    seconds = timed(lambda: network.mean_prediction(net(data)), options['steps'],
                    options['warmup'], mx.nd.waitall)
    return dict(img_s=options['batch_size'] / seconds)


def measure_eval(options):
    """engine.evaluate over the synthetic test records (reading and scoring included)."""
    import mxnet as mx

    from data.iterators import get_iterators
    from engine.evaluate import evaluate
    net = build_net(options)
    net.hybridize(static_alloc=True, static_shape=True)
    size = options['batch_size']
    _, val_it = get_iterators(CIFAR_SHAPES[tuple(options['shape'])], options['data_dir'],
                              batch_size=size, test_batch_size=size)
    evaluate(net, val_it, [mx.cpu()], size, top5=False)   # warm-up pass: graph, reader
    tic = time.perf_counter()
    sums = evaluate(net, val_it, [mx.cpu()], size, top5=False)
    return dict(img_s=sums['n'] / (time.perf_counter() - tic), images=int(sums['n']))


def measure_loop(options):
    """train_model.py itself, in this process, on the synthetic records: the training
    images per second of its last epoch (the first one builds the graph)."""
    import train_model
    dataset = CIFAR_SHAPES[tuple(options['shape'])]
    with tempfile.TemporaryDirectory(prefix='bench-loop-') as log_dir:
        argv = ['--dataset', dataset, '--data-dir', options['data_dir'], '--log-dir', log_dir,
                '--network', options['network'], '--depth', str(options['depth']),
                '--widen-factor', str(options['widen_factor']), '--cpu',
                '--batch-size', str(options['batch_size']), '--num-epochs', '2',
                '--num-examples', str(options['loop_images']), '--no-progress',
                '--rand-seed', '1']
        args = train_model.parse(argv)
        result = train_model.run(args)
    batches = -(-options['loop_images'] // options['batch_size'])
    return dict(img_s=batches * options['batch_size'] / result['time_cost'],
                val_acc=result['val_acc'], epochs=2)


def profiled_run(options):
    """(one call to profile, sync): the training step, or one inference pass of the kind
    options['profile_kind'] names."""
    import mxnet as mx

    import network
    kind = options.get('profile_kind', 'step')
    if kind == 'step':
        _, step, sync = training_step(options)
        return step, sync
    data, _ = _batch(options)
    net = inference_net(options, kind, data)
    return (lambda: network.mean_prediction(net(data))), mx.nd.waitall


def measure_profile(options):
    """Aggregate operator times of a few training steps (or inference passes) from MXNet's
    profiler."""
    import mxnet as mx
    step, sync = profiled_run(options)
    for _ in range(options['warmup']):
        step()
    sync()
    mark_stdout(PROFILE_START)
    with tempfile.TemporaryDirectory(prefix='bench-profile-') as folder:
        mx.profiler.set_config(profile_all=True, aggregate_stats=True,
                               filename=os.path.join(folder, 'profile.json'))
        mx.profiler.set_state('run')
        seconds = timed(step, options['steps'], 0, sync)
        mx.profiler.set_state('stop')
        mark_stdout(PROFILE_END)
        stats = json.loads(mx.profiler.dumps(reset=True, format='json'))
    return dict(operators=operator_table(stats), steps=options['steps'],
                wall_ms_per_step=1000 * seconds)


def operator_table(stats):
    """[{name, calls, total_ms}] of every operator the profiler saw, slowest first."""
    rows = {}
    for domain, entries in stats.get('Time', {}).items():
        for name, entry in entries.items():
            row = rows.setdefault(name, dict(name=name, calls=0, total_ms=0.0, domain=domain))
            row['calls'] += entry.get('Count', 0)
            row['total_ms'] += entry.get('Total', 0.0)
    return sorted(rows.values(), key=lambda row: -row['total_ms'])


def mark_stdout(marker):
    """A line on stdout after everything C code has printed so far (oneDNN's verbose log
    goes through C's buffered stdout, not Python's)."""
    import ctypes
    ctypes.CDLL(None).fflush(None)
    os.write(1, (marker + '\n').encode())


def count_onednn_lines(text):
    """From oneDNN's verbose log of the profiled steps (between the markers): executions
    per primitive kind, BatchNorm backward runs on the reference (fallback) kernel, runs of
    any primitive on a reference kernel (per kind), and reorders."""
    kinds, fallback, reference = {}, 0, {}
    text = text.split(PROFILE_START + '\n')[-1].split(PROFILE_END + '\n')[0]
    for line in text.splitlines():
        fields = line.split(',')
        if len(fields) < 6 or not fields[0].endswith('_verbose') or fields[1] != 'exec':
            continue
        kind, impl, direction = fields[3], fields[4], fields[5]
        kinds[kind] = kinds.get(kind, 0) + 1
        if 'ref' in impl.split(':')[0]:     # ref:any, bnorm_ref:any (not jit:uni, simple:any)
            reference[kind] = reference.get(kind, 0) + 1
            if kind == 'batch_normalization' and 'backward' in direction:
                fallback += 1
    return dict(by_kind=kinds, bn_backward_ref=fallback, reference_kernels=reference,
                reorders=kinds.get('reorder', 0))


# ---------------------------------------------------------------- synthetic records

def write_cifar_records(folder, shape, count, test_count):
    """Photo-like records of `shape` in the official format (data.prepare's writer)."""
    from data import synthetic
    channels, height, width = shape
    images = synthetic.smooth_images(count + test_count, height, width, channels=channels)
    labels = np.arange(count + test_count) % 10
    synthetic.write_record_dataset(folder, CIFAR_SHAPES[tuple(shape)],
                                   (images[:count], labels[:count]),
                                   (images[count:], labels[count:]), workers=1)
    return folder


def write_imagenet_records(folder, count):
    """ImageNet-like records as data.prepare writes them: a class-folder tree of photo-like
    JPEGs of assorted sizes, converted (short side 480, quality 95)."""
    import cv2

    from data import imagenet, synthetic
    tree = os.path.join(folder, 'tree')
    sizes = [(500, 375), (375, 500), (640, 480), (480, 640)]
    for split, n in (('train', count), ('val', 8)):
        for i in range(n):
            wnid = 'n%02d' % (i % 4)
            os.makedirs(os.path.join(tree, split, wnid), exist_ok=True)
            height, width = sizes[i % len(sizes)]
            image = synthetic.smooth_images(1, height, width, seed=i)[0]
            cv2.imwrite(os.path.join(tree, split, wnid, '%d.JPEG' % i), image,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
    records = os.path.join(folder, 'records')
    imagenet.convert(tree, records, workers=1)
    return records


def measure_pipeline(options):
    """The ImageNet training iterator (decode, random-resized crop, HSL jitter, mirror) at
    224: images per second with `threads` decoding threads, over whole passes."""
    from data.iterators import get_iterators
    threads = options['threads']
    train_it, _ = get_iterators('imagenet', options['data_dir'],
                                batch_size=options['batch_size'],
                                test_batch_size=options['batch_size'], threads=threads,
                                num_classes=4)
    for data, _ in train_it:   # warm-up pass: the reader starts its threads
        pass
    images, tic = 0, time.perf_counter()
    for _ in range(options['passes']):
        for data, _ in train_it:
            images += data.shape[0]
    data.wait_to_read()
    rate = images / (time.perf_counter() - tic)
    return dict(img_s=rate, img_s_per_thread=rate / threads, threads=threads)


MEASURES = dict(peak=measure_peak, step=measure_step,
                infer=lambda options: measure_inference(options, 'infer'),
                fused=lambda options: measure_inference(options, 'fused'),
                int8=lambda options: measure_inference(options, 'int8'),
                eval=measure_eval, loop=measure_loop, profile=measure_profile,
                pipeline=measure_pipeline)
