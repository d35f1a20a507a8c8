"""A checkpoint's network, ready for inference: plain hybridized, or MXNet's fused CPU graph.

MXNet 1.9.1 fuses convolution + BatchNorm + ReLU for the CPU through
`optimize_for(backend='MKLDNN')` (the name 'ONEDNN' is not registered in 1.9.1). Its
convolution + sum fusion breaks the merge-and-run graph (shape errors), so the scripts set
MXNET_DISABLE_MKLDNN_FUSE_CONV_SUM=1; MXNet reads it once, when it is imported.
"""
import os
import time

import mxnet as mx
import numpy as np

import network
from common.errors import UserError
from inference.cli import FUSE_SUM_ENV
from data.datasets import DATASETS
from engine.checkpoint import load_params
from network import onednn

FUSED_BACKEND = 'MKLDNN'
FUSE_ENV = FUSE_SUM_ENV


def input_shape(flags):
    """(channels, height, width) the run's network saw."""
    spec = DATASETS[flags['dataset']]
    return spec['channels'], flags['data_shape'], flags['data_shape']


def build_net(flags):
    try:
        return network.get_net(flags['network'], num_classes=flags['num_classes'],
                               depth=flags['depth'], widen_factor=flags['widen_factor'])
    except (KeyError, ValueError) as err:
        raise UserError('the run\'s flags do not name a network (%s)' % err)


def load_net(checkpoint, ctx=None):
    """The checkpoint's network with its weights, not yet hybridized.

    The weights file is checked as training checks it (engine.checkpoint.load_params): a
    truncated, foreign or other network's file is one line naming what is wrong. The check
    needs every parameter's shape, so the network first runs one zero image.
    """
    ctx = ctx or mx.cpu()
    from inference.pretrained import Pretrained, load_pretrained
    if isinstance(checkpoint, Pretrained):   # its own checked loader (network/zoo.py)
        return load_pretrained(checkpoint, ctx)
    net = build_net(checkpoint.flags)
    # placeholders, as on a resume: load_params replaces them all
    network.initialize(net, input_shape(checkpoint.flags), mx.init.Zero(), ctx)
    load_params(net, checkpoint.params_path, ctx)
    return net


def plain(net, batch):
    """`net` hybridized as training runs it (on the CPU with BatchNorm+ReLU fused: the same
    numbers, network/onednn.py)."""
    onednn.fuse_where_available(net, [batch.context])
    net.hybridize(static_alloc=True, static_shape=True)
    net(batch)
    return net


def fused(net, batch):
    """`net` rewritten in place into MXNet's fused CPU graph; None when MXNet cannot."""
    try:
        net.optimize_for(batch, backend=FUSED_BACKEND, static_alloc=True, static_shape=True)
        network.mean_prediction(net(batch)).wait_to_read()
    except mx.base.MXNetError:
        return None
    return net


def images_per_second(net, batch, repeats=3):
    """Best of `repeats` timed passes over one batch, after a warm-up pass."""
    network.mean_prediction(net(batch)).wait_to_read()
    best = float('inf')
    for _ in range(repeats):
        tic = time.perf_counter()
        network.mean_prediction(net(batch)).wait_to_read()
        best = min(best, time.perf_counter() - tic)
    return batch.shape[0] / best


def choose_path(make_net, batch, mode='auto'):
    """The net to run and a report of both paths on `batch` (img/s, same predictions).

    mode 'auto' takes the fused graph where it is faster AND predicts the same classes;
    'fused' takes it whenever MXNet can build it; 'plain' never tries it.
    """
    report = dict(plain=None, fused=None, same=None, path='plain')
    reference = plain(make_net(), batch)
    if mode == 'plain':
        return reference, report
    candidate = fused(make_net(), batch)
    if candidate is None:
        report['path'] = 'plain (fused graph unavailable: set %s=1 before MXNet starts)' \
            % FUSE_ENV if os.environ.get(FUSE_ENV) != '1' else 'plain (fused graph failed)'
        return reference, report
    expected = network.mean_prediction(reference(batch)).asnumpy().argmax(axis=1)
    got = network.mean_prediction(candidate(batch)).asnumpy().argmax(axis=1)
    report['same'] = bool(np.array_equal(expected, got))
    report['plain'] = images_per_second(reference, batch)
    report['fused'] = images_per_second(candidate, batch)
    if mode == 'fused' or (report['same'] and report['fused'] > report['plain']):
        report['path'] = 'fused'
        return candidate, report
    return reference, report


def describe(report):
    """One line for the user: which path ran and why."""
    if report['fused'] is None:
        return 'inference path: %s' % report['path']
    return ('inference path: %s (plain %.1f img/s, fused %.1f img/s, same predictions: %s)'
            % (report['path'], report['plain'], report['fused'],
               'yes' if report['same'] else 'no'))
