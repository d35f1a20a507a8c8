"""Checkpoints: the weights under the original's file names, and the state to continue a run.

A checkpoint is three files, none of which can run code when read:
  <prefix>-<epoch>.params      the weights (MXNet's NDArray file, as save_parameters writes;
                               Gluon parameter names, not the original's arg:/aux: names)
  <prefix>-<epoch>.optimizer   the optimizer's momentum per parameter (NDArray file)
  <prefix>-<epoch>.state       JSON: epoch, batch count, seed, thread count, the run's flags
and, with --ema, <prefix>-<epoch>.ema.params (the averaged weights, engine/ema.py).
The state file is written last, so a checkpoint counts only when it and the weights are
there. Every field is checked when read; a damaged file is one line saying what is wrong.
"""
import glob
import json
import os
import re

import numpy as np

from common.atomic import atomic_write
from common.errors import UserError
from common.reading import open_regular
from engine.ndfile import load_nd_dict, save_nd_dict

STATE_VERSION = 1
STATE_MAX_BYTES = 16 << 20   # a state holds the flags and a count per parameter: KBs
PICKLE_START = b'\x80'   # every pickle of protocol 2 or later begins with this byte


class WriteFailed(UserError):
    """A file of the run could not be written (a full disk): the run stops."""

    def __init__(self, path, err):
        reason = getattr(err, 'strerror', None) or str(err).strip().splitlines()[0]
        super().__init__('cannot write %s (%s)' % (path, reason))
        self.path = path


def _tag(epoch):
    """`0012` after 12 epochs; a named checkpoint (`best`) keeps its name."""
    return epoch if isinstance(epoch, str) else '%04d' % epoch


def params_file(prefix, epoch):
    return '%s-%s.params' % (prefix, _tag(epoch))


def state_file(prefix, epoch):
    return '%s-%s.state' % (prefix, _tag(epoch))


def optimizer_file(prefix, epoch):
    return '%s-%s.optimizer' % (prefix, _tag(epoch))


def ema_file(prefix, epoch):
    return '%s-%s.ema.params' % (prefix, _tag(epoch))


# ---------------------------------------------------------------- saving

def save_checkpoint(prefix, epoch, net, trainer, meta, name=None, averages=None):
    """Epoch `epoch` = that many epochs done; the files are named by `name` (e.g. `best`)
    when given, else by the epoch; `averages`: the --ema weights by name. A failed write
    raises WriteFailed."""
    tag = epoch if name is None else name
    states, counts = optimizer_states(trainer)
    state = dict(meta, version=STATE_VERSION, epoch=epoch, optimizer_update_counts=counts,
                 omp_num_threads=os.environ.get('OMP_NUM_THREADS'))
    text = json.dumps(state, sort_keys=True, default=str)
    weights = weights_of(net)
    writes = [(params_file(prefix, tag), lambda temp: save_nd_dict(temp, weights)),
              (optimizer_file(prefix, tag), lambda temp: save_nd_dict(temp, states))]
    if averages is not None:
        writes.append((ema_file(prefix, tag), lambda temp: save_nd_dict(temp, averages)))
    writes.append((state_file(prefix, tag), lambda temp: _write_text(temp, text)))
    for path, write in writes:
        try:
            atomic_write(path, write)
        except OSError as err:
            raise WriteFailed(path, err)


def weights_of(net):
    """What net.save_parameters(path) writes: every parameter by its structural name,
    averaged over the devices onto the CPU."""
    return {name: param._reduce() for name, param in net._collect_params_with_prefix().items()}


def _write_text(path, text):
    with open(path, 'w') as handle:
        handle.write(text)


def optimizer_states(trainer):
    """The first device's optimizer states by parameter index (every device holds the same
    after an update, as Trainer.save_states assumes), and its update counts."""
    import mxnet as mx
    updater = trainer._updaters[0]
    states = {'%d' % index: state.as_in_context(mx.cpu())
              for index, state in updater.states.items() if state is not None}
    optimizer = updater.optimizer
    counts = dict(num_update=optimizer.num_update,
                  per_index={'%d' % k: v for k, v in optimizer._index_update_count.items()})
    return states, counts


# ---------------------------------------------------------------- finding

def checkpoint_epochs(prefix):
    """Epochs with a complete checkpoint (weights and state), ascending."""
    pattern = re.compile(re.escape(os.path.basename(prefix)) + r'-(\d{4,})\.state$')
    epochs = []
    for path in glob.glob(glob.escape(prefix) + '-*.state'):
        match = pattern.match(os.path.basename(path))
        if match and os.path.exists(params_file(prefix, int(match.group(1)))):
            epochs.append(int(match.group(1)))
    return sorted(epochs)


# ---------------------------------------------------------------- reading

# field -> (check, what it must be); the flags stay a dict, compared by the engine
_FIELDS = {
    'version': (lambda v: v == STATE_VERSION, 'version %d' % STATE_VERSION),
    'epoch': (lambda v: _is_int(v) and v >= 1, 'an integer >= 1'),
    'num_update': (lambda v: _is_int(v) and v >= 0, 'an integer >= 0'),
    'rand_seed': (lambda v: _is_int(v), 'an integer'),
    'run': (lambda v: isinstance(v, dict) and isinstance(v.get('network'), str)
            and _is_int(v.get('rand_seed')), 'an object with network and rand_seed'),
    'args': (lambda v: isinstance(v, dict), 'an object of flags'),
    'omp_num_threads': (lambda v: v is None or isinstance(v, str), 'a string or null'),
    'optimizer_update_counts': (
        lambda v: isinstance(v, dict) and _is_int(v.get('num_update'))
        and isinstance(v.get('per_index'), dict)
        and all(k.isdigit() and _is_int(n) for k, n in v['per_index'].items()),
        'an object with num_update and per_index counts'),
}


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def read_state(prefix, epoch):
    """The checked JSON state of a checkpoint (epoch, batch count, seed, flags, ...);
    `epoch` may be a name (`best`), whose state holds the epochs it was saved after."""
    path = state_file(prefix, epoch)
    try:
        with open_regular(path, max_bytes=STATE_MAX_BYTES, what='the checkpoint') as handle:
            raw = handle.read()
    except OSError as err:
        raise UserError('cannot read the checkpoint %s (%s)' % (path, err.strerror))
    if raw.startswith(PICKLE_START):
        raise UserError('the checkpoint %s is in the old pickle format, which is not read '
                        '(a pickle can run code); start a new run' % path)
    try:
        state = json.loads(raw.decode('utf-8'))
    except (UnicodeDecodeError, ValueError) as err:
        raise UserError('the checkpoint %s is damaged: not JSON (%s)' % (path, err))
    if not isinstance(state, dict):
        raise UserError('the checkpoint %s is damaged: not a JSON object' % path)
    for name, (check, wanted) in _FIELDS.items():
        if name not in state:
            raise UserError('the checkpoint %s is damaged: field %r is missing' % (path, name))
        if not check(state[name]):
            raise UserError('the checkpoint %s is damaged: field %r must be %s (got %.60r)'
                            % (path, name, wanted, state[name]))
    if _is_int(epoch) and state['epoch'] != epoch:
        raise UserError('the checkpoint %s is damaged: it says epoch %d'
                        % (path, state['epoch']))
    return state


def load_checkpoint(prefix, epoch, net, trainer, ctx):
    """Restore weights and optimizer states; return the checked state dictionary."""
    params, state_path = params_file(prefix, epoch), state_file(prefix, epoch)
    for path in (params, state_path, optimizer_file(prefix, epoch)):
        if not os.path.exists(path):
            have = checkpoint_epochs(prefix)
            raise UserError('no checkpoint %s; checkpoints of %s: %s' % (
                path, prefix, ', '.join(map(str, have)) if have else 'none'))
    state = read_state(prefix, epoch)
    load_params(net, params, ctx)
    _restore_optimizer(trainer, optimizer_file(prefix, epoch),
                       state['optimizer_update_counts'])
    return state


def load_averages(prefix, epoch):
    """The --ema weights of a checkpoint (checked as an NDArray file), or None when it has
    none (a run without --ema)."""
    path = ema_file(prefix, epoch)
    if not os.path.exists(path):
        return None
    return load_nd_dict(path, 'the averaged weights')


def load_params(net, path, ctx):
    """Load a checked .params file whose names and shapes match `net`'s parameters."""
    loaded = load_nd_dict(path, 'the weights')
    wanted = net._collect_params_with_prefix()
    for name, param in wanted.items():
        if name not in loaded:
            raise UserError('the weights %s lack parameter %s (%d of the network\'s %d '
                            'are missing): a checkpoint of another network or depth?'
                            % (path, name, len(set(wanted) - set(loaded)), len(wanted)))
        if tuple(loaded[name].shape) != tuple(param.shape):
            raise UserError('the weights %s do not fit the network: shape mismatch for %s: '
                            'file %s, network %s' % (path, name, tuple(loaded[name].shape),
                                                     tuple(param.shape)))
        have, want = np.dtype(loaded[name].dtype), np.dtype(param.dtype)
        if have != want:   # MXNet would fail an assert with a traceback
            raise UserError('the weights %s do not fit the network: %s is %s in the file, '
                            '%s in the network' % (path, name, have.name, want.name))
    extra = sorted(set(loaded) - set(wanted))
    if extra:
        raise UserError('the weights %s hold parameter %s, which the network lacks: a '
                        'checkpoint of another network?' % (path, extra[0]))
    net.load_parameters(path, ctx=ctx)


def _restore_optimizer(trainer, path, counts):
    loaded = load_nd_dict(path, 'the optimizer states')
    params = trainer._params
    states = {}
    for key, array in loaded.items():
        index = int(key) if key.isdigit() else -1
        if not 0 <= index < len(params):
            raise UserError('the optimizer states %s are damaged: %r is not a parameter '
                            'index of this network (0..%d)' % (path, key, len(params) - 1))
        if tuple(array.shape) != tuple(params[index].shape):
            raise UserError('the optimizer states %s do not fit the network: shape mismatch '
                            'for %s: file %s, network %s' % (path, params[index].name,
                                                             tuple(array.shape),
                                                             tuple(params[index].shape)))
        states[index] = array
    if not trainer._kv_initialized:
        trainer._init_kvstore()
    for updater in trainer._updaters:
        # each device gets its own copy, moved to the device on its first update
        updater.states = {index: array.copy() for index, array in states.items()}
        updater.states_synced = dict.fromkeys(updater.states, False)
        optimizer = updater.optimizer
        optimizer.num_update = counts['num_update']
        optimizer._index_update_count.update(
            {int(k): n for k, n in counts['per_index'].items()})
