"""Which checkpoint a user means, and the flags of the run that wrote it.

A run's files (see the README's "Outputs"):
    <folder>/<name>.txt                              the log; its 2nd line holds the flags
    <folder>/weights/<name>/<name>-<epoch:04d>.params
A user may name the log, the weights folder, or a weights prefix with an epoch.
"""
import glob
import os
import re
from dataclasses import dataclass

from common.errors import UserError
from engine.checkpoint import params_file
from engine.logs import parse_namespace
from engine.runfiles import weights_prefix

HEAD_MARK = 'start with arguments Namespace('


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
    """A log, a weights folder or a prefix -> (weights prefix, log path)."""
    path = os.path.normpath(path)
    if path.endswith('.txt'):
        return weights_prefix(path), path
    if os.path.isdir(path):
        path = os.path.join(path, os.path.basename(path))
    name = os.path.basename(path)
    run_folder = os.path.dirname(os.path.dirname(os.path.dirname(path)))  # above weights/
    return path, os.path.join(run_folder, name + '.txt')


def run_flags(log_path):
    """The flags a run was started with, read from its log's `start with arguments` line.

    The one place that reads a run's settings: logs of every version keep this line.
    """
    try:
        with open(log_path, errors='replace') as handle:
            head = [next(handle, '') for _ in range(5)]
    except OSError as err:
        raise UserError('cannot read the run\'s log %s (%s): the network and its flags come '
                        'from it' % (log_path, err.strerror))
    for line in head:
        if HEAD_MARK in line:
            flags = parse_namespace(line)   # the log module's own reader of that line
            if flags:
                return flags
            break
    raise UserError('%s has no readable `start with arguments Namespace(...)` line: it is '
                    'not a training log of this project' % log_path)


def find_checkpoint(path, epoch=None):
    """The checkpoint `path` names (a log, a weights folder or a prefix), at `epoch` or the
    latest saved one, with its run's flags."""
    prefix, log_path = _prefix_of(path)
    epochs = saved_epochs(prefix)
    if not epochs:
        raise UserError('no weights %s-<epoch>.params: pass a run\'s log, its weights folder, '
                        'or --checkpoint PREFIX --epoch N' % prefix)
    if epoch is None:
        epoch = epochs[-1]
    elif epoch not in epochs:
        raise UserError('no checkpoint %s-%04d.params; saved epochs: %s'
                        % (prefix, epoch, ', '.join(map(str, epochs))))
    return Checkpoint(prefix, epoch, run_flags(log_path))
