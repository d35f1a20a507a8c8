"""Ship a trained network: MXNet's symbol JSON + params, and ONNX.

The MXNet pair loads with `gluon.SymbolBlock.imports` (and MXNet's C/C++ predict API); the
ONNX model comes from MXNet 1.9.1's own exporter (`mx.onnx`, which needs onnx <= 1.18: it
imports onnx.mapping) with a dynamic batch dimension, is checked by onnx.checker and run by
onnxruntime against MXNet.
"""
import json
import os
import shutil
import tempfile

import mxnet as mx
import numpy as np

from common.errors import UserError
from network import mean_prediction

ONNX_HINT = 'pip install -r requirements-export.txt'


def outputs_of(out):
    """A network's outputs as a list of numpy arrays (the ensemble has 8)."""
    return [o.asnumpy() for o in (out if isinstance(out, (list, tuple)) else [out])]


def unique_node_names(symbol_path):
    """Give every operator in the symbol file its own name.

    A block called more than once (the ensemble's shared classifier) leaves several nodes
    of one name; ONNX names tensors after nodes, so its 8 outputs would collapse into one.
    Names are labels only: the weights are keyed by the variable nodes, left as they are.
    """
    with open(symbol_path) as handle:
        graph = json.load(handle)
    seen = {}
    for node in graph['nodes']:
        if node['op'] == 'null':
            continue
        count = seen.get(node['name'], 0)
        seen[node['name']] = count + 1
        if count:
            node['name'] = '%s_%d' % (node['name'], count)
    with open(symbol_path, 'w') as handle:
        json.dump(graph, handle, indent=2)


def write_staged(out_dir, produce):
    """(files, result) of produce(staging): it writes files into a hidden folder in
    `out_dir`, checks them, and returns ({name: path}, result). They are moved into
    `out_dir` only once all are written and checked, so a failure (a full disk) replaces
    nothing and leaves no partial file."""
    staging = None
    try:
        staging = tempfile.mkdtemp(prefix='.export-', dir=out_dir)
        files, result = produce(staging)
        for name, path in files.items():
            files[name] = os.path.join(out_dir, os.path.basename(path))
            os.replace(path, files[name])
    except (OSError, mx.base.MXNetError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else \
            str(err).strip().splitlines()[-1]
        raise UserError('cannot write the export in %s (%s); no exported file was written '
                        'or replaced' % (out_dir, why))
    finally:
        if staging:
            shutil.rmtree(staging, ignore_errors=True)
    return files, result


def export_mxnet(net, shape, prefix, epoch=0):
    """`prefix`-symbol.json and `prefix`-<epoch:04d>.params of `net` for (C, H, W) inputs."""
    net.hybridize()
    net(mx.nd.zeros((1,) + tuple(shape)))
    net.export(prefix, epoch=epoch)
    symbol_path, params_path = prefix + '-symbol.json', '%s-%04d.params' % (prefix, epoch)
    unique_node_names(symbol_path)
    return symbol_path, params_path


def import_mxnet(symbol_path, params_path):
    import warnings
    with warnings.catch_warnings():  # "Cannot decide type for data": it is float32
        warnings.simplefilter('ignore')
        return mx.gluon.SymbolBlock.imports(symbol_path, ['data'], params_path)


def export_onnx(symbol_path, params_path, shape, onnx_path):
    """The ONNX model of an exported MXNet network, any batch size, checked by onnx."""
    try:
        import onnx
    except ImportError:
        raise UserError('ONNX export needs the onnx package: %s (or pass --no-onnx)'
                        % ONNX_HINT)
    mx.onnx.export_model(symbol_path, params_path, in_shapes=[(1,) + tuple(shape)],
                         in_types=[np.float32], onnx_file_path=onnx_path, dynamic=True,
                         dynamic_input_shapes=[(None,) + tuple(shape)])
    model = onnx.load(onnx_path)
    for value in list(model.graph.input[:1]) + list(model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = 'batch'  # mx.onnx leaves it unnamed
    onnx.checker.check_model(model)
    onnx.save(model, onnx_path)
    return onnx_path


def onnx_session(onnx_path):
    """An onnxruntime CPU session; its warnings about initializers in the inputs are off."""
    try:
        import onnxruntime
    except ImportError:
        raise UserError('running ONNX models needs onnxruntime: %s' % ONNX_HINT)
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    # as many threads as MXNet's OpenMP gets, so that benchmarks compare like with like
    options.intra_op_num_threads = int(os.environ.get('OMP_NUM_THREADS', '0') or 0)
    return onnxruntime.InferenceSession(onnx_path, options,
                                        providers=['CPUExecutionProvider'])


def run_onnx(session, batch):
    return session.run(None, {session.get_inputs()[0].name: batch.astype(np.float32)})


def max_difference(expected, got):
    """Largest absolute difference between two lists of output arrays of equal shapes."""
    if len(expected) != len(got) or any(a.shape != b.shape for a, b in zip(expected, got)):
        raise UserError('the exported network gives %d outputs of shapes %s, MXNet %d of %s'
                        % (len(got), [b.shape for b in got], len(expected),
                           [a.shape for a in expected]))
    return max(float(np.abs(a - b).max()) for a, b in zip(expected, got))


def sample_batch(shape, size=8, seed=0):
    """Normalised-scale inputs (mean 0, std 1), as the networks see them."""
    return np.random.default_rng(seed).standard_normal((size,) + tuple(shape)).astype(np.float32)


def check_exports(net, files, shape, batch_size=8):
    """{'mxnet': max |difference| of the re-imported symbol, 'onnx': of onnxruntime}."""
    batch = sample_batch(shape, batch_size)
    expected = outputs_of(net(mx.nd.array(batch)))
    differences = {'mxnet': max_difference(expected, outputs_of(
        import_mxnet(files['symbol'], files['params'])(mx.nd.array(batch))))}
    if files.get('onnx'):
        differences['onnx'] = max_difference(expected,
                                             run_onnx(onnx_session(files['onnx']), batch))
    return differences
