"""A network exported as MXNet's symbol + params, found by its prefix.

tools/export.py (fp32) and tools/quantize.py (INT8) write, for a prefix P:
    P-symbol.json          the graph
    P-<epoch:04d>.params   the weights (arg:/aux: names; INT8 ones are int8 arrays)
    P-export.json          what it is: its precision, the flags that read its images, the
                           fp32 source and its sha256, and (INT8) the calibration
The description makes an export usable alone: evaluate and predict read its images as
the run that trained it did.
"""
import hashlib
import json
import os
from dataclasses import dataclass

from common.errors import UserError
from inference.checkpoint import saved_epochs

DESCRIPTION_VERSION = 1
# The run's flags an export keeps: the network, and how its images are read.
FLAG_KEYS = ('network', 'depth', 'widen_factor', 'num_classes', 'dataset', 'data_shape',
             'aug_type', 'data_dir', 'train_dataset', 'val_dataset', 'test_batch_size')


@dataclass
class Exported:
    prefix: str
    epoch: int
    flags: dict
    description: dict

    @property
    def params_path(self):
        return '%s-%04d.params' % (self.prefix, self.epoch)

    @property
    def symbol_path(self):
        return self.prefix + '-symbol.json'

    @property
    def name(self):
        return '%s-%04d' % (os.path.basename(self.prefix), self.epoch)

    @property
    def precision(self):
        return self.description['precision']


def description_path(prefix):
    return prefix + '-export.json'


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for block in iter(lambda: handle.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def describe(flags, precision, source, **extra):
    """The description of an export: `flags` (the run's; only FLAG_KEYS are kept),
    'fp32' or 'int8', `source` ({'kind', 'path', 'sha256'} of the fp32 weights), and any
    `extra` fields (the calibration)."""
    kept = {key: flags[key] for key in FLAG_KEYS if key in flags}
    return dict(version=DESCRIPTION_VERSION, precision=precision, flags=kept, source=source,
                **extra)


def _read_description(prefix):
    path = description_path(prefix)
    try:
        with open(path) as handle:
            description = json.load(handle)
        flags = description['flags']
        for key in ('network', 'num_classes', 'dataset', 'data_shape'):
            flags[key]
        if description['precision'] not in ('fp32', 'int8'):
            raise ValueError('precision %r' % description['precision'])
    except FileNotFoundError:
        raise UserError('%s is missing: an export of tools/export.py or tools/quantize.py '
                        'has it (it says which images the network reads)' % path)
    except OSError as err:
        raise UserError('cannot read %s (%s)' % (path, err.strerror))
    except (ValueError, KeyError, TypeError) as err:
        raise UserError('%s is not an export description of this project (%s)' % (path, err))
    return description


def find_exported(prefix, epoch=None):
    """The export at `prefix` (the path before -symbol.json), at `epoch` or its only or
    latest weights file, with its description."""
    prefix = os.path.normpath(prefix)
    for suffix in ('-symbol.json', '-export.json'):   # a user may name one of the files
        if prefix.endswith(suffix):
            prefix = prefix[:-len(suffix)]
    if not os.path.isfile(prefix + '-symbol.json'):
        raise UserError('no exported network at %s: %s-symbol.json is missing'
                        % (prefix, prefix))
    epochs = saved_epochs(prefix)
    if not epochs:
        raise UserError('no weights %s-<epoch>.params beside %s-symbol.json' % (prefix, prefix))
    if epoch is None:
        epoch = epochs[-1]
    elif epoch not in epochs:
        raise UserError('no weights %s-%04d.params; exported epochs: %s'
                        % (prefix, epoch, ', '.join(map(str, epochs))))
    description = _read_description(prefix)
    return Exported(prefix, epoch, description['flags'], description)


def load_exported(exported, ctx=None):
    """The exported network as a SymbolBlock on `ctx` (default the CPU); one line when
    MXNet cannot read its files."""
    import mxnet as mx

    from inference.exporting import import_mxnet
    try:
        block = import_mxnet(exported.symbol_path, exported.params_path)
        block.collect_params().reset_ctx(ctx or mx.cpu())
    except (mx.base.MXNetError, AssertionError, ValueError) as err:
        raise UserError('MXNet cannot load the export %s (%s)'
                        % (exported.prefix, (str(err).strip().splitlines() or ['?'])[-1]))
    return block
