#!/usr/bin/env python
"""Training throughput: the whole train_model.py against the bare training step.

    python tools/bench_train.py [--network cross --depth 26 --batch-size 64 --epochs 1]

The bare step is forward, backward and the Nesterov update of the same network on one
batch held in memory; the script adds reading and augmenting records, metrics, logging and
the progress line. Both run with the environment train_model.py sets for the CPU. Prints
images per second of each and the script's overhead. Needs the prepared data set
(python -m data.prepare fashion-mnist).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--network', default='cross')
    parser.add_argument('--depth', type=int, default=26)
    parser.add_argument('--batch-size', type=int, default=64)
    parser.add_argument('--dataset', default='fashion-mnist')
    parser.add_argument('--data-dir', default=None)
    parser.add_argument('--epochs', type=int, default=1,
                        help='epochs of the whole script to time')
    parser.add_argument('--steps', type=int, default=200, help='bare steps to time')
    return parser.parse_args()


def bare_step_rate(args, channels, size):
    import mxnet as mx
    from mxnet import autograd, gluon

    import network
    from engine.optim import OriginalNAG
    net = network.get_net(args.network, depth=args.depth)
    net.initialize(network.original_initializer())
    net(mx.nd.zeros((1, channels, size, size)))
    net.hybridize(static_alloc=True, static_shape=True)
    trainer = gluon.Trainer(net.collect_params(),
                            OriginalNAG(learning_rate=0.01, momentum=0.9, wd=1e-4))
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    data = mx.nd.random.normal(shape=(args.batch_size, channels, size, size))
    label = mx.nd.array([i % 10 for i in range(args.batch_size)])
    warmup = 20
    for step in range(warmup + args.steps):
        if step == warmup:
            mx.nd.waitall()
            tic = time.time()
        with autograd.record():
            loss = loss_fn(net(data), label)
        loss.backward()
        trainer.step(args.batch_size)
    mx.nd.waitall()
    return args.steps * args.batch_size / (time.time() - tic)


def script_rate(args, data_dir):
    """Training images per second of train_model.py, from its own `Time cost` lines."""
    with tempfile.TemporaryDirectory() as log_dir:
        command = [sys.executable, os.path.join(ROOT, 'train_model.py'),
                   '--dataset', args.dataset, '--data-dir', data_dir, '--log-dir', log_dir,
                   '--network', args.network, '--depth', str(args.depth), '--cpu',
                   '--batch-size', str(args.batch_size), '--num-epochs', str(args.epochs),
                   '--no-progress', '--rand-seed', '1']
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(proc.stderr.strip().splitlines()[-1])
        costs = [float(x) for x in re.findall(r'Time cost=(\S+)', proc.stderr)]
        accuracy = re.findall(r'Validation-accuracy=(\S+)', proc.stderr)[-1]
    from data.recordfile import read_offsets
    count = len(read_offsets(os.path.join(data_dir, 'train.rec')))
    batches = -(-count // args.batch_size)
    return batches * args.batch_size * len(costs) / sum(costs), float(accuracy)


def main():
    args = parse_args()
    from engine import runtime
    from data.datasets import DATASETS
    runtime.configure(argparse.Namespace(cpu=True, gpus=None, kv_store='device'))
    spec = DATASETS[args.dataset]
    data_dir = args.data_dir or os.path.join(ROOT, 'data', args.dataset)
    if not os.path.exists(os.path.join(data_dir, 'train.rec')):
        sys.exit('error: no %s/train.rec; run python -m data.prepare %s'
                 % (data_dir, args.dataset))
    print('%s d%d, batch %d, %s, %s threads, engine %s' % (
        args.network, args.depth, args.batch_size, args.dataset,
        os.environ.get('OMP_NUM_THREADS'), os.environ.get('MXNET_ENGINE_TYPE', 'default')))
    bare = bare_step_rate(args, spec['channels'], spec['data_shape'])
    print('bare training step:      %8.1f img/s' % bare)
    whole, accuracy = script_rate(args, data_dir)
    print('train_model.py (epochs): %8.1f img/s  (test accuracy %.4f after %d epoch(s))'
          % (whole, accuracy, args.epochs))
    print('script overhead:         %7.1f%%' % (100 * (1 - whole / bare)))


if __name__ == '__main__':
    main()
