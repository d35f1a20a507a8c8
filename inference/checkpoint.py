"""Which checkpoint a user means, and the flags of the run that wrote it.

A run's files (docs/layout.md):
    <folder>/<name>.txt                              the log
    <folder>/weights/<name>/<name>-<epoch:04d>.params
    <folder>/weights/<name>/<name>-<epoch:04d>.state  JSON, with the run's flags
A user may name the log, the weights folder, or a weights prefix with an epoch.
"""
import glob
import os
import re
from dataclasses import dataclass

from common.errors import UserError
from data.datasets import DATASETS
from engine.checkpoint import params_file, read_state, state_file
from engine.runfiles import weights_prefix


@dataclass
class Checkpoint:
    prefix: str
    epoch: int
    flags: dict

    @property
    def params_path(self):
        return params_file(self.prefix, self.epoch)

    @property
    def name(self):
        return '%s-%04d' % (os.path.basename(self.prefix), self.epoch)


def saved_epochs(prefix):
    """Epochs with a weights file under `prefix`, ascending."""
    pattern = re.compile(re.escape(os.path.basename(prefix)) + r'-(\d{4,})\.params$')
    found = (pattern.match(os.path.basename(p))
             for p in glob.glob(glob.escape(prefix) + '-*.params'))
    return sorted(int(m.group(1)) for m in found if m)


def _prefix_of(path):
    """A log, a weights folder or a prefix -> the weights prefix."""
    path = os.path.normpath(path)
    if path.endswith('.txt'):
        return weights_prefix(path)
    if os.path.isdir(path):
        path = os.path.join(path, os.path.basename(path))
    return path


def run_flags(prefix, epoch):
    """The flags the run was trained with: the JSON its checkpoint's .state keeps beside
    the weights (checked as a resume checks it; a missing or damaged one is one line), with
    every flag inference needs checked."""
    flags = read_state(prefix, epoch)['args']
    check_flags(state_file(prefix, epoch), flags)
    return flags


def _count(low):
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low,
            'a whole number >= %d' % low)


# flag -> (check, what it must be): every flag of the run that inference uses
NEEDED_FLAGS = {
    'network': (lambda v: isinstance(v, str) and v != '', 'a network name'),
    'depth': _count(1), 'widen_factor': _count(1), 'num_classes': _count(1),
    'data_shape': _count(1),
    'dataset': (lambda v: v in DATASETS, 'one of %s' % ', '.join(sorted(DATASETS))),
    'aug_type': (lambda v: v in (0, 1, 2) and not isinstance(v, bool), '0, 1 or 2'),
    'data_dir': (lambda v: isinstance(v, str) and v != '', 'a folder'),
    'val_dataset': (lambda v: isinstance(v, str) and v != '', 'a record file name'),
}
OPTIONAL_FLAGS = {'test_batch_size': _count(1)}


def check_flags(path, flags):
    """One line naming the first flag inference needs that the checkpoint's state lacks or
    spoils (a state edited by hand would otherwise end in a KeyError far from its cause)."""
    for name, (check, wanted) in list(NEEDED_FLAGS.items()) + list(OPTIONAL_FLAGS.items()):
        if name not in flags:
            if name in OPTIONAL_FLAGS:
                continue
            raise UserError('the checkpoint %s has no %s among its flags, which inference '
                            'needs: it was edited or cut' % (path, name))
        if not check(flags[name]) and not (name in OPTIONAL_FLAGS and flags[name] is None):
            raise UserError('the checkpoint %s gives %s=%.60r; it must be %s'
                            % (path, name, flags[name], wanted))


def find_checkpoint(path, epoch=None):
    """The checkpoint `path` names (a log, a weights folder or a prefix), at `epoch` or the
    latest saved one, with its run's flags."""
    prefix = _prefix_of(path)
    epochs = saved_epochs(prefix)
    if not epochs:
        raise UserError('no weights %s-<epoch>.params: pass a run\'s log, its weights folder, '
                        'or --checkpoint PREFIX --epoch N' % prefix)
    if epoch is None:
        epoch = epochs[-1]
    elif epoch not in epochs:
        raise UserError('no checkpoint %s-%04d.params; saved epochs: %s'
                        % (prefix, epoch, ', '.join(map(str, epochs))))
    return Checkpoint(prefix, epoch, run_flags(prefix, epoch))
