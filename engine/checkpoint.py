"""Checkpoints: the weights as the original wrote them, and the state to continue a run.

A checkpoint is two files: <prefix>-<epoch>.params (the weights) and <prefix>-<epoch>.state
(optimizer states, epoch, batch count, seed, the run's settings). The state file is written
last, so a checkpoint counts only when both are there.
"""
import glob
import os
import pickle
import re

from common.atomic import atomic_write, scratch_path
from common.errors import UserError


def _tag(epoch):
    """`0012` after 12 epochs; a named checkpoint (`best`) keeps its name."""
    return epoch if isinstance(epoch, str) else '%04d' % epoch


def params_file(prefix, epoch):
    return '%s-%s.params' % (prefix, _tag(epoch))


def state_file(prefix, epoch):
    return '%s-%s.state' % (prefix, _tag(epoch))


def save_checkpoint(prefix, epoch, net, trainer, meta):
    """Epoch `epoch` = that many epochs done."""
    atomic_write(params_file(prefix, epoch), net.save_parameters)
    with scratch_path(state_file(prefix, epoch), 'optimizer') as temp:  # Trainer needs a file
        trainer.save_states(temp)
        with open(temp, 'rb') as handle:
            optimizer_states = handle.read()
    payload = dict(meta, epoch=epoch, optimizer_states=optimizer_states)

    def write(path):
        with open(path, 'wb') as handle:
            pickle.dump(payload, handle, protocol=4)
    atomic_write(state_file(prefix, epoch), write)


def checkpoint_epochs(prefix):
    """Epochs with a complete checkpoint (both files), ascending."""
    pattern = re.compile(re.escape(os.path.basename(prefix)) + r'-(\d{4,})\.state$')
    epochs = []
    for path in glob.glob(glob.escape(prefix) + '-*.state'):
        match = pattern.match(os.path.basename(path))
        if match and os.path.exists(params_file(prefix, int(match.group(1)))):
            epochs.append(int(match.group(1)))
    return sorted(epochs)


def read_state(prefix, epoch):
    """The saved meta dictionary of a checkpoint (epoch, batch count, seed, ...)."""
    try:
        with open(state_file(prefix, epoch), 'rb') as handle:
            return pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError) as err:
        raise UserError('cannot read the checkpoint %s (%s)' % (state_file(prefix, epoch), err))


def load_checkpoint(prefix, epoch, net, trainer, ctx):
    """Restore weights and optimizer states; return the saved meta dictionary."""
    params, state = params_file(prefix, epoch), state_file(prefix, epoch)
    for path in (params, state):
        if not os.path.exists(path):
            have = checkpoint_epochs(prefix)
            raise UserError('no checkpoint %s; checkpoints of %s: %s' % (
                path, prefix, ', '.join(map(str, have)) if have else 'none'))
    payload = read_state(prefix, epoch)
    try:
        net.load_parameters(params, ctx=ctx)
    except Exception as err:  # MXNetError or a shape mismatch: a corrupt or foreign file
        raise UserError('cannot load the weights %s (%s)' % (params, str(err).splitlines()[0]))
    with scratch_path(state, 'optimizer') as temp:
        with open(temp, 'wb') as handle:
            handle.write(payload.pop('optimizer_states'))
        trainer.load_states(temp)
    return payload
