"""INT8 post-training quantization of a trained network on the CPU (MXNet 1.9.1, oneDNN).

MXNet's `quantize_net_v2` exports the network's symbol, fuses it for oneDNN
(convolution + BatchNorm + ReLU), inserts quantize / dequantize nodes, runs the fp32 graph
over calibration batches to fix each quantized layer's output range ('naive': the
observed min and max; 'entropy': the range that loses least information, by KL
divergence) and quantizes the weights. The result is a SymbolBlock whose symbol and
parameters are exported like any other network.

The network must be the unfused one (no BatchNormReLU from network/onednn.py): the
quantization pass does its own fusing. Layers named in `keep_fp32` stay in fp32; which
ones are kept by default was measured (docs/int8.md).
"""
import json
import warnings

import mxnet as mx
import numpy as np

from common.errors import UserError
from network import mean_prediction, to_symbol

CALIB_MODES = ('naive', 'entropy')
# What a user may keep in fp32, and the name part that finds its layers (the networks'
# naming convention, network/__init__.py): the first convolution, and the classifier(s).
KEEPABLE = {'first': 'stem_', 'classifier': 'fc_'}


def check_backend():
    """Refuse, in one line, an MXNet build that cannot run INT8 on the CPU."""
    if not mx.runtime.Features().is_enabled('MKLDNN'):
        raise UserError('this MXNet build has no oneDNN (MKLDNN): INT8 inference on the CPU '
                        'needs it (pip install mxnet==1.9.1)')


class CalibrationBatches(mx.io.DataIter):
    """The data of the first `count` batches of `batches` (an iterable of (data, label)
    pairs of equal batch size), as the DataIter quantize_net_v2 reads."""

    def __init__(self, batches, count, shape):
        super().__init__(batch_size=shape[0])
        self._batches, self._count, self._left = batches, count, count
        self._stream = iter(batches)
        self.provide_data = [mx.io.DataDesc('data', tuple(shape))]
        self.provide_label = []
        self.images = 0

    def reset(self):
        self._stream, self._left = iter(self._batches), self._count

    def next(self):
        if self._left <= 0:
            raise StopIteration
        data, _ = next(self._stream)   # StopIteration when the records run out
        if data.shape[0] != self.batch_size:   # a short last batch: the graph is static
            raise StopIteration
        self._left -= 1
        self.images += data.shape[0]
        return mx.io.DataBatch(data=[data])


def _int8_friendly_json(graph):
    """The symbol JSON `graph` (a dict) rewritten for the quantization pass: add_n as a
    chain of elemwise_add, and multiplications by 1 dropped (see int8_graph)."""
    # old node index -> its new index, or (a replaced single-output node) the new entry
    # [node, output, version] that now computes its output
    nodes, where = [], {}

    def entry(old):
        node_id, index, version = old
        target = where[node_id]
        return target if isinstance(target, list) else [target, index, version]

    for old_id, node in enumerate(graph['nodes']):
        inputs = [entry(i) for i in node['inputs']]
        attrs = node.get('attrs', {})
        if node['op'] == '_mul_scalar' and float(attrs.get('scalar', 0)) == 1.0:
            where[old_id] = inputs[0]
            continue
        if node['op'] == 'add_n' and len(inputs) >= 2:
            total = inputs[0]
            for step, term in enumerate(inputs[1:]):
                nodes.append(dict(op='elemwise_add', name='%s_add%d' % (node['name'], step),
                                  inputs=[total, term]))
                total = [len(nodes) - 1, 0, 0]
            where[old_id] = total
            continue
        nodes.append(dict(node, inputs=inputs))
        where[old_id] = len(nodes) - 1
    return dict(nodes=nodes, heads=[entry(h) for h in graph['heads']],
                arg_nodes=[i for i, n in enumerate(nodes) if n['op'] == 'null'],
                attrs=graph.get('attrs', {}))


def int8_graph(net):
    """`net` as a SymbolBlock with the same weights and a graph that quantizes better.

    add_n has no INT8 kernel in MXNet 1.9.1, so every block's sum ran in fp32 between a
    dequantize and a quantize (the largest operator of cross d14's INT8 pass, 58% of its
    time in the profiler); elemwise_add has one. The head's multiplication by 1 (a layout
    fix for training's backward pass, network/blocks.py PlainLayout) forced one more
    dequantize and quantize. The function is the same: add_n of two terms is one addition
    (of three, (a + b) + c, which may differ from add_n in the last bit), x * 1 is x.
    """
    graph = _int8_friendly_json(json.loads(to_symbol(net).tojson()))
    symbol = mx.sym.load_json(json.dumps(graph))
    with warnings.catch_warnings():   # "Cannot decide type for data": it is float32
        warnings.simplefilter('ignore')
        return mx.gluon.SymbolBlock(symbol, mx.sym.var('data'), params=net.collect_params())


def quantize(net, calibration, calib_mode, keep_fp32=()):
    """`net` (fp32, weights loaded, not hybridized) quantized to INT8, calibrated on
    `calibration` (a CalibrationBatches): a SymbolBlock. Any failure of MXNet's pass is one
    line (UserError)."""
    check_backend()
    if calib_mode not in CALIB_MODES:
        raise UserError('calibration mode %r is not one of %s' % (calib_mode,
                                                                   ', '.join(CALIB_MODES)))
    from mxnet.contrib.quantization import quantize_net_v2
    try:
        with warnings.catch_warnings():   # "Cannot decide type for data": it is float32
            warnings.simplefilter('ignore')
            quantized = quantize_net_v2(
                int8_graph(net), quantized_dtype='auto', quantize_mode='full', calib_mode=calib_mode,
                calib_data=calibration, exclude_layers_match=[KEEPABLE[k] for k in keep_fp32],
                ctx=mx.cpu())
    except (mx.base.MXNetError, ValueError) as err:
        raise UserError('MXNet cannot quantize this network: %s'
                        % (str(err).strip().splitlines() or ['no reason given'])[-1])
    if calibration.images == 0:
        raise UserError('no calibration batch: the records hold fewer images than one batch')
    if quantized_layers(quantized) == 0:
        raise UserError('nothing to quantize: no convolution or fully-connected layer of this '
                        'network runs in INT8%s' % (' with %s kept in fp32' % ', '.join(keep_fp32)
                                                    if keep_fp32 else ''))
    return quantized


def quantized_layers(block):
    """How many convolutions and fully-connected layers of a (hybridizable) network run in
    INT8: the layers whose weights were quantized (poolings, activations and the like may
    run in INT8 too; they are not counted)."""
    return sum(1 for node in json.loads(to_symbol(block).tojson())['nodes']
               if str(node.get('attrs', {}).get('quantized', '')).lower() == 'true')


def agreement(expected, got):
    """The share of images whose top-1 class is the same in two logits arrays."""
    return float(np.mean(np.argmax(expected, axis=1) == np.argmax(got, axis=1)))


def predictions(net, data):
    """One logits array per image (the ensemble's mean) as numpy."""
    return mean_prediction(net(data)).asnumpy()
