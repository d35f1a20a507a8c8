"""The PyTorch reference of tools/benchmark.py --compare: cross (DFN-MR) and resnet.

Run by the benchmark in a separate process (`tools/benchmark.py --worker step|infer|int8
--torch`), never imported by training: torch is an optional extra (requirements-bench.txt
pins the version the figures were taken with). The networks have the same layers,
shapes and FLOPs as network/cross.py and network/resnet.py (conv units conv -> BN -> ReLU,
3x3 convs, 1x1/2 projection shortcuts, global average pooling, one Dense); the weights are
PyTorch's defaults, which do not change the speed. The step is plain torch.optim.SGD with
Nesterov momentum and weight decay (the same work per parameter as OriginalNAG).

int8 is PyTorch's own post-training quantization of the eager network: FX graph mode
(prepare_fx, calibration passes, convert_fx) on the x86 backend, calibrated on the same
batches as MXNet's INT8 network (benchlib.calibration_arrays), with the same layers kept in
fp32. Naive calibration takes each activation's observed min and max (MinMaxObserver), as
MXNet's does; entropy takes the x86 default, a histogram search for the range of least
error (HistogramObserver), PyTorch's nearest to MXNet's KL-divergence search. Weights are
per-channel, the x86 default.
"""
import os

import torch
from torch import nn

from tools.bench import lib as benchlib

BN_EPSILON = 2e-5
BN_MOMENTUM = 0.1    # PyTorch's momentum is 1 - MXNet's 0.9


def conv_unit(kin, kout, kernel, stride, relu):
    layers = [nn.Conv2d(kin, kout, kernel, stride, kernel // 2, bias=False),
              nn.BatchNorm2d(kout, eps=BN_EPSILON, momentum=BN_MOMENTUM)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def two(kin, kout):
    """3x3 unit (stride 2 when the channels change) with ReLU, then 3x3 unit without."""
    return nn.Sequential(conv_unit(kin, kout, 3, 1 if kin == kout else 2, True),
                         conv_unit(kout, kout, 3, 1, False))


def zero(kin, kout):
    return nn.Identity() if kin == kout else conv_unit(kin, kout, 1, 2, False)


class ResBlock(nn.Module):
    def __init__(self, kin, kout, last=False):
        super().__init__()
        self.short, self.body = zero(kin, kout), two(kin, kout)

    def forward(self, x):
        return torch.relu(self.short(x) + self.body(x))


class CrossBlock(nn.Module):
    """Merge-and-run: m = (zero1(x1) + zero2(x2)) / 2, each stream relu(m + two(x))."""

    def __init__(self, kin, kout, last=False):
        super().__init__()
        self.last = last
        self.short1, self.short2 = zero(kin, kout), zero(kin, kout)
        self.body1, self.body2 = two(kin, kout), two(kin, kout)

    def forward(self, streams):
        x1, x2 = streams
        m = 0.5 * (self.short1(x1) + self.short2(x2))
        if self.last:
            return torch.relu(m + self.body1(x1) + self.body2(x2))
        return torch.relu(m + self.body1(x1)), torch.relu(m + self.body2(x2))


class CifarNet(nn.Module):
    def __init__(self, block, blocks, widen_factor, num_classes, in_channels):
        super().__init__()
        w = widen_factor
        channels = [(16 * w, 16 * w), (16 * w, 32 * w), (32 * w, 64 * w)]
        self.streams = 2 if block is CrossBlock else 1
        self.stem = conv_unit(in_channels, 16 * w, 3, 1, True)
        layers = []
        for g, (n, (kin, kout)) in enumerate(zip(blocks, channels)):
            for b in range(n):
                last = g == len(blocks) - 1 and b == n - 1
                layers.append(block(kin if b == 0 else kout, kout, last))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(channels[-1][1], num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = self.features((x, x) if self.streams == 2 else x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def build(options):
    block = dict(cross=CrossBlock, resnet=ResBlock)[options['network']]
    return CifarNet(block, options['blocks'], options['widen_factor'],
                    options['num_classes'], options['shape'][0])


# MXNet's --keep-fp32 names -> the modules of CifarNet they are
KEPT_MODULES = dict(first='stem', classifier='fc')


def quantized(net, options):
    """`net` (eval mode) quantized by FX graph mode post-training quantization (x86)."""
    from torch.ao.quantization import (MinMaxObserver, QConfig, QConfigMapping,
                                       get_default_qconfig, get_default_qconfig_mapping)
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    torch.backends.quantized.engine = 'x86'
    if options['calib_mode'] == 'naive':
        default = get_default_qconfig('x86')
        mapping = QConfigMapping().set_global(QConfig(
            activation=MinMaxObserver.with_args(reduce_range=True), weight=default.weight))
    else:
        mapping = get_default_qconfig_mapping('x86')
    for name in options['keep_fp32']:
        mapping.set_module_name(KEPT_MODULES[name], None)
    arrays = benchlib.calibration_arrays(options)
    prepared = prepare_fx(net, mapping, (torch.from_numpy(arrays[0]),))
    with torch.no_grad():
        for array in arrays:
            prepared(torch.from_numpy(array))
    return convert_fx(prepared)


def measure(kind, options):
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', os.cpu_count() or 1)))
    torch.manual_seed(0)
    net = build(options)
    size = options['batch_size']
    data = torch.randn((size,) + tuple(options['shape']))
    label = torch.arange(size) % options['num_classes']
    if kind in ('infer', 'int8'):
        net.eval()
        if kind == 'int8':
            net = quantized(net, options)

        def run():
            with torch.no_grad():
                net(data)
    else:
        optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True,
                                    weight_decay=1e-4)
        loss_fn = nn.CrossEntropyLoss()

        def run():
            optimizer.zero_grad(set_to_none=True)
            loss_fn(net(data), label).backward()
            optimizer.step()
    seconds = benchlib.timed(run, options['steps'], options['warmup'], lambda: None)
    return dict(img_s=size / seconds, torch_version=torch.__version__)

