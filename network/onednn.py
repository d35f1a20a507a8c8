"""Faster CPU kernels for the same function: BatchNorm and ReLU as one oneDNN operator.

Every conv unit with a ReLU (`blocks.ConvUnit`) runs Conv2D -> BatchNorm -> Activation.
MXNet 1.9.1 also has `BatchNormWithReLU`, oneDNN's batch normalization with the ReLU folded
in: the same numbers bit for bit (outputs, gradients and running statistics, training and
test mode; tests/test_onednn.py checks every network), one pass over the activation instead
of two forward, and the ReLU's backward folded into BatchNorm's. Measured on DFN-MR-110,
batch 128 at 3x32x32, 2 threads: see docs/performance.md.

It exists only on the CPU and only with oneDNN (no GPU kernel, no fallback; ONNX export does
not know it), so the training engine swaps it in for CPU runs alone, after building the
network. The swap keeps the parameters themselves (names, structural names in checkpoints,
values): a checkpoint written by a fused network loads into an unfused one and back.
"""
import os

import mxnet as mx
from mxnet.gluon import nn

from .blocks import ConvUnit, walk


def available(contexts):
    """True when every context is the CPU and MXNet runs oneDNN (built with it, and not
    switched off with MXNET_MKLDNN_ENABLED=0, where the fused operator has no kernel)."""
    if not all(ctx.device_type == 'cpu' for ctx in contexts):
        return False
    if os.environ.get('MXNET_MKLDNN_ENABLED', '1').strip().lower() in ('0', 'false'):
        return False
    return mx.runtime.Features().is_enabled('MKLDNN')


def _fuse_unit(unit):
    """Replace the unit's BatchNorm and Activation by one BatchNormReLU on the same
    parameters, under the BatchNorm's key (so structural names do not change)."""
    _, bn_key, act_key = list(unit._children)   # Conv2D, BatchNorm, Activation
    bn = unit._children[bn_key]
    fused = nn.BatchNormReLU(prefix=bn.prefix, params=bn.params, **_bn_flags(bn))
    unit._children[bn_key] = fused
    del unit._children[act_key]


def _bn_flags(bn):
    flags = bn._kwargs
    return dict(axis=flags['axis'], momentum=flags['momentum'], epsilon=flags['eps'],
                scale=not flags['fix_gamma'], use_global_stats=flags['use_global_stats'])


def fuse_bn_relu(net):
    """Fuse BatchNorm and ReLU in every conv unit of `net` that ends with a ReLU, except
    the network's last conv unit; returns how many were fused. Call before hybridizing."""
    units = [block for block in walk(net) if isinstance(block, ConvUnit)]
    # The last unit of `plain` feeds the head, whose `x * 1` hands back a plain-layout
    # gradient; oneDNN then finds no fused backward kernel ("could not create a primitive
    # descriptor iterator" at 28x28 and 32x32). That unit stays unfused.
    units = [unit for unit in units[:-1] if unit.relu and len(unit._children) == 3]
    for unit in units:
        _fuse_unit(unit)
    return len(units)


def fuse_where_available(net, contexts):
    """`fuse_bn_relu(net)` when `contexts` allow it (available()), else leave `net` as it is;
    returns how many units were fused. What training, inference and the benchmark call."""
    return fuse_bn_relu(net) if available(contexts) else 0
